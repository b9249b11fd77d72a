"""A user's own videos: a folder of class sub-folders, split by a ratio or by given list files."""
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..data.decode import VIDEO_SUFFIXES, MediaError
from ..errors import UserError
from .common import finish
from .video_io import probe_video



def _check(path):
    try:
        return path, probe_video(path), None
    except MediaError as e:
        return path, 0, e.reason


def prepare_custom(root, videos_dir=None, val_ratio=0.2, train_list=None, val_list=None, seed=0, workers=None,
                   name="custom", frames=None, resize=None, shard=None, progress=None):
    """Scan <videos_dir>/<class>/<video>, check every video decodes, write <name>_{train,val}_list_videos.txt,
    label_map.txt (classes in sorted folder order) and, if any video failed, failures.txt.
    frames / resize (e.g. 'short256'): also extract JPEG frames / write resized copies (media.py)."""
    videos_dir = videos_dir or os.path.join(root, "videos")
    if not os.path.isdir(videos_dir):
        raise UserError(f"{videos_dir} does not exist: expected <videos>/<class name>/<video files>")
    classes = sorted(d for d in os.listdir(videos_dir) if os.path.isdir(os.path.join(videos_dir, d)))
    if not classes:
        raise UserError(f"{videos_dir} has no class sub-folders")
    items = [(f"{c}/{f}", label) for label, c in enumerate(classes)
             for f in sorted(os.listdir(os.path.join(videos_dir, c))) if f.lower().endswith(VIDEO_SUFFIXES)]
    if not items:
        raise UserError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {videos_dir}/<class>/")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        checks = list(pool.map(_check, [os.path.join(videos_dir, rel) for rel, _ in items], chunksize=8))
    failed = {os.path.relpath(path, videos_dir): reason for path, _, reason in checks if reason}
    good = [(rel, label) for rel, label in items if rel not in failed]
    if train_list or val_list:
        splits = {"train": _read_split(train_list, good, videos_dir), "val": _read_split(val_list, good, videos_dir)}
    else:
        if not 0 <= val_ratio < 1:
            raise UserError(f"--val-ratio must be in [0, 1), got {val_ratio}")
        splits = _split_by_ratio(good, len(classes), val_ratio, seed)
    summary = finish(root, name, classes, splits, videos_dir, failed, frames, resize, workers, shard, progress)
    return {"classes": summary["classes"], "videos": len(items), "failed": summary["failed"],
            **{split: len(rows) for split, rows in splits.items()}}


def _split_by_ratio(items, num_classes, val_ratio, seed):
    """Per class, a seeded shuffle; round(n * ratio) videos (at least one when the class has two) to val."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in range(num_classes):
        rows = [it for it in items if it[1] == label]
        order = rng.permutation(len(rows))
        n_val = int(round(len(rows) * val_ratio))
        if val_ratio > 0 and n_val == 0 and len(rows) > 1:
            n_val = 1
        val += [rows[i] for i in sorted(order[:n_val])]
        train += [rows[i] for i in sorted(order[n_val:])]
    return {"train": train, "val": val}


def _read_split(path, good, videos_dir):
    if path is None:
        return []
    known = dict(good)
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            rel = line.strip().split()[0] if line.strip() else None
            if rel is None:
                continue
            rel = os.path.relpath(os.path.join(videos_dir, rel), videos_dir) if not os.path.isabs(rel) else \
                os.path.relpath(rel, videos_dir)
            if rel not in known:
                raise UserError(f"{path}:{number}: {rel} is not a decodable video under {videos_dir}/<class>/")
            rows.append((rel, known[rel]))
    return rows
