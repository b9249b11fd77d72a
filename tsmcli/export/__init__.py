"""Taking a model out of Python: the whole recognizer (whole.py) and the streaming step
(stream_step.py) as ONNX graphs or OpenVINO models, at fp32, fp16, bf16 or int8 (quantize.py, on real
clips: clips.py), each checked against PyTorch before it is kept (agreement.py for reduced precision);
and running such files where a checkpoint goes (engines.py, exported.py; cache.py converts a
checkpoint once for --backend). Needs pip install 'tsm[deploy]' (ONNX) or 'tsm[openvino]'."""
import copy

import numpy as np

from ..errors import JobFailed, UserError

FP32_TOLERANCE = 1e-4
# fp16 keeps about 3 significant digits, and deep random-weight models amplify its rounding: calibrated
# random R50s at 64 px moved by 0.01-0.045 in probability (tests/test_export.py), a trained model far
# less (docs/benchmarks.md). A graph that computes something else differs by 0.1 or more.
FP16_TOLERANCE = 5e-2
PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def check_precision(precision, option="--precision", format="onnx"):
    """A UserError for a precision the format cannot hold or that tsm does not export."""
    from .whole import FORMAT_PRECISIONS

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


def onnx_modules():
    """(onnx, onnxruntime), or a UserError naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UserError("export needs onnx and onnxruntime: pip install 'tsm[deploy]'") from None
    return onnx, onnxruntime


def session(path, threads=None):
    """An onnxruntime CPU session (threads: intra-op threads, e.g. torch's, for timing side by side)."""
    _, ort = onnx_modules()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_verified(worst, tolerance, what):
    """Fail (exit 1) when the exported file differs from PyTorch; its atomic_path then leaves nothing."""
    if not np.isfinite(worst) or worst > tolerance:
        raise JobFailed(f"{what}: onnxruntime differs from PyTorch by {worst:.3g} (> {tolerance:g}); nothing was "
                        "written")
