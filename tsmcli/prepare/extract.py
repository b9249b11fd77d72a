"""Frame extraction and video resizing, in parallel, resumable, shardable.

Each job turns one video into a folder of JPEG frames (or a resized copy). Output is written under a
temporary name and renamed into place only when complete, so an interrupted run never leaves a half
folder that counts as done, and a re-run skips exactly the finished jobs. Failures (undecodable
videos) are collected, not raised.
"""
import glob
import io
import os
import re
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..data.decode import MediaError, open_video
from ..errors import UserError
from .video_io import add_h264_stream


@dataclass
class Job:
    source: str  # video file
    target: str  # frame folder, or video file for resize jobs


def target_size(height, width, size):
    """size: ('short', S) short side S | ('fixed', W, H) | ('height', H). -> (new_h, new_w), even sides."""
    kind = size[0]
    if kind == "short":
        scale = size[1] / min(height, width)
        h, w = height * scale, width * scale
    elif kind == "height":
        h, w = size[1], width * size[1] / height
    elif kind == "fixed":
        w, h = size[1], size[2]
    else:
        raise ValueError(f"unknown size {size!r}")
    return int(round(h / 2) * 2), int(round(w / 2) * 2)


_SIZE = re.compile(r"(?:(short|height)(\d+)|(\d+)x(\d+))")


def parse_size(text, option="--frames"):
    """'short256' | '340x256' | 'height100' -> a size tuple for target_size."""
    m = _SIZE.fullmatch(text.strip().lower())
    numbers = [int(n) for n in (m.groups() if m else ()) if n and n.isdigit()]
    if not m or min(numbers) == 0:
        hint = f" (short{text.strip()} for a short side of {text.strip()})" if text.strip().isdigit() else ""
        raise UserError(f"{option} {text}: expected short256 (short side), height100 (height) or 340x256 "
                        f"(width x height), sizes above 0{hint}")
    if m[1]:
        return (m[1], int(m[2]))
    return ("fixed", int(m[3]), int(m[4]))


def _encode_jpegs(frames, quality):
    """frames: uint8 (N, H, W, 3) -> list of JPEG bytes (libjpeg-turbo, batched; Pillow as fallback)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchvision.io import encode_jpeg
        chw = torch.from_numpy(frames).permute(0, 3, 1, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return [bytes(e.numpy()) for e in encode_jpeg(list(chw), quality=quality)]
    except ImportError:
        from PIL import Image

        out = []
        for frame in frames:
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            out.append(buf.getvalue())
        return out


def extract_frames(job, size=("short", 256), filename_tmpl="img_{:05d}.jpg", quality=95, chunk=64):
    """One video -> job.target/img_00001.jpg ... ; returns the number of frames written."""
    import decord

    if os.path.isdir(job.target):
        return ("kept", len(os.listdir(job.target)))
    reader = open_video(job.source)
    first = reader[0].shape
    reader.seek(0)
    h, w = target_size(first[0], first[1], size)
    if (h, w) != (first[0], first[1]):  # decord scales while decoding (FFmpeg's bilinear swscale)
        reader = decord.VideoReader(job.source, width=w, height=h, num_threads=1)
    for stale in glob.glob(glob.escape(job.target) + ".tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = f"{job.target}.tmp-{os.getpid()}"
    os.makedirs(tmp)
    try:
        count, finished = 0, False
        while not finished:
            batch = []
            try:
                while len(batch) < chunk:
                    batch.append(reader.next().asnumpy())
            except StopIteration:
                finished = True
            except Exception as e:  # noqa: BLE001 - decord signals a broken stream with its own errors
                reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
                raise MediaError(job.source, f"decoding stopped at frame {count + len(batch)} ({reason})") from None
            if not batch:
                break
            for data in _encode_jpegs(np.stack(batch), quality):
                count += 1
                with open(os.path.join(tmp, filename_tmpl.format(count)), "wb") as f:
                    f.write(data)
        return _publish(tmp, job, count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp, job, count):
    """Rename a finished output into place: only complete outputs ever carry the target's name."""
    if count == 0:
        raise MediaError(job.source, "no frames")
    os.replace(tmp, job.target)
    return ("done", count)


def resize_video(job, size=("short", 256), gop=16, crf=18):
    """One video -> a resized H.264 copy with a keyframe every `gop` frames (cheap random access)."""
    import av

    if os.path.isfile(job.target):
        return ("kept", 0)
    tmp = f"{job.target}.tmp-{os.getpid()}.mp4"
    os.makedirs(os.path.dirname(job.target) or ".", exist_ok=True)
    try:
        try:
            source = av.open(job.source)
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(job.source, f"cannot open video ({e})") from None
        with source, av.open(tmp, "w", format="mp4") as out:
            stream_in = source.streams.video[0]
            h, w = target_size(stream_in.codec_context.height, stream_in.codec_context.width, size)
            rate = stream_in.average_rate or 30
            stream = add_h264_stream(out, rate, w, h, crf, gop)
            stream.codec_context.time_base = Fraction(1, 1) / rate
            count = 0
            try:
                for frame in source.decode(stream_in):
                    frame = frame.reformat(width=w, height=h, format="yuv420p")
                    frame.pts, frame.time_base = count, stream.codec_context.time_base  # renumbered: 0, 1, 2 ...
                    for packet in stream.encode(frame):
                        out.mux(packet)
                    count += 1
            except av.error.FFmpegError as e:
                raise MediaError(job.source, f"decoding stopped at frame {count} ({e})") from None
            for packet in stream.encode():
                out.mux(packet)
        return _publish(tmp, job, count)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _run_one(fn, job, kwargs):
    try:
        status, frames = fn(job, **kwargs)
        return job, status, frames, None
    except MediaError as e:
        return job, "failed", 0, e.reason


def run_jobs(jobs, fn, workers=None, shard=None, progress=None, **kwargs):
    """Run extract_frames / resize_video over jobs in processes. shard=(i, n) takes every n-th job from i.
    progress(n, total=None) is told the number of jobs first, then each finished one.

    Returns {"done", "kept", "failed": [(source, reason)], "frames": {target: count}, "seconds"}.
    """
    if shard is not None:
        index, count = shard
        jobs = [job for k, job in enumerate(jobs) if k % count == index]
    result = {"done": 0, "kept": 0, "failed": [], "frames": {}, "seconds": 0.0}
    if progress:
        progress(0, total=len(jobs))
    start = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        outcomes = (_run_one(fn, job, kwargs) for job in jobs)
        _collect(outcomes, result, progress)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_run_one, fn, job, kwargs) for job in jobs]
            _collect((f.result() for f in as_completed(futures)), result, progress)
    result["seconds"] = time.perf_counter() - start
    return result


def _collect(outcomes, result, progress):
    for job, status, frames, reason in outcomes:
        if status == "failed":
            result["failed"].append((job.source, reason))
        else:
            result[status] += 1
            result["frames"][job.target] = frames
        if progress:
            progress(1)
