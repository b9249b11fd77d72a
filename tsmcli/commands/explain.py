"""`tsm explain`: where the model looks (Grad-CAM) in the frames it samples from a video."""
from pathlib import Path
from typing import Optional

import typer

from . import options


def explain(
    video: Path = typer.Argument(..., help="A video file or a folder of JPEG frames."),
    ckpt: str = typer.Option(..., "--ckpt", help=options.CHECKPOINT_HELP),
    preset: Optional[str] = options.preset(required=False),
    target: Optional[str] = typer.Option(None, "--class", help="A class name (or index) [default: the predicted "
                                                               "class]."),
    layer: Optional[str] = typer.Option(None, help="The module whose activations are weighed, e.g. "
                                                   "backbone.layer3 [default: the last stage]."),
    png: Optional[Path] = typer.Option(None, "--png", help="The frame grid: .png, .svg or .pdf [default: beside "
                                                           "--out with .png, else VIDEO_gradcam.png here]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also the frames with their maps as a video "
                                                                 "(.mp4)."),
    device: str = options.device(),
    decoder: Optional[str] = options.decoder(),
):
    """Grad-CAM: a heat map per sampled frame (one view: the centre crop of one clip) for the predicted
    class or --class, overlaid on the frames: a grid with a colour bar (--png) and/or a video with the
    class, probability and frame written on it (--out) beside it. Works on every preset's architecture, on the model as loaded.
    Needs tsm[plots].

    Examples:

      tsm explain sample.mp4 --ckpt tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth

      tsm explain clip.mp4 --ckpt work_dirs/mine/best.pth --class waving --layer backbone.layer3 --out cam.mp4
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..devices import resolve_device
    from ..errors import UserError
    from ..inference import decoder_override, load_predictor
    from ..video import MediaError
    from ..viz import pyplot
    from ..viz.explain import draw_grid, explain_video, write_overlay_video

    pyplot()  # the extra is needed: say so before loading anything
    if out is not None and out.suffix.lower() != ".mp4":
        raise UserError(f"--out {out}: the video is written as .mp4")
    predictor = load_predictor(ckpt, preset=preset, device=resolve_device(device), fast=False,
                               **decoder_override(decoder))
    try:
        result = explain_video(predictor, video, target, layer)
    except MediaError as e:
        raise UserError(f"cannot read {e.path}: {e.reason}") from None
    if png is None:  # beside the video asked for, else named after the input: explaining another keeps this one
        png = out.with_suffix(".png") if out is not None else Path(f"{video.stem}_gradcam.png")
    written = []
    if png is not None:
        draw_grid(result, png, title=video.name)
        written.append(str(png))
    if out is not None:
        write_overlay_video(result, out)
        written.append(str(out))
    typer.echo(f"{video}: '{result['label']}' ({result['prob']:.1%}); wrote {' and '.join(written)}")
