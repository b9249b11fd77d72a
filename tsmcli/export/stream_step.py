"""The incremental streaming step (tsmcli/streaming/incremental.py) as an ONNX graph with its state as
inputs and outputs: frame, state_in_0..n -> logits, state_out_0..n. Whoever runs it keeps the state
between calls, starting from zeros (shapes in the graph's metadata)."""
import json
import warnings

import numpy as np
import torch

from ..atomic import atomic_path

from . import at_precision, check_verified, onnx_modules, session
from ..streaming.incremental import StreamStep

VERIFY_STEPS = 32


def export_step(model, path, height, width, frames, precision="fp32"):
    """Export, then run the graph and the fp32 PyTorch step side by side over `frames` (>= 32 preprocessed
    frames, (1, 3, H, W) each), each feeding its own state back; keep the file only when every step's
    logits agree within 1e-4 (fp32) or 5e-2 (fp16) of their scale (at least 1). The fp16 graph's state
    tensors are fp16. Returns {"path", "states", "state_bytes", "steps", "max_scaled_diff", "top1_agree"}."""
    onnx, _ = onnx_modules()
    exported, tolerance = at_precision(model.eval(), precision)
    reference, step = StreamStep(model).eval(), StreamStep(exported).eval()
    dtype = exported.compute_dtype or torch.float32
    state = step.initial_state(1, height, width, dtype=dtype)
    names_in = ["frame"] + [f"state_in_{i}" for i in range(len(state))]
    names_out = ["logits"] + [f"state_out_{i}" for i in range(len(state))]
    with atomic_path(path) as tmp:  # kept only when verified
        tmp = str(tmp)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(step, (torch.zeros(1, 3, height, width), *state), tmp, input_names=names_in,
                              output_names=names_out, opset_version=17, dynamo=False,
                              dynamic_axes={name: {0: "batch"} for name in names_in + names_out})
        graph = onnx.load(tmp)
        meta = {"labels": model.labels, "preset": model.preset["name"], "input": [1, 3, height, width],
                "precision": precision, "state_shapes": [list(s.shape) for s in state],
                "state_dtype": str(dtype).replace("torch.", ""), "note": "state starts as zeros; feed state_out back"}
        graph.metadata_props.add(key="tsm", value=json.dumps(meta))
        onnx.save(graph, tmp)
        worst, agree = _compare(tmp, reference, state, frames, names_in)
        check_verified(worst, tolerance, f"{path} (streaming step)")
    return {"path": str(path), "precision": precision, "states": len(state),
            "state_bytes": sum(s.numel() * s.element_size() for s in state), "steps": len(frames),
            "max_scaled_diff": worst, "top1_agree": agree}


def _compare(path, step, state, frames, names):
    """The largest logit difference relative to the logits' scale (at least 1), and top-1 agreement."""
    runner = session(path)
    ours, theirs = [None] * len(state), [s.numpy() for s in state]
    worst, agree = 0.0, 0
    for frame in frames:
        with torch.no_grad():
            logits, *ours = step(frame, *ours)
        out = runner.run(None, dict(zip(names, [frame.numpy(), *theirs])))
        theirs = out[1:]
        scale = max(1.0, float(logits.abs().max()))
        worst = max(worst, float(np.abs(out[0] - logits.numpy()).max()) / scale)
        agree += int(out[0].argmax() == int(logits.argmax()))
    return worst, agree / len(frames)
