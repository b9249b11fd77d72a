"""Where and in which precision a command computes: --device and --amp, checked once for every command."""
from .errors import OptionError

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
        raise OptionError("device", spec, "expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise OptionError("device", spec, "tsm runs on cpu or cuda (auto picks)")
    if not torch.cuda.is_available():
        raise OptionError("device", spec, "no usable CUDA GPU on this machine (torch.cuda.is_available() is "
                        "False); use cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise OptionError("device", spec, f"this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return device


def amp_dtype(amp, device=None):
    """--amp None | none | bf16 | fp16 -> the autocast dtype (None: full precision)."""
    import torch

    if amp is None or amp == "none":
        return None
    if amp not in AMP_CHOICES:
        raise OptionError("amp", amp, "use bf16 (CPU or GPU), fp16 (GPU) or none")
    if amp == "fp16" and device is not None and device.type != "cuda":
        raise OptionError("amp", "fp16", "needs a GPU; use bf16 on the CPU")
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
