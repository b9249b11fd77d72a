"""Turning a prepared video list into frame folders or resized videos, and the lists that go with them."""
import os

from ..atomic import write_text
from ..data.annotations import label_text
from .extract import Job, extract_frames, parse_size, resize_video, run_jobs


def parse_shard(text):
    """'i/n' -> (i, n)."""
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like 0/4, got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"--shard {text}: the index must be in [0, {count})")
    return index, count


def process_videos(root, videos_dir, lists, frames=None, resize=None, workers=None, shard=None,
                   filename_tmpl="img_{:05d}.jpg", progress=None, frames_subdir="rawframes", decoder="auto"):
    """lists: {list name: [(relative video path, label)], ...}.

    frames='short256' etc.: extract to root/<frames_subdir>/<relative path without suffix>/ and write
    <list name>_rawframes.txt ("frame_dir total_frames label"); resize: write root/videos_<size>/ copies
    and <list name>_videos_<size>.txt. Failed videos are left out of the new lists and returned as
    [(path, reason)].
    """
    failures = []
    items = sorted({rel for rows in lists.values() for rel, _ in rows})
    if frames:
        jobs = [Job(os.path.join(videos_dir, rel), os.path.join(root, frames_subdir, os.path.splitext(rel)[0]))
                for rel in items]
        result = run_jobs(jobs, extract_frames, workers=workers, shard=shard, progress=progress,
                          size=parse_size(frames), filename_tmpl=filename_tmpl, decoder=decoder)
        failures += result["failed"]
        counts = {os.path.relpath(t, os.path.join(root, frames_subdir)): n for t, n in result["frames"].items()}
        if shard is None:  # with shards, each machine has only its part: lists come from an unsharded run
            for list_name, rows in lists.items():
                lines = [f"{os.path.splitext(rel)[0]} {counts[os.path.splitext(rel)[0]]} {label_text(label)}\n"
                         for rel, label in rows if os.path.splitext(rel)[0] in counts]
                write_text(os.path.join(root, f"{list_name}_rawframes.txt"), "".join(lines))
    if resize:
        suffix = resize.replace("x", "_")
        out_dir = os.path.join(root, f"videos_{suffix}")
        jobs = [Job(os.path.join(videos_dir, rel), os.path.join(out_dir, os.path.splitext(rel)[0] + ".mp4"))
                for rel in items]
        result = run_jobs(jobs, resize_video, workers=workers, shard=shard, progress=progress,
                          size=parse_size(resize, "--resize-videos"))
        failures += result["failed"]
        done = {os.path.relpath(t, out_dir) for t in result["frames"]}
        if shard is None:
            for list_name, rows in lists.items():
                lines = [f"{os.path.splitext(rel)[0]}.mp4 {label_text(label)}\n" for rel, label in rows
                         if os.path.splitext(rel)[0] + ".mp4" in done]
                write_text(os.path.join(root, f"{list_name}_videos_{suffix}.txt"), "".join(lines))
    return failures
