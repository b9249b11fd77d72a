"""`tsm prepare toy`: the synthetic dataset of video/synthetic.py, as lists and videos.

Its classes differ only in the order of their frames, so a model without temporal modelling stays at
chance within each pair of classes while the temporal shift learns them. The multi-label toy
(multi_label=True) shows a square and a circle in every clip, each moving left or right: each video has
two of the four labels, one per shape.
"""
import os

import numpy as np

from ..video import write_video
from ..video.synthetic import CLASSES, FRAMES, MULTI_LABEL_CLASSES, render, render_pair
from .common import finish

__all__ = ["CLASSES", "FRAMES", "MULTI_LABEL_CLASSES", "prepare_toy", "render", "render_pair"]


def prepare_toy(root, train_per_class=48, val_per_class=16, seed=0, size=64, frames=FRAMES, fps=12,
                extract=None, workers=None, multi_label=False):
    """Write root/videos/<class>/*.mp4, toy_{train,val}_list_videos.txt and label_map.txt; with
    extract='short64' etc. also JPEG frames and toy_{train,val}_list_rawframes.txt. multi_label: the
    multi-label toy instead (root/videos/<split>_NNNN.mp4, two labels a line, toy_multilabel_* lists).

    Returns a summary dict. Videos already present are kept (a re-run completes what is missing).
    """
    rng = np.random.default_rng(seed)
    if multi_label:
        name, classes, clips = "toy_multilabel", MULTI_LABEL_CLASSES, _multi_label_clips
    else:
        name, classes, clips = "toy", CLASSES, _single_label_clips
    splits = {"train": [], "val": []}
    written = kept = 0
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for relative, label, clip in clips(split, count, rng, size, frames):
            path = os.path.join(root, "videos", relative)
            if os.path.exists(path):
                kept += 1
            else:
                write_video(path, clip, fps=fps)
                written += 1
            splits[split].append((relative, label))
    finish(root, name, classes, splits, os.path.join(root, "videos"), frames=extract, workers=workers)
    return {"root": str(root), "classes": len(classes), "train": len(splits["train"]), "val": len(splits["val"]),
            "written": written, "kept": kept}


def _single_label_clips(split, count, rng, size, frames):
    """(relative path, label, clip) of `count` clips per class; every clip is drawn, also those already
    written, so the seed fixes each one."""
    for label, name in enumerate(CLASSES):
        for i in range(count):
            yield f"{name.replace(' ', '_')}/{split}_{i:04d}.mp4", label, render(label, rng, size, frames)


def _multi_label_clips(split, count, rng, size, frames):
    """The four (square, circle) direction pairs in turn, 2 x count clips: each label is on `count`."""
    for i in range(count * 2):
        square_right, circle_right = i % 2, (i // 2) % 2
        yield (f"{split}_{i:04d}.mp4", [square_right, 2 + circle_right],
               render_pair(square_right, circle_right, rng, size, frames))
