"""`--backend onnxruntime|openvino` with a checkpoint: the checkpoint exported once (verified as `tsm
export` verifies) and kept in a cache keyed by the checkpoint's bytes, its preset and overrides, what
is exported and how; later runs open the cached file. The cache is TSM_EXPORT_CACHE, else
<torch hub dir>/tsm-exported (beside the downloaded checkpoints)."""
import hashlib
import json
import os
from pathlib import Path

from ..errors import OptionError
from ..runtime.engines import BACKENDS, is_exported

SUFFIX = {"onnxruntime": ".onnx", "openvino": ".xml"}
FORMAT = {"onnxruntime": "onnx", "openvino": "openvino"}


def cache_dir():
    if os.environ.get("TSM_EXPORT_CACHE"):
        return Path(os.environ["TSM_EXPORT_CACHE"])
    import torch

    return Path(torch.hub.get_dir()) / "tsm-exported"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def exported_checkpoint(checkpoint, backend, kind="whole", preset=None, overrides=None, say=None):
    """The cached fp32 export of `checkpoint` for `backend` (kind: whole | stream_step), made now if
    missing. (bf16 and int8 are judged on real clips, int8 calibrated on them: `tsm export` makes those;
    OpenVINO runs this fp32 file at bf16 when asked.)"""
    from ..checkpoint import PACKAGE_WEIGHTS, resolve_checkpoint

    if backend not in SUFFIX:
        raise OptionError("backend", backend, "use torch, onnxruntime or openvino")
    path = resolve_checkpoint(checkpoint)
    weights = path / PACKAGE_WEIGHTS if path.is_dir() else path  # a package folder: its weights file
    key = json.dumps([file_sha256(weights), preset, kind, backend, "fp32", sorted((overrides or {}).items())])
    name = f"{Path(str(path)).stem}-{kind}-fp32-{hashlib.sha256(key.encode()).hexdigest()[:16]}{SUFFIX[backend]}"
    target = cache_dir() / name
    if target.is_file():
        return target
    if say:
        say(f"exporting {path} for {backend} ({kind}, fp32) into {target}: once, later runs reuse it")
    _export(path, target, FORMAT[backend], kind, preset, overrides or {})
    return target


def load_predictor_on(backend, model, kind="whole", preset=None, device="cpu", say=None, **options):
    """inference.load_predictor for `--backend`: a checkpoint with onnxruntime or openvino runs as its fp32
    export (kind: whole, or stream_step for tsm stream's incremental mode), made once and cached here;
    options as load_predictor's (fast, amp, and preset overrides such as data__decoder)."""
    from ..inference import load_predictor

    if backend == "pytorch":
        backend = "torch"
    if backend is not None and backend not in BACKENDS:
        raise OptionError("backend", backend, f"use one of {', '.join(BACKENDS)}")
    if backend in (None, "torch") or is_exported(model):
        return load_predictor(model, preset=preset, device=device, backend=backend, **options)
    if torch_device_type(device) != "cpu":
        raise OptionError("device", str(device), f"the {backend} backend runs on the CPU here")
    how_read = {k: v for k, v in options.items() if k.startswith("data__")}  # how input is read: ours to change
    model_overrides = {k: v for k, v in options.items() if k not in how_read and k not in ("fast", "amp", "threads")}
    path = exported_checkpoint(model, backend, kind, preset, overrides=model_overrides, say=say)
    return load_predictor(path, backend=backend, amp=options.get("amp"), threads=options.get("threads"), **how_read)


def torch_device_type(device):
    import torch

    return torch.device(device).type


def _export(checkpoint, target, format, kind, preset, overrides):
    from ..inference import load_predictor
    from .build import export_file

    predictor = load_predictor(checkpoint, preset=preset, fast=False, **overrides)
    export_file(predictor, target, stream=kind == "stream_step", format=format)
