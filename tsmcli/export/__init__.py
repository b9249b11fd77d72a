"""Taking a model out of Python: ONNX graphs of the whole recognizer (whole.py) and of the streaming
step (stream_step.py), each checked against PyTorch with onnxruntime before it is kept. Needs the
deploy extra: pip install 'tsm[deploy]'."""
import os

import numpy as np

from ..errors import JobFailed, UserError

FP32_TOLERANCE = 1e-4


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


def keep_if_verified(tmp, path, worst, tolerance, what):
    """Rename the verified file into place, or delete it and fail (exit 1) when it differs from PyTorch."""
    if not np.isfinite(worst) or worst > tolerance:
        os.unlink(tmp)
        raise JobFailed(f"{what}: onnxruntime differs from PyTorch by {worst:.3g} (> {tolerance:g}); nothing was "
                        "written")
    os.replace(tmp, path)
