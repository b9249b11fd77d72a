"""Checkpoints: our format, and loading mmaction2 0.x and original TSM files.

Ours is a plain dict saved with torch.save:
    {"format": "tsm-checkpoint", "version": 1, "state_dict": {...}, "preset": {resolved preset},
     "labels": [class names] or None, "epoch": int, "iteration": int, "optimizer": {...} or None, ...}
Files are written atomically (temp file + rename) and read with weights_only=True, so a hostile file
cannot run code: only tensors and plain containers come back. Ours carry "content_sha256", a hash of
everything else in them, so a damaged file is recognised before a run starts from it.
"""
import hashlib
import os
import re
from pathlib import Path

import torch

from .atomic import atomic_path
from .errors import UserError
from .safe_load import DamagedCheckpoint, safe_torch_load

FORMAT = "tsm-checkpoint"
VERSION = 1
PACKAGE_FORMAT = "tsm-package"  # the safetensors metadata of a package's weights (package.py)
PACKAGE_WEIGHTS = "model.safetensors"
HUB_PREFIX = "hf://"


def content_hash(obj):
    """sha256 of a checkpoint's content: tensors by their bytes, containers in key order, the rest by repr."""
    digest = hashlib.sha256()

    def feed(value):
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            if t.numel():
                digest.update(t.reshape(-1).view(torch.uint8).numpy())
        elif isinstance(value, dict):
            digest.update(b"{")
            for key in sorted(value, key=str):
                digest.update(repr(key).encode())
                feed(value[key])
            digest.update(b"}")
        elif isinstance(value, (list, tuple)):
            digest.update(b"[")
            for item in value:
                feed(item)
            digest.update(b"]")
        else:
            digest.update(repr(value).encode())

    feed(obj)
    return digest.hexdigest()


def _tensor_bytes(obj):
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def save_checkpoint(path, model, preset, labels=None, **state):
    """Write our checkpoint atomically. `state` holds epoch, iteration, optimizer, ... as plain data.
    A full disk raises atomic.DiskFull and leaves the previous file as it was."""
    payload = {"format": FORMAT, "version": VERSION, "state_dict": model.state_dict(), "preset": preset,
               "labels": list(labels) if labels is not None else None, **state}
    payload["content_sha256"] = content_hash(payload)
    with atomic_path(path, needed=_tensor_bytes(payload)) as tmp:
        with open(tmp, "wb") as f:  # through a Python file, a full disk is an OSError (torch's own writer
            torch.save(payload, f)  # says only "unexpected pos")
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def verify_content(obj, path):
    """Raise DamagedCheckpoint when an (our format) checkpoint's content does not match its hash."""
    expected = obj.get("content_sha256")
    if expected is not None:
        rest = {k: v for k, v in obj.items() if k != "content_sha256"}
        if content_hash(rest) != expected:
            raise DamagedCheckpoint(path, "its content does not match the hash written with it (bytes changed "
                                          "after it was saved)")


_EPOCH_FILE = re.compile(r"epoch_(\d+)\.pth$")


def epoch_checkpoints(work_dir):
    """The work dir's epoch_N.pth files, newest first."""
    return sorted((p for p in Path(work_dir).glob("epoch_*.pth") if _EPOCH_FILE.search(p.name)),
                  key=lambda p: int(_EPOCH_FILE.search(p.name)[1]), reverse=True)


def prune_epoch_checkpoints(work_dir, keep):
    """checkpoint.max_keep (mmaction2's max_keep_ckpts): only the newest `keep` epoch_N.pth stay;
    best.pth and latest.pth are not counted. keep None: every one stays."""
    for old in epoch_checkpoints(work_dir)[keep:] if keep else ():
        old.unlink(missing_ok=True)


def find_resumable(work_dir, say=print):
    """--resume auto: latest.pth, else the newest epoch_N.pth that reads and verifies; each one passed
    over is said with the reason. None when the work dir has no checkpoint at all; DamagedCheckpoint
    when it has some but none is readable."""
    work_dir = Path(work_dir)
    candidates = [p for p in [work_dir / "latest.pth", *epoch_checkpoints(work_dir)] if p.is_file()]
    if not candidates:
        return None
    for candidate in candidates:
        try:
            obj = safe_torch_load(candidate)
            if not (isinstance(obj, dict) and obj.get("format") == FORMAT and "optimizer" in obj):
                raise DamagedCheckpoint(candidate, "not a training checkpoint of tsm's (no optimizer state)")
            verify_content(obj, candidate)
        except UserError as e:
            say(f"--resume auto: passing over {candidate.name}: {e}")
            continue
        if candidate != candidates[0]:
            say(f"--resume auto: resuming from {candidate.name} (epoch {obj.get('epoch')}), the newest readable")
        return candidate
    raise DamagedCheckpoint(work_dir, f"none of its checkpoints is readable ({', '.join(p.name for p in candidates)}); "
                                      "start anew with another --work-dir, or remove them")


def resolve_checkpoint(spec):
    """A checkpoint as users name it -> a local file or package folder: a path; an http(s) URL; the file name
    of a checkpoint the model zoo publishes (fetched from mmaction2's download site into the cache once);
    or hf://ORG/NAME[@REVISION], a package on the Hugging Face Hub (fetched once into its cache)."""
    import difflib

    from .download import cached_download
    from .presets import zoo_checkpoints

    spec = str(spec)
    if spec.startswith(("http://", "https://")):
        return cached_download(spec, what="checkpoint")
    if spec.startswith(HUB_PREFIX):
        return hub_snapshot(spec)
    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / PACKAGE_WEIGHTS).is_file():
            return path
        raise UserError(f"{path} is a folder without {PACKAGE_WEIGHTS}: not a model package (tsm package writes "
                        "one); give a checkpoint file or a package folder")
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
    if path.is_dir() or path.suffix.lower() == ".safetensors":
        return read_package(path)
    obj = safe_torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        verify_content(obj, path)
        return {**obj, "format": "ours"}
    state_dict = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state_dict, dict) or not state_dict:
        raise UserError(f"{path}: no state_dict found")
    fmt = detect_format(state_dict)
    return {"format": fmt, "state_dict": to_ours(state_dict), "preset": None, "labels": None,
            "epoch": obj.get("epoch") if isinstance(obj, dict) else None}


def read_package(path):
    """A package folder's weights, or a .safetensors file written by tsm package, -> read_checkpoint's dict.
    Only tensors and JSON text come out of it: safetensors holds nothing that runs."""
    import json

    file = Path(path) / PACKAGE_WEIGHTS if Path(path).is_dir() else Path(path)
    safetensors = safetensors_module()
    try:
        with safetensors.safe_open(str(file), framework="pt") as opened:
            metadata = opened.metadata() or {}
            state_dict = {name: opened.get_tensor(name) for name in opened.keys()}
    except (OSError, safetensors.SafetensorError) as e:
        raise UserError(f"{file}: not a readable safetensors file ({e})") from None
    if metadata.get("format") != PACKAGE_FORMAT:
        raise UserError(f"{file} was not written by tsm package (its metadata has no preset): give a package "
                        "folder or a checkpoint")
    try:
        preset, labels = json.loads(metadata["preset"]), json.loads(metadata.get("labels", "null"))
    except (KeyError, ValueError) as e:
        raise UserError(f"{file}: its tsm metadata is damaged ({e})") from None
    return {"format": "ours", "state_dict": state_dict, "preset": preset, "labels": labels, "epoch": None,
            "package": str(path)}


def safetensors_module():
    try:
        import safetensors
        import safetensors.torch  # noqa: F401 - package_model's save_file
    except ImportError:
        raise UserError("model packages (model.safetensors) need safetensors: pip install 'tsm[hub]'") from None
    return safetensors


def hub_snapshot(spec):
    """hf://ORG/NAME[@REVISION] -> the local folder of that repository's files, downloaded once into
    huggingface_hub's cache (HF_HOME, HF_HUB_CACHE); with HF_HUB_OFFLINE=1 only the cache is read."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(f"{spec}: models on the Hugging Face Hub need the hub extra: pip install 'tsm[hub]'") from None
    repo, _, revision = spec[len(HUB_PREFIX):].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UserError(f"{spec}: name a Hub model as hf://ORG/NAME or hf://ORG/NAME@REVISION")
    try:
        folder = Path(snapshot_download(repo_id=repo, revision=revision or None, repo_type="model"))
    except Exception as e:  # noqa: BLE001 - the library's errors (offline, missing, no access) all mean: not here
        offline = " (HF_HUB_OFFLINE is set: only what is in the cache loads)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise UserError(f"{spec}: cannot get it from the Hugging Face Hub{offline}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not (folder / PACKAGE_WEIGHTS).is_file():
        raise UserError(f"{spec} has no {PACKAGE_WEIGHTS}: it is not a package written by tsm package")
    return folder
