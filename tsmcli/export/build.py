"""Export a loaded model to a file, verified on a real clip: what `tsm export` and the `--backend` cache
both run (the whole model, or the streaming step)."""
import tempfile
from pathlib import Path

from .agreement import DEFAULT_MIN_AGREEMENT

NOT_STREAMABLE = "export the whole model (without --stream), which tsm stream runs in window mode (exact, re-runs the window)"


def export_file(predictor, out, stream=False, precision="fp32", format="onnx", video=None,
                min_agreement=DEFAULT_MIN_AGREEMENT, clips=None, checkpoint=None):
    """Write `out` (whole.export_model or stream_step.export_step) of an inference.Predictor's PyTorch
    model (loaded with fast=False: the export folds what it folds itself), verified on `video` [default: a
    rendered toy clip, encoded and decoded like any video] read through the predictor's transforms; clips:
    {"calibration", "held_out"} ClipSets for bf16/int8; checkpoint: the model's file, named in advice.
    Returns the verification report."""
    model = predictor.model
    transform = predictor.clip_transform("efficient")
    height, width = transform.size
    with tempfile.TemporaryDirectory(prefix="tsm-export-") as scratch:
        source = str(video) if video else toy_clip(scratch)
        if stream:
            from ..streaming import frames_of
            from ..streaming.incremental import check_streamable
            from .stream_step import VERIFY_STEPS, export_step

            check_streamable(model, instead=NOT_STREAMABLE, checkpoint=checkpoint)
            frames = [predictor.frame_transform(frame) for _, frame in frames_of(source)[1]]
            frames = (frames * (VERIFY_STEPS // len(frames) + 1))[:max(VERIFY_STEPS, len(frames))]
            return export_step(model, out, height, width, frames, precision, format, min_agreement)
        from .whole import export_model, scheme_sizes

        real = transform(source).imgs[None]
        return export_model(model, out, height, width, real_clip=real, precision=precision, format=format,
                            min_agreement=min_agreement, other_sizes=scheme_sizes(model.preset), **(clips or {}))


def toy_clip(folder):
    """A rendered toy clip (a square moving left), encoded as H.264 in `folder`."""
    import numpy as np

    from ..video import write_video
    from ..video.synthetic import render

    path = Path(folder) / "toy.mp4"
    write_video(path, render(0, np.random.default_rng(0), size=256, frames=32))
    return str(path)
