"""Reading a torch.save file as data, never as code: weights_only, with the few numpy types mmaction2's
checkpoints hold, and a clear error for an empty, cut-short or foreign file."""
import zipfile
from pathlib import Path

import torch

from .errors import UserError


def _safe_globals():
    # Plain numpy scalars/arrays appear in mmaction2's `meta` (e.g. best scores); their reconstructors
    # build data, never call arbitrary code, so we allow exactly these.
    import numpy as np

    allowed = [np.dtype, np.ndarray]
    for mod_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            mod = __import__(mod_name, fromlist=["scalar", "_reconstruct"])
            allowed += [mod.scalar, mod._reconstruct]
        except (ImportError, AttributeError):
            pass
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return allowed


def safe_torch_load(path):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    size = path.stat().st_size
    if size == 0:
        raise DamagedCheckpoint(path, "the file is empty (0 bytes)")
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch.save's zip, or a legacy pickle
        raise UserError(f"{path} is not a PyTorch checkpoint (a .pth file written by torch.save); give the "
                        "checkpoint, not a label map or list")
    if head.startswith(b"PK") and not zipfile.is_zipfile(path):
        raise DamagedCheckpoint(path, f"{size} bytes, and the zip archive's closing directory is missing: the file "
                                      "was cut short (an interrupted copy or write, a full disk)")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the file's problem
        if not _is_refusal(e):
            raise DamagedCheckpoint(path, f"{size} bytes, unreadable ({str(e).splitlines()[0][:160]})") from None
        raise UserError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}\n"
                        "Only tensors and plain containers are loaded (weights_only); a file that needs "
                        "other Python objects is refused.") from None


class DamagedCheckpoint(UserError):
    def __init__(self, path, what):
        super().__init__(f"checkpoint {path} is damaged: {what}")
        self.path = Path(path)


def _is_refusal(error):
    """weights_only refusing a class (a file that needs code to load), as opposed to a broken file."""
    return "weights_only" in str(error) or "Unsupported global" in str(error) or "GLOBAL" in str(error)
