"""`--backend onnxruntime|openvino` with a checkpoint: the checkpoint exported once (verified as `tsm
export` verifies) and kept in a cache keyed by the checkpoint's bytes, its preset and overrides, what
is exported and how; later runs open the cached file. The cache is TSM_EXPORT_CACHE, else
<torch hub dir>/tsm-exported (beside the downloaded checkpoints)."""
import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..errors import UserError

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


def exported_checkpoint(checkpoint, backend, kind="whole", preset=None, precision="fp32", overrides=None, say=None):
    """The cached export of `checkpoint` for `backend` (kind: whole | stream_step), made now if missing."""
    from ..checkpoint import resolve_checkpoint

    if backend not in SUFFIX:
        raise UserError(f"--backend {backend}: use torch, onnxruntime or openvino")
    if precision not in ("fp32", "fp16"):
        raise UserError(f"{precision} is verified on real clips (and int8 calibrated on them): export it once with "
                        f"tsm export --precision {precision} [--calibrate CLIPS] and pass the exported file instead of "
                        "the checkpoint; bf16 on OpenVINO also runs as --backend openvino --amp bf16")
    path = resolve_checkpoint(checkpoint)
    key = json.dumps([file_sha256(path), preset, kind, backend, precision, sorted((overrides or {}).items())])
    name = f"{Path(str(path)).stem}-{kind}-{precision}-{hashlib.sha256(key.encode()).hexdigest()[:16]}{SUFFIX[backend]}"
    target = cache_dir() / name
    if target.is_file():
        return target
    if say:
        say(f"exporting {path} for {backend} ({kind}, {precision}) into {target}: once, later runs reuse it")
    _export(path, target, FORMAT[backend], kind, preset, precision, overrides or {})
    return target


def _export(checkpoint, target, format, kind, preset, precision, overrides):
    from ..api import load_model
    from ..data.pipeline import output_size, read_clip
    from ..evaluate import scheme_pipeline

    model = load_model(checkpoint, preset=preset, **overrides)
    steps = scheme_pipeline(model.preset["data"], "efficient")
    height, width = output_size(steps)
    with tempfile.TemporaryDirectory(prefix="tsm-export-") as scratch:
        clip = _toy_clip(scratch)
        if kind == "stream_step":
            from .stream_step import VERIFY_STEPS, export_step
            from ..streaming import FramePreprocessor, frames_of
            from ..streaming.incremental import check_streamable

            check_streamable(model)
            prepare = FramePreprocessor(model.preset)
            frames = [prepare(frame) for _, frame in frames_of(clip)[1]]
            frames = (frames * (VERIFY_STEPS // len(frames) + 1))[:max(VERIFY_STEPS, len(frames))]
            return export_step(model, target, height, width, frames, precision, format)
        from .whole import export_model, scheme_sizes

        real = read_clip(clip, steps, model.preset["data"]["filename_tmpl"], decoder=model.preset["data"]["decoder"])
        return export_model(model, target, height, width, real_clip=real.imgs[None], precision=precision,
                            format=format, other_sizes=scheme_sizes(model.preset))


def _toy_clip(folder):
    """A rendered toy clip (a square moving left), encoded as H.264 in `folder`: the real clip exports are
    checked on when no other is given."""
    import numpy as np

    from ..prepare.toy import render
    from ..video import write_video

    path = Path(folder) / "toy.mp4"
    write_video(path, render(0, np.random.default_rng(0), size=256, frames=32))
    return str(path)
