"""The incremental streaming step (tsmcli/streaming/incremental.py) as an exported file with its state as
inputs and outputs: frame, state_in_0..n -> logits, state_out_0..n. Whoever runs it keeps the state
between calls, starting from zeros (shapes in the file's metadata). ONNX (fp32, fp16) or OpenVINO IR
(fp32, bf16 as its inference precision)."""
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import JobFailed, UserError
from ..runtime.engines import OnnxRuntimeEngine, OpenVinoEngine, onnx_modules, openvino_module
from ..streaming.incremental import StreamStep
from . import at_precision, check_verified
from .agreement import DEFAULT_MIN_AGREEMENT
from .whole import _keep, _scratch_beside

VERIFY_STEPS = 32
STEP_PRECISIONS = {"onnx": ("fp32", "fp16"), "openvino": ("fp32", "bf16")}


def export_step(model, path, height, width, frames, precision="fp32", format="onnx",
                min_agreement=DEFAULT_MIN_AGREEMENT):
    """Export, then run the file and the fp32 PyTorch step side by side over `frames` (>= 32 preprocessed
    frames, (1, 3, H, W) each), each feeding its own state back; keep the file only when every step's
    logits agree within 1e-4 (fp32) or 5e-2 (fp16) of their scale (at least 1). bf16 (OpenVINO): the
    fp32 IR is verified so first, then the bf16 steps must agree on top-1 with fp32 on `min_agreement` of
    the frames. The fp16 graph's state tensors are fp16.
    Returns {"path", "states", "state_bytes", "steps", "max_scaled_diff", "top1_agree", ...}."""
    if precision not in STEP_PRECISIONS[format]:
        raise UserError(f"--stream --format {format} --precision {precision}: the streaming step exports as "
                        f"{', '.join(STEP_PRECISIONS[format])} in {format}")
    onnx, _ = onnx_modules()
    exported, tolerance = at_precision(model.eval(), "fp16" if precision == "fp16" else "fp32")
    reference, step = StreamStep(model).eval(), StreamStep(exported).eval()
    dtype = exported.compute_dtype or torch.float32
    state = step.initial_state(1, height, width, dtype=dtype)
    names_in = ["frame"] + [f"state_in_{i}" for i in range(len(state))]
    names_out = ["logits"] + [f"state_out_{i}" for i in range(len(state))]
    meta = {"kind": "stream_step", "labels": model.labels, "preset": model.preset["name"],
            "preset_config": model.preset, "input": [1, 3, height, width], "precision": precision,
            "state_shapes": [list(s.shape) for s in state], "state_dtype": str(dtype).replace("torch.", ""),
            "note": "state starts as zeros; feed state_out back"}
    with _scratch_beside(path) as scratch:
        built = Path(scratch) / "step.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(step, (torch.zeros(1, 3, height, width), *state), str(built), input_names=names_in,
                              output_names=names_out, opset_version=17, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in names_in + names_out})
        graph = onnx.load(str(built))
        graph.metadata_props.add(key="tsm", value=json.dumps(meta))
        onnx.save(graph, str(built))
        worst, agree = _compare(OnnxRuntimeEngine(built, metadata=meta), reference, state, frames, names_in)
        check_verified(worst, tolerance, f"{path} (streaming step)")
        report = {"max_scaled_diff": worst, "top1_agree": agree}
        if format == "openvino":
            ov = openvino_module()
            converted = ov.convert_model(str(built))
            converted.set_rt_info(json.dumps(meta), ["tsm"])
            built = Path(scratch) / "step.xml"
            ov.save_model(converted, str(built), compress_to_fp16=False)
            worst, agree = _compare(OpenVinoEngine(built, metadata=meta, precision="fp32"), reference, state, frames,
                                    names_in)
            check_verified(worst, tolerance, f"{path} (streaming step, OpenVINO)")
            report = {"max_scaled_diff": worst, "top1_agree": agree}
            if precision == "bf16":
                worst, agree = _compare(OpenVinoEngine(built, metadata=meta), reference, state, frames, names_in)
                report = {"max_scaled_diff": worst, "top1_agree": agree, "fp32_max_scaled_diff": report["max_scaled_diff"]}
                if agree < min_agreement:
                    raise JobFailed(f"{path} (streaming step, bf16): top-1 agrees with fp32 on {agree:.1%} of "
                                    f"{len(frames)} steps (< --min-agreement {min_agreement:g}); nothing was written")
        _keep(built, Path(path))
    return {"path": str(path), "format": format, "precision": precision, "states": len(state),
            "state_bytes": sum(s.numel() * s.element_size() for s in state), "steps": len(frames), **report}


def _compare(engine, step, state, frames, names):
    """The largest logit difference relative to the logits' scale (at least 1), and top-1 agreement."""
    ours, theirs = [None] * len(state), [s.numpy() for s in state]
    worst, agree = 0.0, 0
    for frame in frames:
        with torch.no_grad():
            logits, *ours = step(frame, *ours)
        out = engine.run(dict(zip(names, [frame.numpy(), *theirs])))
        theirs = out[1:]
        scale = max(1.0, float(logits.abs().max()))
        worst = max(worst, float(np.abs(out[0] - logits.numpy()).max()) / scale)
        agree += int(out[0].argmax() == int(logits.argmax()))
    return worst, agree / len(frames)
