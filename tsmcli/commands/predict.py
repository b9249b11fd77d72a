"""`tsm predict`: class names and probabilities for your own videos or frame folders."""
import json
from pathlib import Path
from typing import List, Optional

import typer

from . import options


def predict(
    inputs: List[Path] = typer.Argument(..., help="Video files or folders of JPEG frames (img_00001.jpg ...)."),
    ckpt: str = typer.Option(..., "--ckpt", help=options.CHECKPOINT_HELP),
    preset: Optional[str] = options.preset(required=False),
    top: int = options.top(),
    threshold: float = options.threshold(),
    scheme: str = typer.Option("preset", help="preset | efficient | accurate | dense (as in `tsm test`)."),
    device: str = options.device(),
    fast: bool = options.fast(),
    amp: Optional[str] = options.amp(),
    timeline: bool = typer.Option(False, help="A long video: top classes per window of T frames (at the stream's "
                                              "frame spacing, see tsm stream --every) and the windows merged into "
                                              "labelled segments (start, end, label, score)."),
    every: Optional[int] = typer.Option(None, min=1, help="With --timeline: source frames between sampled frames."),
    as_json: bool = typer.Option(False, "--json", help='One JSON object per input: {"video", "top": [{"index", '
                                                       '"label", "prob"}], "scores"}.'),
    decoder: Optional[str] = options.decoder(),
    backend: str = options.backend(),
):
    """Top classes for each video, with the checkpoint's label map (or the dataset's shipped one for
    mmaction2 checkpoints), through the preset's test pipeline; for a multi-label model, every class at or
    above --threshold.

    Examples:

      tsm predict sample.mp4 --ckpt tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth

      tsm predict clips/*.mp4 --ckpt work_dirs/tsm_r18_1x1x8_toy/best.pth --top 2 --json
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..devices import resolve_device
    from ..errors import UserError
    from ..export.cache import load_predictor_on
    from ..inference import decoder_override
    from ..process import leave_cores_to_engine
    from ..video import MediaError

    predictor = load_predictor_on(backend, ckpt, preset=preset, device=resolve_device(device), fast=fast, amp=amp,
                                  say=_say, **decoder_override(decoder))
    if predictor.model.exported:
        leave_cores_to_engine()
    if timeline:
        return _timelines(predictor, inputs, every, top, as_json, threshold)
    predictor.clip_transform(scheme)  # an unknown scheme is an error before any video is read
    failed = False
    for path in inputs:
        try:
            prediction = predictor(path, top=top, scheme=scheme, threshold=threshold)
        except MediaError as e:
            typer.echo(f"cannot read {e.path}: {e.reason}", err=True)
            failed = True
            continue
        if as_json:
            typer.echo(json.dumps(prediction.to_json()))
            continue
        typer.echo(f"{path}:")
        for best in prediction.top:
            typer.echo(f"  {best.prob:7.2%}  {best.label}")
        if not prediction.top:
            probs = prediction.probs
            typer.echo(f"  no class at or above {threshold:.0%} (the best: {predictor.labels[int(probs.argmax())]} "
                       f"{float(probs.max()):.2%})")
    if failed:
        raise UserError("some inputs could not be read (see above)")


def _timelines(predictor, inputs, every, top, as_json, threshold):
    from ..streaming.timeline import timeline

    for path in inputs:
        result = timeline(predictor, str(path), every=every, top=top, threshold=threshold)
        if as_json:
            typer.echo(json.dumps({"video": str(path), **result}))
            continue
        typer.echo(f"{path}: {len(result['windows'])} windows of {predictor.num_segments} frames, one every "
                   f"{result['every']} frames at {result['fps']:.3g} fps")
        for segment in result["segments"]:
            typer.echo(f"  {segment['start']:8.2f}s - {segment['end']:8.2f}s  {segment['label']}  "
                       f"({segment['score']:.1%})")


def _say(message):
    typer.echo(message, err=True)
