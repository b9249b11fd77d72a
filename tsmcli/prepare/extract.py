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

import numpy as np

from ..errors import UserError
from ..signals import deferred, die_with_parent, ending
from ..video import MediaError, open_video, transcode


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
        import torch

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


def extract_frames(job, size=("short", 256), filename_tmpl="img_{:05d}.jpg", quality=95, chunk=64,
                   decoder="auto"):
    """One video -> job.target/img_00001.jpg ... ; returns the number of frames written."""
    if os.path.isdir(job.target):
        return ("kept", len(os.listdir(job.target)))
    with open_video(job.source, decoder) as reader:
        h, w = target_size(*reader.frame_size, size)
        scale = None if (h, w) == reader.frame_size else (h, w)  # scaled while decoding
        for stale in glob.glob(glob.escape(job.target) + ".tmp-*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        tmp = f"{job.target}.tmp-{os.getpid()}"
        os.makedirs(tmp)
        try:
            count, batch = 0, []
            for _, frame in reader.frames(scale):
                batch.append(frame)
                if len(batch) == chunk:
                    count = _write_jpegs(batch, tmp, filename_tmpl, count, quality)
                    batch = []
            count = _write_jpegs(batch, tmp, filename_tmpl, count, quality)
            return _publish(tmp, job, count)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_jpegs(frames, folder, filename_tmpl, count, quality):
    """frames numbered from count + 1 in folder; -> the new count."""
    for data in _encode_jpegs(np.stack(frames), quality) if frames else ():
        count += 1
        with open(os.path.join(folder, filename_tmpl.format(count)), "wb") as f:
            f.write(data)
    return count


def _publish(tmp, job, count):
    """Rename a finished output into place: only complete outputs ever carry the target's name."""
    if count == 0:
        raise MediaError(job.source, "no frames")
    os.replace(tmp, job.target)
    return ("done", count)


def resize_video(job, size=("short", 256), gop=16, crf=18):
    """One video -> a resized H.264 copy with a keyframe every `gop` frames (cheap random access)."""
    if os.path.isfile(job.target):
        return ("kept", 0)
    count = transcode.resize_video(job.source, job.target, lambda h, w: target_size(h, w, size), gop, crf)
    return ("done", count)


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
        pool = ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent)
        with ending(pool):
            with deferred():
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
