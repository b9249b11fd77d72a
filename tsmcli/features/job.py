"""`tsm extract`'s job: features of many videos into one .npy per video under an output folder.

OUT/<relative path of the input>.npy (the suffix replaced), OUT/index.jsonl (one line per input, in
input order: path, file, shape, fps, views or windows; or the error that made it unreadable), and
OUT/.tsm-extract/ (the settings of the extraction and a journal per process). Each .npy is written
atomically and journalled after: a rerun skips what is done and redoes the rest, and a partial file
never remains. `--shard i/n` takes inputs i, i + n, ... (1-based); several processes (`--gpus N`,
torchrun) split a shard between them, and rank 0 writes the index once all are done.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_text
from ..errors import OptionError, UserError
from ..video import VIDEO_SUFFIXES, MediaError
from .extract import MODES, check_layer, clip_features, features_of
from .video import extract_features

LIST_SUFFIXES = (".txt", ".list", ".lst")
DTYPES = ("float32", "float16")
STATE = ".tsm-extract"


@dataclass
class Item:
    path: str  # what is read: a video file or a folder of frames
    key: str   # the output's path under OUT, without .npy


def gather_inputs(inputs, data_root=None):
    """Items of the inputs: video files (named by file name), folders (searched for videos and frame
    folders, named by their path inside the folder) and list files (named by the paths they list,
    read under data_root)."""
    items = []
    for given in map(Path, inputs):
        if given.is_dir():
            found = _search(given)
            if not found:
                raise UserError(f"{given}: no videos ({', '.join(VIDEO_SUFFIXES)}) or folders of JPEG frames in it")
            items += found
        elif given.suffix.lower() in LIST_SUFFIXES:
            items += _listed(given, data_root)
        elif given.exists():
            items.append(Item(str(given), given.stem))
        else:
            raise UserError(f"{given} does not exist")
    items = list({(item.key, item.path): item for item in items}.values())  # an input given twice: once
    paths_of = {}
    for item in items:
        paths_of.setdefault(item.key, []).append(item.path)
    # clip.mp4 and clip.avi side by side: both keep their extension (clip.mp4.npy, clip.avi.npy)
    items = [Item(item.path, item.key + Path(item.path).suffix) if len(paths_of[item.key]) > 1 else item
             for item in items]
    seen = {}
    for item in items:
        if item.key in seen:
            raise UserError(f"{seen[item.key]} and {item.path} would both be written to {item.key}.npy: extract "
                            "them into different --out folders")
        seen[item.key] = item.path
    return items


def _search(folder):
    items = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        relative = Path(root).relative_to(folder)
        if any(f.lower().endswith((".jpg", ".jpeg")) for f in files):
            items.append(Item(root, str(relative) if str(relative) != "." else Path(root).name))
            continue
        for name in sorted(files):
            if name.lower().endswith(VIDEO_SUFFIXES):
                items.append(Item(os.path.join(root, name), str((relative / name).with_suffix(""))))
    return items


def _listed(list_file, data_root):
    from ..data.annotations import list_paths

    rows = list_paths(list_file)
    if not rows:
        raise UserError(f"{list_file} lists no videos")
    root = Path(data_root) if data_root is not None else Path(".")
    items = []
    for _, path in rows:
        full = root / path
        if not Path(path).is_absolute() and ".." not in Path(path).parts:
            key = str(Path(path).with_suffix("") if Path(path).suffix.lower() in VIDEO_SUFFIXES else Path(path))
        else:
            key = full.stem
        items.append(Item(str(full), key))
    first = Path(items[0].path)
    if not first.exists() and data_root is None:
        raise UserError(f"{list_file}:{rows[0][0]}: {first} does not exist; the list's paths are read from the "
                        "current folder: give the folder they are relative to with --data-root")
    return items


def check_options(mode, dtype):
    if mode not in MODES:
        raise OptionError("mode", mode, f"use one of {', '.join(MODES)}")
    if dtype not in DTYPES:
        raise OptionError("dtype", dtype, f"use {' or '.join(DTYPES)}")


def parse_shard(text):
    """'i/n' (1-based) -> (i, n)."""
    try:
        i, n = map(int, str(text).split("/"))
    except ValueError:
        raise OptionError("shard", text, "write it as i/n, e.g. 1/4 for the first of four shards") from None
    if not 1 <= i <= n:
        raise OptionError("shard", text, f"i must be 1 to {n}")
    return i, n


class Journal:
    """What is done: each process appends a line per finished input to its own file under OUT/.tsm-extract;
    all of them are read back on a rerun."""

    def __init__(self, out_dir, name):
        self.folder = Path(out_dir) / STATE
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / f"journal-{name}.jsonl"

    def entries(self):
        """{input path: its entry}; an entry with a file counts only if that file still exists."""
        found = {}
        for journal in sorted(self.folder.glob("journal-*.jsonl")):
            for line in journal.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # a line cut short when a process was killed
                    continue
                if entry.get("file") and not (self.folder.parent / entry["file"]).is_file():
                    continue
                if entry.get("file") or entry["path"] not in found:
                    found[entry["path"]] = entry
        return found

    def add(self, entry):
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())


def check_settings(out_dir, settings):
    """The first run into OUT records its settings; a rerun with others would mix two kinds of features."""
    path = Path(out_dir) / STATE / "settings.json"
    if path.is_file():
        before = json.loads(path.read_text())
        changed = {k: (before.get(k), v) for k, v in settings.items() if before.get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise UserError(f"{out_dir} holds features extracted with other settings ({what}): write to another "
                            f"--out, or delete {out_dir} to start again")
    else:
        write_text(path, json.dumps(settings, indent=1))


def run_extraction(predictor, items, out_dir, settings, shard=(1, 1), world=1, rank=0, batch_size=None,
                   workers=None, progress=True):
    """Extract this process's share of the shard's items into out_dir with an inference.Predictor; rank 0
    writes the index.
    Returns {"index", "videos", "extracted", "skipped", "failed": [{"path", "error"}]}."""
    import torch.distributed as dist
    from tqdm import tqdm

    check_options(settings["mode"], settings["dtype"])
    if settings["layer"]:  # a wrong name is the command's error, not each video's
        check_layer(predictor.model, settings["layer"])
    mode, dtype = settings["mode"], settings["dtype"]
    i, n = shard
    mine = items[i - 1::n]
    if rank == 0:
        check_settings(out_dir, settings)
    if world > 1:
        dist.barrier()
    journal = Journal(out_dir, f"{i}of{n}-rank{rank}")
    done = {path for path, entry in journal.entries().items() if entry.get("file")}
    todo = [item for item in mine[rank::world] if item.path not in done]
    bar = tqdm(total=len(todo), unit="video", desc=f"extract ({mode})", disable=None if progress else True,
               dynamic_ncols=True)
    new = []
    for item, result in _features(predictor, todo, settings, batch_size, workers):
        entry = _save(item, result, out_dir, dtype)
        journal.add(entry)
        new.append(entry)
        bar.update(1)
    bar.close()
    if world > 1:
        dist.barrier()
    summary = {"videos": len(mine), "extracted": sum(1 for e in new if e.get("file")),
               "skipped": len([x for x in mine[rank::world] if x.path in done]),
               "failed": [{"path": e["path"], "error": e["error"]} for e in new if not e.get("file")]}
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, summary)
        summary = {"videos": len(mine), "extracted": sum(p["extracted"] for p in parts),
                   "skipped": sum(p["skipped"] for p in parts), "failed": [f for p in parts for f in p["failed"]]}
    index = Path(out_dir) / ("index.jsonl" if n == 1 else f"index-{i}-of-{n}.jsonl")
    if rank == 0:
        entries = journal.entries()
        write_text(index, "".join(json.dumps(entries[item.path]) + "\n" for item in mine if item.path in entries))
    return {"index": str(index), **summary}


def _save(item, result, out_dir, dtype):
    if isinstance(result, str):
        return {"path": item.path, "file": None, "error": result}
    file = item.key + ".npy"
    array = result.array.astype(dtype)
    with atomic_path(Path(out_dir) / file, needed=array.nbytes + 128) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)
    entry = {"path": item.path, "file": file, "shape": list(array.shape), "dtype": dtype, "fps": result.fps}
    if result.mode == "dense":
        entry.update(every=result.every, stride=result.stride, windows=result.windows, frames=result.frames)
    else:
        entry["views"] = result.views
    return entry


def _features(predictor, items, settings, batch_size, workers):
    """(item, Features or the reason it could not be read) for each item, in order."""
    if settings["mode"] == "dense":
        for item in items:
            try:
                yield item, extract_features(predictor, item.path, "dense", settings["layer"], stride=settings["stride"],
                                             every=settings["every"], batch_size=batch_size or 8)
            except (MediaError, UserError) as e:
                yield item, getattr(e, "reason", str(e))
        return
    yield from _clip_features(predictor, items, settings, batch_size, workers)


class _Clips(torch.utils.data.Dataset):
    """The items read through the predictor's clip transform in loader workers: (position, frames or None,
    meta or the reason)."""

    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, position):
        try:
            clip = self.transform(self.items[position].path)
            return position, clip.imgs, clip.meta
        except MediaError as e:
            return position, None, e.reason


def _clip_features(predictor, items, settings, batch_size, workers):
    from ..data import build_loader, workers_stopped_after

    data = predictor.preset["data"]
    clips = _Clips(items, predictor.clip_transform(settings["scheme"]))
    loader = build_loader(clips, batch_size or data["test_videos_per_gpu"],
                          data["workers_per_gpu"] if workers is None else workers, shuffle=False, collate_fn=list)
    with workers_stopped_after(loader):
        for batch in loader:
            readable = [(p, imgs, meta) for p, imgs, meta in batch if imgs is not None]
            per_frame = {}
            for shape in {imgs.shape for _, imgs, _ in readable}:  # one forward per frame size
                group = [(p, imgs) for p, imgs, _ in readable if imgs.shape == shape]
                clips_in = torch.stack([imgs for _, imgs in group]).to(predictor.device)
                out = clip_features(predictor.model, clips_in, settings["layer"])
                per_frame.update({p: f for (p, _), f in zip(group, out)})
            for position, imgs, meta in batch:
                item = items[position]
                yield item, (meta if imgs is None else features_of(per_frame[position], settings["mode"], meta))
