"""Checkpoints: our format, and loading mmaction2 0.x and original TSM files.

Ours is a plain dict saved with torch.save:
    {"format": "tsm-checkpoint", "version": 1, "state_dict": {...}, "preset": {resolved preset},
     "labels": [class names] or None, "epoch": int, "iteration": int, "optimizer": {...} or None, ...}
Files are written atomically (temp file + rename) and read with weights_only=True, so a hostile file
cannot run code: only tensors and plain containers come back.
"""
import os
import tempfile
from pathlib import Path

import torch

from .errors import UserError

FORMAT = "tsm-checkpoint"
VERSION = 1


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
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch.save's zip, or a legacy pickle
        raise UserError(f"{path} is not a PyTorch checkpoint (a .pth file written by torch.save); give the "
                        "checkpoint, not a label map or list")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling failure is the file's problem
        raise UserError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}\n"
                        "Only tensors and plain containers are loaded (weights_only); a file that needs "
                        "other Python objects is refused.") from None


def save_checkpoint(path, model, preset, labels=None, **state):
    """Write our checkpoint atomically. `state` holds epoch, iteration, optimizer, ... as plain data."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": VERSION, "state_dict": model.state_dict(), "preset": preset,
               "labels": list(labels) if labels is not None else None, **state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def resolve_checkpoint(spec):
    """A checkpoint as users name it -> a local file: a path; an http(s) URL; or the file name of a
    checkpoint the model zoo publishes (fetched from mmaction2's download site into the cache once)."""
    import difflib

    from .download import cached_download
    from .presets import zoo_checkpoints

    spec = str(spec)
    if spec.startswith(("http://", "https://")):
        return cached_download(spec, what="checkpoint")
    path = Path(spec)
    if path.is_file():
        return path
    published = zoo_checkpoints().get(path.name)
    if published and len(path.parts) == 1:
        return cached_download(published["url"], what="checkpoint")
    close = difflib.get_close_matches(path.name, list(zoo_checkpoints()), n=1, cutoff=0.8)
    hint = f"; did you mean the zoo's {close[0]}?" if close else \
        " (a path, an http(s) URL, or the file name of a model-zoo checkpoint)"
    raise UserError(f"checkpoint {spec} does not exist{hint}")


def read_checkpoint(path):
    """-> dict with 'state_dict' (our key names), 'format' (ours | mmaction | original), and, where
    the file has them, 'preset', 'labels', 'epoch', ...; `path` as resolve_checkpoint takes it."""
    from .convert import detect_format, to_ours

    path = resolve_checkpoint(path)
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return {**obj, "format": "ours"}
    state_dict = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state_dict, dict) or not state_dict:
        raise UserError(f"{path}: no state_dict found")
    fmt = detect_format(state_dict)
    return {"format": fmt, "state_dict": to_ours(state_dict), "preset": None, "labels": None,
            "epoch": obj.get("epoch") if isinstance(obj, dict) else None}
