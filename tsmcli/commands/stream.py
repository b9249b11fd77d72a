"""`tsm stream`: online recognition of a video file, a frame folder, a camera or raw frames on stdin."""
import json
from pathlib import Path
from typing import Optional

import typer

from . import options


def stream(
    source: str = typer.Argument(..., help="A video file, a folder of frames, a camera (/dev/video0 or 0) or - "
                                           "(raw RGB frames on stdin, with --size)."),
    ckpt: str = typer.Option(..., "--ckpt", help=options.CHECKPOINT_HELP),
    preset: Optional[str] = options.preset(required=False),
    mode: str = typer.Option("auto", help="incremental (an online model, one frame per step, exact), window "
                                          "(any checkpoint: the last T frames re-run every --window-every "
                                          "steps, exact) or auto (incremental where the model allows)."),
    every: Optional[int] = typer.Option(None, min=1, help="Step on every N-th source frame [default: from the "
                                                          "preset and the source's fps, so the model sees frames "
                                                          "as far apart as in training]."),
    average: Optional[int] = typer.Option(None, min=1, help="Average the last N step outputs [default: T, the "
                                                            "model's segments, in incremental mode; 1 in window "
                                                            "mode]."),
    window_every: int = typer.Option(1, min=1, help="Window mode: re-run the window every K steps."),
    top: int = options.top(),
    threshold: float = options.threshold(),
    realtime: bool = typer.Option(False, help="Drop source frames whose moment has passed when the model is "
                                              "slower than the source."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the video with the current label drawn on "
                                                           "each frame (.mp4)."),
    fps: Optional[float] = typer.Option(None, min=0.001, help="Frame rate of a frame folder or of stdin [default: 30]; "
                                                   "overrides a video's."),
    size: Optional[str] = typer.Option(None, help="WIDTHxHEIGHT of the raw frames on stdin."),
    as_json: bool = options.as_json("One JSON object per step: {step, frame, time, top: [{index, label, prob}], "
                                    "latency_ms}."),
    device: str = options.device(),
    fast: bool = options.fast(),
    amp: Optional[str] = options.amp(),
    decoder: Optional[str] = options.decoder(),
    backend: str = options.backend(),
):
    """Class probabilities as the frames arrive. An online model (trained or fine-tuned with
    --set model.shift_mode=online) steps one frame at a time at about the cost of one 2D frame; any
    other checkpoint runs in window mode.

    Examples:

      tsm stream sample.mp4 --ckpt work_dirs/online/best.pth --out annotated.mp4

      tsm stream /dev/video0 --ckpt tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --realtime

      ffmpeg -i in.mp4 -f rawvideo -pix_fmt rgb24 - | tsm stream - --size 340x256 --ckpt best.pth --json
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..devices import resolve_device
    from ..errors import UserError
    from ..export.cache import load_predictor_on
    from ..inference import decoder_override
    from ..process import leave_cores_to_engine
    from ..streaming import Streamer, frames_of
    from ..streaming.annotate import AnnotatedVideo
    from ..streaming.sources import parse_size

    if out is not None and out.suffix.lower() != ".mp4":
        raise UserError(f"--out {out}: the annotated video is written as .mp4")
    device = resolve_device(device)
    predictor = load_predictor_on(backend, ckpt, kind=_export_kind(ckpt, preset, backend, mode), preset=preset,
                                  device=device, fast=fast, amp=amp, say=_say, **decoder_override(decoder))
    if predictor.model.exported:
        leave_cores_to_engine()
    source_fps, frames = frames_of(source, fps, parse_size(size), predictor.preset["data"]["decoder"])
    streamer = Streamer(predictor, mode=mode, every=every, average=average, top=top, realtime=realtime,
                        window_every=window_every, fps=source_fps, threshold=threshold)
    typer.echo(f"{source}: {streamer.mode} mode, a step every {streamer.every} frames at {source_fps:.3g} fps, "
               f"outputs averaged over {streamer.average}", err=True)
    filling = streamer.first_output_after
    if filling > 1:
        typer.echo(f"the first output comes once the model has its first {filling} frames (about "
                   f"{filling * streamer.every / source_fps:.1f} s of the source)", err=True)
    video = AnnotatedVideo(out, source_fps) if out else None
    caption, latencies, finished = "", [], False
    try:
        for index, (time, frame) in enumerate(frames):
            result = streamer.feed(index, time, frame)
            if result is not None:
                latencies.append(result.latency_ms)
                caption = ",  ".join(f"{label}  {prob:.0%}" for _, label, prob in result.top[:3]) or "-"
                if as_json:
                    typer.echo(json.dumps({"step": result.step, "frame": index, "time": round(time, 4),
                                           "top": [{"index": i, "label": n, "prob": round(p, 6)}
                                                   for i, n, p in result.top],
                                           "latency_ms": round(result.latency_ms, 3)}))
                else:
                    typer.echo(f"{time:8.2f}s  " + ("  |  ".join(f"{n} {p:.1%}" for _, n, p in result.top)
                                                    or f"no class at or above {threshold:.0%}"))
            if video is not None:
                video.write(frame, caption or f"filling: {streamer.taken}/{filling} frames")
        finished = True
    finally:
        if video is not None:
            video.close(keep=finished)
    if not latencies:
        raise UserError(f"{source}: too short for one output ({streamer.steps} steps; window mode needs "
                        f"{predictor.num_segments} frames at the step spacing {streamer.every}); try a smaller --every")
    summary = (f"{len(latencies)} outputs, {sum(latencies) / len(latencies):.1f} ms per step"
               + (f", {streamer.dropped} frames dropped" if streamer.dropped else ""))
    typer.echo(summary + (f"; wrote {out} ({video.frames} frames)" if video else ""), err=True)


def _say(message):
    typer.echo(message, err=True)


def _export_kind(ckpt, preset, backend, mode):
    """What --backend onnxruntime|openvino exports of a checkpoint: the streaming step where the stream
    runs incrementally, else the whole model (window mode)."""
    from ..api import load_model
    from ..runtime.engines import is_exported
    from ..streaming import resolve_mode

    if backend in ("torch", "pytorch") or is_exported(ckpt) or mode == "window":
        return "whole"
    return "stream_step" if resolve_mode(load_model(ckpt, preset=preset), mode) == "incremental" else "whole"
