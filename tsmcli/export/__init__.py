"""Taking a model out of Python: ONNX graphs of the whole recognizer (whole.py) and of the streaming
step (stream_step.py), each checked against PyTorch with onnxruntime before it is kept. Needs the
deploy extra: pip install 'tsm[deploy]'."""
import copy

import numpy as np

from ..errors import JobFailed, UserError

FP32_TOLERANCE = 1e-4
# fp16 keeps about 3 significant digits, and deep random-weight models amplify its rounding: calibrated
# random R50s at 64 px moved by 0.01-0.045 in probability (tests/test_export.py), a trained model far
# less (docs/benchmarks.md). A graph that computes something else differs by 0.1 or more.
FP16_TOLERANCE = 5e-2
PRECISIONS = ("fp32", "fp16")


def check_precision(precision, option="--precision"):
    """A UserError for a precision no ONNX runtime could run or that tsm does not export."""
    if precision == "bf16":
        raise UserError(f"{option} bf16: ONNX's Conv has no bfloat16 type (opset 17), so no runtime could run "
                        "the graph; use fp16 for GPU runtimes, or bf16 in PyTorch (tsm predict/test/stream "
                        "--amp bf16)")
    if precision not in PRECISIONS:
        raise UserError(f"{option} {precision!r}: use one of {', '.join(PRECISIONS)}")


def at_precision(model, precision):
    """(the model to export, the tolerance its graph is verified to against the fp32 model).

    fp16: a copy with BatchNorm folded (in fp32, then rounded once) and the backbone in fp16; the graph
    casts its fp32 input to fp16 and the features back, so inputs, head and outputs stay fp32."""
    import torch

    from ..models.fast import prepare_for_inference

    check_precision(precision)
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
