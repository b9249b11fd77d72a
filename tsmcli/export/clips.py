"""Real clips for reduced-precision exports: calibration (int8) and the held-out verification clips,
decoded through the one-view pipeline the exported graph takes (the `efficient` scheme)."""
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from ..errors import UserError


@dataclass
class ClipSet:
    clips: List[torch.Tensor]          # (1, T, 3, H, W) each
    labels: List[Optional[int]]        # None where the source has no labels (a folder of videos)
    paths: List[str]
    source: str
    unreadable: List[str]

    def __len__(self):
        return len(self.clips)

    def labelled(self):
        return bool(self.clips) and all(label is not None for label in self.labels)


def default_source(preset, split):
    """(list file, data root) of the preset's `split` where the list exists (what a model trained with tsm
    has), else (None, None)."""
    data = preset["data"]
    ann = data[split]["ann_file"]
    if ann and os.path.isfile(ann):
        return ann, data[split]["data_prefix"]
    return None, None


def read_clips(predictor, source, data_root=None, count=None, exclude=()):
    """Up to `count` clips of `source` (a list file in mmaction2's format, a folder searched for videos,
    or one video) through the predictor's one-view transform, spread evenly over it (lists are often
    sorted by class), skipping the paths in `exclude` (the calibration clips, when verification reads the
    same source)."""
    from ..data.annotations import load_annotations
    from ..video import VIDEO_SUFFIXES, MediaError

    data = predictor.preset["data"]
    transform = predictor.clip_transform("efficient")
    path = Path(source)
    if path.is_dir():
        entries = [(str(p), None) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES]
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        entries = [(str(path), None)]
    elif path.is_file():
        prefix = data_root if data_root is not None else ""
        records = load_annotations(str(path), data["format"], prefix, with_offset=data["with_offset"],
                                   multi_label=data["multi_label"])
        entries = [(r.path, int(r.label)) for r in records]
    else:
        raise UserError(f"{source} does not exist (a list file, a folder of videos or a video)")
    entries = [e for e in entries if e[0] not in set(exclude)]
    if not entries:
        raise UserError(f"{source}: no videos found" + (" besides the calibration clips" if exclude else ""))
    if count is not None and count < len(entries):
        entries = [entries[i] for i in np.linspace(0, len(entries) - 1, count).round().astype(int)]
    result = ClipSet([], [], [], str(source), [])
    for video, label in entries:
        try:
            clip = transform(video)
        except MediaError as e:
            result.unreadable.append(f"{e.path} ({e.reason})")
            continue
        result.clips.append(clip.imgs[None].float())
        result.labels.append(label)
        result.paths.append(video)
    if not result.clips:
        raise UserError(f"{source}: none of the {len(entries)} videos could be read (the first: {result.unreadable[0]})")
    return result
