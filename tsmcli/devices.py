"""Where and in which precision a command computes: --device and --amp, checked once for every command."""
from .errors import UserError

AMP_CHOICES = ("bf16", "fp16")


def resolve_device(spec="auto"):
    """'auto' (a GPU when there is one), 'cpu', 'cuda' or 'cuda:N' -> torch.device; a device this machine
    does not have is a UserError, not a CUDA traceback later."""
    import torch

    spec = str(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise UserError(f"--device {spec!r}: tsm runs on cpu or cuda (auto picks)")
    if not torch.cuda.is_available():
        raise UserError(f"--device {spec}: no usable CUDA GPU on this machine (torch.cuda.is_available() is "
                        "False); use --device cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise UserError(f"--device {spec}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def amp_dtype(amp, device=None):
    """--amp None | bf16 | fp16 -> the autocast dtype (None: full precision)."""
    import torch

    if amp is None:
        return None
    if amp not in AMP_CHOICES:
        raise UserError(f"--amp {amp!r}: use bf16 (CPU or GPU) or fp16 (GPU)")
    if amp == "fp16" and device is not None and device.type != "cuda":
        raise UserError("--amp fp16 needs a GPU; use --amp bf16 on the CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
