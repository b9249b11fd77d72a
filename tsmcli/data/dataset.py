"""Datasets and loaders built from a preset.

Each item's randomness comes from numpy's Generator seeded with (seed, epoch, index), so an item is the
same whatever the number of loader workers or their order; call set_epoch() between epochs. Loaders from
build_loader() send the epoch with each index (EpochTaggedSampler): persistent workers hold their own
copy of the dataset, which set_epoch() in the main process never reaches.
An unreadable video or frame folder never ends a run: in training the item is replaced by another one
and the failure travels in the item's meta, for whoever reads the batch to report (the training loop
into the run's log); in test mode the item comes back marked failed, with blank frames, so evaluation
can report it and keep it in the denominator. Nothing here prints or logs: loader workers may be other
processes, whose output would reach neither the run's log nor, in order, the terminal.
"""
import contextlib
import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler

from ..errors import UserError
from ..signals import die_with_parent, end_workers_at_exit
from ..video import MediaError
from .annotations import load_annotations
from .pipeline import Pipeline
from .transforms import Clip


class VideoDataset(Dataset):
    def __init__(self, records, pipeline: Pipeline, num_classes, multi_label=False, seed=0, max_retries=20):
        self.records, self.pipeline = records, pipeline
        self.num_classes, self.multi_label = num_classes, multi_label
        self.seed, self.epoch, self.max_retries = seed, 0, max_retries
        self._blank = None  # what a failed test item's frames look like (the pipeline's output on zeros)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.records)

    def _label(self, label):
        if self.multi_label:
            target = torch.zeros(self.num_classes)
            target[torch.as_tensor(label if isinstance(label, list) else [label])] = 1.0
            return target
        return torch.tensor(label, dtype=torch.long)

    def __getitem__(self, key):
        """key: an index, or (epoch, index) as EpochTaggedSampler sends it."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        rng = np.random.default_rng([self.seed, epoch, index])
        failures, source = [], index
        for _ in range(self.max_retries + 1):
            record = self.records[source]
            try:
                clip = self.pipeline(record, rng)
                break
            except MediaError as e:
                failures.append({"path": e.path, "reason": e.reason, "line": record.line})
                if self.pipeline.test_mode:
                    return self._failed_item(index, record, e)
                source = int(rng.integers(len(self.records)))
        else:
            raise RuntimeError(f"{self.max_retries + 1} unreadable videos in a row, the last "
                               f"{failures[-1]['path']}: is the data prefix right?")
        meta = {**clip.meta, "index": index, "source_index": source, "failures": failures, "failed": False}
        return {"imgs": clip.imgs, "label": self._label(clip.label), "meta": meta}

    def _failed_item(self, index, record, error):
        if self._blank is None:
            self._blank = blank_output(self.pipeline)
        meta = {"path": record.path, "index": index, "source_index": index, "failed": True,
                "failures": [{"path": error.path, "reason": error.reason, "line": record.line}],
                "frame_inds": [], "views": self.pipeline.sampler.views}
        return {"imgs": torch.zeros_like(self._blank), "label": self._label(record.label), "meta": meta}


def blank_output(pipeline, height=256, width=340, num_frames=64):
    """The pipeline's output for a black (height x width) video: its shape and dtype are what a failed
    test item is padded to."""
    inds = pipeline.sampler(num_frames, np.random.default_rng(0))
    clip = Clip(torch.zeros(len(inds), 3, height, width, dtype=torch.uint8), 0, {})
    for transform in pipeline.transforms:
        clip = transform(clip, np.random.default_rng(0))
    return clip.imgs


def collate(items):
    """Stack frames and labels; keep each item's meta dict in a list."""
    return {"imgs": torch.stack([it["imgs"] for it in items]),
            "label": torch.stack([it["label"] for it in items]),
            "meta": [it["meta"] for it in items]}


def build_dataset(preset, split="train", ann_file=None, data_prefix=None, seed=0, records=None, **overrides):
    """A Dataset for `split` (train | val | test) of a preset (name, alias, YAML path or resolved dict).

    Items: {"imgs": (views*T, 3, H, W), "label": class index (or multi-hot), "meta": {"frame_inds",
    "path", "views", "failures", ...}}. Keyword overrides nest with `__` (data__filename_tmpl=...).
    records: use these (an Annotations or a list of Record) instead of reading the split's list file.
    """
    from ..presets import resolve_preset

    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    cfg = resolve_preset(preset, [(k.replace("__", "."), v) for k, v in overrides.items()])
    data = cfg["data"]
    split_cfg = data[split]
    if records is None:
        list_file = ann_file or split_cfg["ann_file"]
        if not list_file:
            raise UserError(f"preset '{cfg['name']}' names no {split} list (data.{split}.ann_file): give one "
                            f"(tsm test --list, or --set data.{split}.ann_file=PATH data.{split}.data_prefix=DIR)")
        if not os.path.isfile(list_file):
            raise UserError(_missing_list(cfg, split, list_file, given=ann_file is not None))
        prefix = split_cfg["data_prefix"] if data_prefix is None else data_prefix
        records = load_annotations(list_file, data["format"], prefix, with_offset=data["with_offset"],
                                   multi_label=data["multi_label"])
        if prefix and not os.path.isdir(prefix):  # else every item would fail, one by one
            raise UserError(f"data prefix {prefix} (data.{split}.data_prefix, the folder the paths in {list_file} "
                            "are relative to) is not a folder")
        records.check_labels(cfg["model"]["num_classes"], list_file)
    pipeline = Pipeline(split_cfg["pipeline"], data["format"], data["filename_tmpl"], data["start_index"],
                        data["decoder"])
    dataset = VideoDataset(records, pipeline, cfg["model"]["num_classes"], data["multi_label"], seed=seed)
    dataset.preset = cfg
    return dataset


def _missing_list(cfg, split, list_file, given):
    from ..presets import DATASET_ORDER  # the datasets `tsm prepare` has a command for, with toy

    where = "" if given else f" (data.{split}.ann_file of preset '{cfg['name']}')"
    dataset = cfg["dataset"]
    command = {"toy_multilabel": "toy --multi-label"}.get(dataset, dataset)
    if not given and (dataset in ("toy", "toy_multilabel") or dataset in DATASET_ORDER) and not os.path.isabs(list_file):
        return (f"list file {list_file} does not exist{where}: run `tsm prepare {command}` first, in the folder "
                f"you run this from (paths such as data/{dataset}/ are read from there)")
    return (f"list file {list_file} does not exist{where}: prepare the data (`tsm prepare`) or give your list "
            f"(--set data.{split}.ann_file=PATH data.{split}.data_prefix=DIR)")


def _worker_init(_):
    torch.set_num_threads(1)  # the workers already use every core between them
    die_with_parent()


class EpochTaggedSampler(Sampler):
    """Yields (epoch, index), the epoch read from the dataset when each pass begins (in the main
    process), so that every loader worker draws the current epoch's randomness."""

    def __init__(self, sampler, dataset):
        self.sampler, self.dataset = sampler, dataset

    def __iter__(self):
        epoch = self.dataset.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self):
        return len(self.sampler)


def build_loader(dataset, batch_size, num_workers=2, shuffle=True, seed=0, sampler=None, collate_fn=collate):
    """DataLoader with pinned memory and persistent workers, over the sampler given (for DDP, a
    DistributedSampler) or a seeded shuffle."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    if sampler is None:
        sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    if isinstance(dataset, VideoDataset):
        sampler = EpochTaggedSampler(sampler, dataset)
    # Forked on Linux, as in a process started from the shell: a process of `--gpus N` (started by the
    # elastic launcher with spawn) inherits spawn, whose workers each import torch again (seconds apiece).
    context = "fork" if num_workers > 0 and sys.platform.startswith("linux") else None
    return _Loader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate_fn,
                   pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0,
                   worker_init_fn=_worker_init, generator=generator, multiprocessing_context=context)


class _Loader(DataLoader):
    """A DataLoader whose worker processes are ended at interpreter exit (signals.end_workers_at_exit):
    they ignore SIGTERM, so that a training run decides how they end."""

    def _get_iterator(self):
        iterator = super()._get_iterator()
        if self.num_workers > 0:
            end_workers_at_exit(iterator)
        return iterator


@contextlib.contextmanager
def workers_stopped_after(*loaders):
    """Stop the loaders' persistent workers when the block ends. Left to the garbage collector, they are
    stopped at some later moment, possibly after this process has forked another loader's workers, which
    inherit their pipes: each then waits out DataLoader's 5 s status timeout (15 s stalls in a second
    training run in the same process)."""
    try:
        yield
    finally:
        for loader in loaders:
            if getattr(loader, "_iterator", None) is not None:
                loader._iterator._shutdown_workers()
                loader._iterator = None
