"""Taking a model out of Python: the whole recognizer (whole.py) and the streaming step
(stream_step.py) as ONNX graphs or OpenVINO models, at fp32, fp16, bf16 or int8 (quantize.py, on real
clips: clips.py), each checked against PyTorch before it is kept (agreement.py for reduced precision);
cache.py converts a checkpoint once for --backend. Running such files is tsmcli.runtime's. Needs pip install 'tsm[deploy]' (ONNX) or 'tsm[openvino]'."""
import copy

import numpy as np

from ..errors import JobFailed, UserError

FP32_TOLERANCE = 1e-4
# fp16 keeps about 3 significant digits, and deep random-weight models amplify its rounding far more than
# a trained model's (docs/benchmarks.md, "fp16 ONNX graphs"); a graph that computes something else
# differs by an order of magnitude more than this.
FP16_TOLERANCE = 5e-2
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
FORMATS = {"onnx": ".onnx", "openvino": ".xml"}
# what each format offers: ONNX's Conv has no bf16 type; fp16 weights are for GPU runtimes, not
# OpenVINO's CPU plugin (which computes them in f32 or bf16 anyway)
FORMAT_PRECISIONS = {"onnx": ("fp32", "fp16", "int8"), "openvino": ("fp32", "bf16", "int8")}


def check_precision(precision, option="--precision", format="onnx"):
    """A UserError for a precision the format cannot hold or that tsm does not export."""
    if precision == "bf16" and format == "onnx":
        raise UserError(f"{option} bf16: ONNX's Conv has no bfloat16 type (opset 17), so no ONNX runtime could run "
                        "the graph; use --format openvino (bf16 is its CPU inference precision), fp16 for GPU "
                        "runtimes, or bf16 in PyTorch (tsm predict/test/stream --amp bf16)")
    if precision not in FORMAT_PRECISIONS.get(format, PRECISIONS):
        raise UserError(f"{option} {precision!r}: {format} exports take {', '.join(FORMAT_PRECISIONS[format])}")


def at_precision(model, precision):
    """(the model to export, the tolerance its graph is verified to against the fp32 model).

    fp16: a copy with BatchNorm folded (in fp32, then rounded once) and the backbone in fp16; the graph
    casts its fp32 input to fp16 and the features back, so inputs, head and outputs stay fp32."""
    import torch

    from ..models.fast import prepare_for_inference

    if precision not in ("fp32", "fp16"):
        raise ValueError(f"graph precision {precision!r}: fp32 or fp16")
    if precision == "fp32":
        return model, FP32_TOLERANCE
    half = prepare_for_inference(copy.deepcopy(model), channels_last=False, dtype=torch.float16)
    return half, FP16_TOLERANCE


def check_verified(worst, tolerance, what):
    """Fail (exit 1) when the exported file differs from PyTorch; its atomic_path then leaves nothing."""
    if not np.isfinite(worst) or worst > tolerance:
        raise JobFailed(f"{what}: onnxruntime differs from PyTorch by {worst:.3g} (> {tolerance:g}); nothing was "
                        "written")
