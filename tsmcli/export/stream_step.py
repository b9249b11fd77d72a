"""The incremental streaming step (tsmcli/streaming/incremental.py) as an ONNX graph with its state as
inputs and outputs: frame, state_in_0..n -> logits, state_out_0..n. Whoever runs it keeps the state
between calls, starting from zeros (shapes in the graph's metadata)."""
import json
import os
import warnings

import numpy as np
import torch

from . import FP32_TOLERANCE, keep_if_verified, onnx_modules, session
from ..streaming.incremental import StreamStep

VERIFY_STEPS = 32


def export_step(model, path, height, width, frames):
    """Export, then run the graph and PyTorch side by side over `frames` (>= 32 preprocessed frames,
    (1, 3, H, W) each), feeding each one's state back; keep the file only when every step agrees within
    1e-4. Returns {"path", "states", "state_bytes", "steps", "max_abs_diff", "top1_agree"}."""
    onnx, _ = onnx_modules()
    step = StreamStep(model).eval()
    state = step.initial_state(1, height, width)
    names_in = ["frame"] + [f"state_in_{i}" for i in range(len(state))]
    names_out = ["logits"] + [f"state_out_{i}" for i in range(len(state))]
    tmp = f"{path}.tmp-{os.getpid()}.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(step, (torch.zeros(1, 3, height, width), *state), tmp, input_names=names_in,
                          output_names=names_out, opset_version=17, dynamo=False,
                          dynamic_axes={name: {0: "batch"} for name in names_in + names_out})
    graph = onnx.load(tmp)
    meta = {"labels": model.labels, "preset": model.preset["name"], "input": [1, 3, height, width],
            "state_shapes": [list(s.shape) for s in state], "note": "state starts as zeros; feed state_out back"}
    graph.metadata_props.add(key="tsm", value=json.dumps(meta))
    onnx.save(graph, tmp)
    worst, agree = _compare(tmp, step, state, frames, names_in)
    keep_if_verified(tmp, path, worst, FP32_TOLERANCE, f"{path} (streaming step)")
    return {"path": str(path), "states": len(state), "state_bytes": sum(s.numel() * 4 for s in state),
            "steps": len(frames), "max_abs_diff": worst, "top1_agree": agree}


def _compare(path, step, state, frames, names):
    runner = session(path)
    ours, theirs = list(state), [s.numpy() for s in state]
    worst, agree = 0.0, 0
    for frame in frames:
        with torch.no_grad():
            logits, *ours = step(frame, *ours)
        out = runner.run(None, dict(zip(names, [frame.numpy(), *theirs])))
        theirs = out[1:]
        worst = max(worst, float(np.abs(out[0] - logits.numpy()).max()))
        agree += int(out[0].argmax() == int(logits.argmax()))
    return worst, agree / len(frames)
