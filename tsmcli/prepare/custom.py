"""A user's own videos: a folder of class sub-folders, or (multi-label) a CSV of video paths and their
labels; split by a ratio or by given list files."""
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ..atomic import write_text
from ..data.annotations import thin_validation_warning, videos_per_class
from ..errors import UserError
from ..presets import SMALL_PRESET
from ..presets.schema import MULTI_LABEL_METRICS
from ..signals import deferred, die_with_parent, ending
from ..video import VIDEO_SUFFIXES, MediaError, probe_video
from .common import finish


def _check(path, decoder="auto"):
    try:
        return path, probe_video(path, decoder), None
    except MediaError as e:
        return path, 0, e.reason


PRESET_FILE = "tsm.yaml"


def prepare_custom(root, videos_dir=None, val_ratio=0.2, train_list=None, val_list=None, seed=0, workers=None,
                   name="custom", frames=None, resize=None, shard=None, progress=None, base=SMALL_PRESET,
                   decoder="auto", labels_csv=None):
    """Scan <videos_dir>/<class>/<video>, check every video decodes, write <name>_{train,val}_list_videos.txt,
    label_map.txt (classes in sorted folder order), failures.txt if any video failed, and tsm.yaml: a preset
    extending `base` for these classes and lists (write_preset).
    labels_csv: multi-label videos instead, from a CSV of `video path,label;label;...` (paths relative to
    videos_dir; classes in sorted name order); the lists then carry several labels a line and the preset
    trains multi-label (data.multi_label).
    frames / resize (e.g. 'short256'): also extract JPEG frames / write resized copies (media.py); the
    preset then reads the frames (or else the resized copies)."""
    base_file = _trainable_base(base)
    videos_dir = videos_dir or os.path.join(root, "videos")
    if not os.path.isdir(videos_dir):
        raise UserError(f"{videos_dir} does not exist: expected <videos>/<class name>/<video files>"
                        + ("" if labels_csv is None else " (or the folder the CSV's paths are relative to: --videos)"))
    if labels_csv is not None:
        classes, items = read_labels_csv(labels_csv, videos_dir)
    else:
        classes = sorted(d for d in os.listdir(videos_dir) if os.path.isdir(os.path.join(videos_dir, d)))
        if not classes:
            raise UserError(f"{videos_dir} has no class sub-folders")
        items = [(f"{c}/{f}", label) for label, c in enumerate(classes)
                 for f in sorted(os.listdir(os.path.join(videos_dir, c))) if f.lower().endswith(VIDEO_SUFFIXES)]
    if not items:
        raise UserError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {videos_dir}/<class>/")
    pool = ProcessPoolExecutor(max_workers=workers or os.cpu_count(), initializer=die_with_parent)
    with ending(pool):
        with deferred():
            futures = [pool.submit(_check, os.path.join(videos_dir, rel), decoder) for rel, _ in items]
        checks = [future.result() for future in futures]
    failed = {os.path.relpath(path, videos_dir): reason for path, _, reason in checks if reason}
    good = [(rel, label) for rel, label in items if rel not in failed]
    if train_list or val_list:
        splits = {"train": _read_split(train_list, good, videos_dir), "val": _read_split(val_list, good, videos_dir)}
    else:
        if not 0 <= val_ratio < 1:
            raise UserError(f"--val-ratio must be in [0, 1), got {val_ratio}")
        splits = _split_by_ratio(good, len(classes), val_ratio, seed) if labels_csv is None else \
            _split_all_by_ratio(good, val_ratio, seed)
    for split, rows in splits.items():
        if not rows:
            raise UserError(f"no {split} videos: training validates on a split of its own; give "
                            f"{'--val-ratio above 0 or --val-list' if split == 'val' else '--train-list'}"
                            f" (decodable videos: {len(good)} of {len(items)})")
    summary = finish(root, name, classes, splits, videos_dir, failed, frames, resize, workers, shard, progress,
                     decoder=decoder)
    result = {"classes": summary["classes"], "videos": len(items), "failed": summary["failed"],
              **{split: len(rows) for split, rows in splits.items()}}
    if summary["failed"]:
        result["failures"] = os.path.join(root, "failures.txt")
    warning = thin_validation_warning(videos_per_class([label for _, label in splits["val"]], len(classes)), classes)
    if warning:
        result["warning"] = warning
    if shard is None:  # a shard has only its part of the frames; the unsharded run writes the preset
        result["preset"] = str(write_preset(root, base_file, name, len(classes), videos_dir, frames, resize,
                                            multi_label=labels_csv is not None))
    return result


def _trainable_base(base):
    from ..presets import find_preset_file, load_preset

    path = find_preset_file(base)
    if load_preset(path).get("inference_only"):
        raise UserError(f"--base {base} is a test-only preset (it has no training recipe); pick a trainable one "
                        f"(`tsm presets list`), e.g. {SMALL_PRESET}")
    return path


def write_preset(root, base_file, name, num_classes, videos_dir, frames=None, resize=None, multi_label=False):
    """<root>/tsm.yaml: the base preset with these classes, label map and lists, every path relative to
    the file itself, so `tsm train -p <root>/tsm.yaml` works from any folder."""
    from ..presets import dump_preset, store

    root = os.path.abspath(root)

    def rel(path):
        return os.path.relpath(os.path.abspath(path), root)

    extends = store.stem(base_file) if store.is_builtin(base_file) else rel(base_file)
    data = {"format": "videos"}
    if frames:
        data = {"format": "rawframes", "filename_tmpl": "img_{:05d}.jpg", "start_index": 1}
        lists, prefix = "{}_rawframes.txt", os.path.join(root, "rawframes")
    elif resize:
        suffix = resize.replace("x", "_")
        lists, prefix = "{}_videos_" + suffix + ".txt", os.path.join(root, f"videos_{suffix}")
    else:
        lists, prefix = "{}_videos.txt", videos_dir
    for split, written in (("train", "train"), ("val", "val"), ("test", "val")):
        data[split] = {"ann_file": lists.format(f"{name}_{written}_list"), "data_prefix": rel(prefix)}
    preset = {"extends": extends, "name": os.path.basename(root), "dataset": None,
              "description": f"{os.path.basename(root)}: {num_classes} classes of your own videos, on {extends}",
              "label_map": "label_map.txt", "model": {"num_classes": num_classes}, "data": data, "reference": []}
    if multi_label:
        data["multi_label"] = True
        preset["evaluation"] = {"metrics": list(MULTI_LABEL_METRICS)}
        preset["description"] = preset["description"].replace("classes", "labels (multi-label)")
    header = (f"# Written by `tsm prepare custom` for the videos in {videos_dir}; paths are relative to this file.\n"
              "# Train: tsm train -p THIS_FILE    Fine-tune a checkpoint: tsm finetune --from CKPT -p THIS_FILE\n"
              "# Edit freely: any key of `tsm presets show " + extends + "` can be set here.\n")
    path = os.path.join(root, PRESET_FILE)
    write_text(path, header + dump_preset(preset))
    return path


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


def read_labels_csv(path, videos_dir):
    """(classes, [(video path relative to videos_dir, [label indices])]) of a CSV whose rows are
    `video,label;label;...` (a first row `video,labels` is a header). Classes are the label names in
    sorted order; a row without a label or a path given twice is an error naming its line."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(number, row) for number, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise UserError(f"--labels {path} does not exist") from None
    if rows and rows[0][1][0].strip().lower() in ("video", "path", "filename"):
        rows = rows[1:]
    named, seen = [], {}
    for number, row in rows:
        if len(row) != 2 or not row[0].strip():
            raise UserError(f"{path}:{number}: expected 'video path,label;label;...' (two columns), got {','.join(row)!r}")
        video = row[0].strip()
        names = sorted({name.strip() for name in row[1].split(";") if name.strip()})
        if not names:
            raise UserError(f"{path}:{number}: {video} has no label; give at least one (labels separated by ';')")
        rel = os.path.relpath(video, videos_dir) if os.path.isabs(video) else os.path.normpath(video)
        if rel in seen:
            raise UserError(f"{path}:{number}: {video} is already on line {seen[rel]}; give each video once, with all "
                            "its labels")
        seen[rel] = number
        named.append((rel, names))
    if not named:
        raise UserError(f"--labels {path} lists no videos")
    classes = sorted({name for _, names in named for name in names})
    index = {name: i for i, name in enumerate(classes)}
    return classes, [(rel, [index[name] for name in names]) for rel, names in named]


def _split_all_by_ratio(items, val_ratio, seed):
    """Multi-label: one seeded shuffle of all videos; round(n * ratio) of them (at least one) to val."""
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = max(1, int(round(len(items) * val_ratio))) if val_ratio > 0 and len(items) > 1 else 0
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return {"train": [items[i] for i in train], "val": [items[i] for i in val]}
