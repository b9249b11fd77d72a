"""mmaction2 0.x list files.

rawframes:  frame_dir total_frames label [label ...]          (with_offset: frame_dir offset total_frames label ...)
videos:     path label [label ...]
Relative paths are joined to the data prefix. Several labels on a line need multi_label.
"""
import os
import re
from dataclasses import dataclass
from typing import List

import numpy as np

from ..errors import UserError
from ..video import VIDEO_SUFFIXES

FEW_VALIDATION_VIDEOS = 3  # below this a class's validation accuracy moves by a third or more per video


def thin_validation_warning(videos_per_class, names, minimum=FEW_VALIDATION_VIDEOS):
    """A warning naming the classes with fewer than `minimum` validation videos, or None."""
    thin = [f"{names[i]}: {int(n)}" for i, n in enumerate(videos_per_class) if n < minimum]
    if not thin:
        return None
    return (f"warning: {len(thin)} of {len(videos_per_class)} classes have fewer than {minimum} validation "
            f"videos ({', '.join(thin[:10])}{', ...' if len(thin) > 10 else ''}): their accuracy is a coin toss. "
            "Add videos, or give more of them to validation (tsm prepare custom --val-ratio)")


def videos_per_class(labels, num_classes):
    """(num_classes,) how many videos carry each class, of one label or a list of them per video (a
    multi-label video counts for each of its classes)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for label in labels:
        counts[np.atleast_1d(np.asarray(label, dtype=np.int64))] += 1
    return counts


@dataclass
class Record:
    path: str
    labels: List[int]
    total_frames: int = -1  # -1: read from the video
    offset: int = 0
    line: int = 0  # 1-based line in the list file, for messages

    @property
    def label(self):
        """The class index, or the list of them for a multi-label line."""
        return self.labels[0] if len(self.labels) == 1 else list(self.labels)


class Annotations:
    """A parsed list file, stored column-wise (a Kinetics list is 240 000 lines); indexing gives a Record."""

    def __init__(self, paths, labels, total_frames, offsets, lines):
        self.paths, self.labels, self.total_frames, self.offsets, self.lines = \
            paths, labels, total_frames, offsets, lines

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        labels = self.labels[i]
        if isinstance(labels, np.ndarray):
            labels = labels.tolist()
        return Record(self.paths[i], labels, int(self.total_frames[i]), int(self.offsets[i]), int(self.lines[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def videos_per_class(self, num_classes):
        return videos_per_class(self.labels, num_classes)

    def check_labels(self, num_classes, source):
        """Every label must be a class of the model: name the first line that is not."""
        if isinstance(self.labels, np.ndarray):
            bad = np.nonzero((self.labels >= num_classes).any(axis=1))[0]
            first = int(bad[0]) if len(bad) else None
        else:
            first = next((i for i, labels in enumerate(self.labels) if max(labels) >= num_classes), None)
        if first is not None:
            label = max(np.asarray(self.labels[first]).tolist())
            raise UserError(f"{source}:{int(self.lines[first])}: label {label} is not a class of this model "
                            f"({num_classes} classes, 0 to {num_classes - 1}): set model.num_classes to the "
                            "number of classes, or use a checkpoint trained on this list")


def label_text(label):
    """The labels of a list line as written: one class index, or several separated by spaces."""
    return " ".join(map(str, label)) if isinstance(label, (list, tuple)) else str(label)


def load_annotations(ann_file, data_format, data_prefix="", with_offset=False, multi_label=False):
    """Parse a list file. Errors name the file, the line and what was expected."""
    if data_format not in ("rawframes", "videos"):
        raise ValueError(f"data format must be rawframes or videos, got {data_format!r}")
    try:
        with open(ann_file) as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"annotation file {ann_file} does not exist") from None
    head = 0 if data_format == "videos" else (2 if with_offset else 1)  # numbers before the labels
    prefix = data_prefix or ""
    fast = _parse_uniform(text, head, multi_label, prefix)
    records = fast if fast is not None else _parse_lines(text, ann_file, head, multi_label, prefix)
    if not len(records):
        raise UserError(f"annotation file {ann_file} lists no videos: fill it (`tsm prepare` writes the lists) "
                        "or point the preset's ann_file at another list")
    return records


def _parse_uniform(text, head, multi_label, prefix):
    """The common case, vectorised: every line has the same fields separated by single spaces.

    Returns None when that is not so or any value is off; the line-by-line parser then reports exactly.
    """
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or "\t" in text or "\r" in text:
        return None
    width = len(lines[0].split(" "))
    if width < head + 2 or (width > head + 2 and not multi_label):
        return None
    if not all(line.count(" ") == width - 1 for line in lines):
        return None
    tokens = text.split()
    if len(tokens) != width * len(lines):
        return None
    try:
        numbers = np.array([tokens[i::width] for i in range(1, width)]).astype(np.int64).T
    except ValueError:
        return None
    labels = numbers[:, head:]
    totals = numbers[:, head - 1] if head else np.full(len(lines), -1)
    offsets = numbers[:, 0] if head == 2 else np.zeros(len(lines), dtype=np.int64)
    if (labels < 0).any() or (totals == 0).any() or (totals < -1).any() or (offsets < 0).any():
        return None
    join = prefix.rstrip("/") + "/" if prefix else ""
    paths = [p if p.startswith("/") or not join else join + p for p in tokens[0::width]]
    return Annotations(paths, labels, totals, offsets, np.arange(1, len(lines) + 1))


_LINE = re.compile(r"\s*(?P<path>.*?\S)(?P<numbers>(?:\s+[-+]?\d+)+)\s*$")


def _parse_lines(text, ann_file, head, multi_label, prefix):
    paths, labels, totals, offsets, lines = [], [], [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        # The path runs to the last word that is not an integer, so it may hold spaces ("clip 1.mp4 0").
        match = _LINE.match(line)
        parts = [match["path"], *match["numbers"].split()] if match else line.split()
        try:
            numbers = list(map(int, parts[1:]))
        except ValueError:
            numbers = None
        if numbers is not None and head and not multi_label and len(numbers) > head + 1:
            parts, numbers = _frame_dir_ending_in_numbers(line, parts, numbers, head, prefix)
        if numbers is None or len(numbers) < head + 1:
            expected = {0: "path label [label ...]", 1: "frame_dir total_frames label [label ...]",
                        2: "frame_dir offset total_frames label [label ...]"}[head]
            hint = ""
            if head and line.split()[0].lower().endswith(VIDEO_SUFFIXES):
                hint = "; this looks like a list of videos: set data.format=videos"
            raise UserError(f"{ann_file}:{number}: expected '{expected}' (integers after the path), "
                            f"got {line.strip()!r}{hint}")
        line_labels = numbers[head:]
        if len(line_labels) > 1 and not multi_label:
            raise UserError(f"{ann_file}:{number}: {len(line_labels)} labels on one line; set "
                            "data.multi_label=true for multi-label lists")
        total = numbers[head - 1] if head else -1
        if total == 0 or min(line_labels) < 0 or (head == 2 and numbers[0] < 0):
            raise UserError(f"{ann_file}:{number}: labels and frame counts must be positive: {line.strip()!r}")
        paths.append(os.path.join(prefix, parts[0]) if prefix else parts[0])
        labels.append(line_labels)
        totals.append(total)
        offsets.append(numbers[0] if head == 2 else 0)
        lines.append(number)
    return Annotations(paths, labels, totals, offsets, lines)


def _frame_dir_ending_in_numbers(line, parts, numbers, head, prefix):
    """A frame folder whose name ends in numbers ("clip 0", from the video "clip 0.mp4") reads as more
    numbers than a single-label line has: where that folder exists, it is the path."""
    words = line.rsplit(None, head + 1)
    folder = words[0].strip()
    if os.path.isdir(os.path.join(prefix, folder) if prefix else folder):
        return words, numbers[-(head + 1):]
    return parts, numbers


def list_paths(ann_file):
    """(line number, path) of each line of a list, with or without the numbers after the path: for
    commands that only read the videos (tsm extract), so lists without labels work too."""
    try:
        with open(ann_file) as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(f"list file {ann_file} does not exist") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            match = _LINE.match(line)
            rows.append((number, match["path"] if match else line.strip()))
    return rows

