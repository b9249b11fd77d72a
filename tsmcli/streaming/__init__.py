"""Streaming recognition: class probabilities as frames arrive, from a file, a camera or a pipe.

    predictor = tsmcli.load_predictor("best.pth")
    for result in tsmcli.stream(predictor, "clip.mp4"):      # or a camera, "-", an iterable of frames
        print(result.time, result.top[0])

Two modes. `incremental` steps an online model (model.shift_mode: online) one frame at a time with a
small cached state per shifted layer (incremental.py): exact, and about the cost of one 2D frame.
`window` re-runs the whole model on the last T frames every k steps (window.py): exact for any
checkpoint. `auto` picks incremental where the model allows it.

Frame spacing: a model trained on T segments spread over a whole clip sees frames far apart; consecutive
30 fps frames are another input. The stream steps on every s-th source frame, s from the preset (dense
sampling: its frame interval; uniform segments: the typical clip length of its dataset / T) and the
source's frame rate, unless `every` is given; `average` sets how many steps' logits are averaged (then softmax, as the model's consensus does: with
average = T in incremental mode, the output after the first T steps equals the offline model's on
those T frames; later, each frame also carries what the shift brought from before the window).
"""
import time as clock
from dataclasses import dataclass
from typing import List, Tuple

import torch

from ..errors import OptionError, UserError
from ..inference import ClipModel, Predictor
from ..models.recognizer import probabilities
from .incremental import IncrementalStream, StreamStep, check_streamable, per_frame_logits
from .sources import open_source
from .window import WindowStream

MODES = ("auto", "incremental", "window")
# Typical clip lengths (seconds) of the datasets whose presets sample T segments over a whole clip.
CLIP_SECONDS = {"kinetics400": 10.0, "sthv1": 4.0, "sthv2": 4.0, "jester": 3.0, "diving48": 5.0, "hmdb51": 3.0,
                "ucf101": 7.0, "toy": 16 / 12, "toy_multilabel": 16 / 12}
DEFAULT_CLIP_SECONDS = 5.0
REFERENCE_FPS = 30.0  # the frame rate dense sampling intervals are written for (Kinetics)

__all__ = ["stream", "Streamer", "frames_of", "resolve_mode", "StreamResult", "IncrementalStream", "WindowStream", "StreamStep", "frame_spacing",
           "per_frame_logits", "open_source", "MODES"]


@dataclass
class StreamResult:
    step: int                  # steps taken so far (1 for the first)
    frame_index: int           # the source frame of this step
    time: float                # its time in the source, seconds
    probs: torch.Tensor        # (K,) softmax (multi-label: sigmoid) of the mean logits of the last `average` steps
    top: List[Tuple[int, str, float]]  # (class index, name, probability), best first; multi-label: those >= threshold
    latency_ms: float          # the model's time for this step
    dropped: int               # source frames dropped so far (realtime)


def frame_spacing(preset, fps):
    """Source frames between two steps, from the preset's validation sampling and the source's fps."""
    sampler = preset["data"]["val"]["pipeline"][0]
    if sampler["type"] == "DenseSampleFrames" or sampler.get("clip_len", 1) > 1:
        return max(1, round(sampler.get("frame_interval", 1) * fps / REFERENCE_FPS))
    seconds = CLIP_SECONDS.get(preset["dataset"], DEFAULT_CLIP_SECONDS)
    return max(1, round(seconds * fps / preset["model"]["num_segments"]))


def resolve_mode(model: ClipModel, mode):
    if mode not in MODES:
        raise OptionError("mode", mode, f"use one of {', '.join(MODES)}")
    if model.exported:  # what the file holds decides
        possible = "incremental" if model.kind == "stream_step" else "window"
        if mode not in ("auto", possible):
            raise OptionError("mode", mode, f"{model.describe()} holds " + (
                "a streaming step, which runs in incremental mode" if model.kind == "stream_step" else
                "the whole model, which streams in window mode; for incremental mode export the streaming step "
                "(tsm export CKPT --stream) or give the checkpoint with --backend"))
        return possible
    if mode == "auto":
        try:
            check_streamable(model)
            return "incremental"
        except UserError:
            return "window"
    if mode == "incremental":
        check_streamable(model)
    return mode


class Streamer:
    """Feeds source frames to a predictor's model in one of the MODES; `feed(index, time, frame)` returns a
    StreamResult on the frames it steps on, else None. Frames are prepared by predictor.frame_transform and
    run under the predictor's precision."""

    def __init__(self, predictor: Predictor, mode="auto", every=None, average=None, top=5, realtime=False,
                 window_every=1, fps=30.0, threshold=0.5):
        model = predictor.model
        self.predictor = predictor
        self.mode = resolve_mode(model, mode)
        self.fps, self.top, self.realtime = fps, top, realtime
        self.multi_label, self.threshold = predictor.multi_label, threshold
        self.every = every or frame_spacing(predictor.preset, fps)
        if model.kind == "stream_step":
            self.runner = model.stream()
        else:
            self.runner = IncrementalStream(model) if self.mode == "incremental" else WindowStream(model, window_every)
        self.average = average or (model.num_segments if self.mode == "incremental" else 1)
        self.preprocess = predictor.frame_transform
        self.device = predictor.device
        self.labels = predictor.labels
        self.recent, self.steps, self.dropped, self.since, self.start = [], 0, 0, self.every, None
        self.taken = 0  # frames given to the model; window mode answers once it has its first T
        self.first_output_after = model.num_segments if self.mode == "window" and model.kind != "stream_step" else 1
        self.amp = predictor.dtype  # an autocast dtype (bf16 on CPUs with AVX512-BF16 / AMX, fp16 on GPUs) or None

    def feed(self, index, time, frame):
        if self.start is None:
            self.start = clock.perf_counter() - time
        if self.realtime and clock.perf_counter() - self.start > time + 1.0 / self.fps:
            self.dropped += 1  # behind the source: this frame's moment has passed
            return None
        self.since += 1
        if self.since < self.every:
            return None
        self.since = 0
        x = self.preprocess(frame).to(self.device)
        self.taken += 1
        tick = clock.perf_counter()
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            output = self.runner.step(x)
        latency = (clock.perf_counter() - tick) * 1e3
        if output is None:
            return None
        # the mean of the last logits, then softmax: the consensus the model was trained with (averaging
        # probabilities instead lets the early, past-blind frames of an online model outvote the rest)
        self.recent = (self.recent + [output[0].float().cpu()])[-self.average:]
        mean = probabilities(torch.stack(self.recent).mean(0), self.multi_label)
        self.steps += 1
        return StreamResult(self.steps, index, float(time), mean, self.predictor.top(mean, self.top, self.threshold),
                            latency, self.dropped)


def frames_of(source, fps=None, size=None, decoder="auto"):
    """(frames per second, iterator of (time, frame)) of a path (see open_source) or an iterable of frames."""
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        opened = open_source(source, fps, size, decoder)
        return opened.fps, iter(opened)
    fps = fps or 30.0
    return fps, ((i / fps, frame) for i, frame in enumerate(source))


def stream(predictor, source, fps=None, size=None, **options):
    """Yield a StreamResult per step over `source`: a path (video file, frame folder, /dev/videoN, '-'),
    or any iterable of uint8 (H, W, 3) frames (at `fps`, default 30). predictor: a Predictor
    (tsmcli.load_predictor), or a model, run as it is. options: those of Streamer (mode, every, average,
    top, realtime, window_every, threshold)."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    fps, frames = frames_of(source, fps, size, predictor.preset["data"]["decoder"])
    streamer = Streamer(predictor, fps=fps, **options)
    for index, (time, frame) in enumerate(frames):
        result = streamer.feed(index, time, frame)
        if result is not None:
            yield result
