"""Throughput of a preset's data pipeline: clips per second, and where the time goes."""
import time

import numpy as np

from ..errors import UserError
from ..video import MediaError
from .annotations import Annotations
from .dataset import build_dataset, build_loader


def video_records(paths):
    """Annotations for plain video files (label 0), for benchmarking without a list file."""
    paths = [str(p) for p in paths]
    n = len(paths)
    return Annotations(paths, [[0]] * n, [-1] * n, [0] * n, list(range(1, n + 1)))


def measure(preset, split, clips, ann_file=None, data_prefix=None, videos=None, workers=0, progress=None,
            decoder=None):
    """Run `clips` items of the split's pipeline; returns clips/s and, in-process, the decode share.

    workers=0 runs in this process and splits the time into sampling+decoding and transforms;
    workers>0 measures a DataLoader (batch 1) end to end.
    """
    chosen = {"data__decoder": decoder} if decoder else {}
    if videos:
        dataset = build_dataset(preset, split, records=video_records(videos), data__format="videos", **chosen)
    else:
        dataset = build_dataset(preset, split, ann_file=ann_file, data_prefix=data_prefix or "", **chosen)
    n = len(dataset.records)
    if workers:
        loader = build_loader(dataset, batch_size=1, num_workers=workers, shuffle=False)
        next(iter(loader))  # start the workers before timing
        start, done = time.perf_counter(), 0
        while done < clips:
            for _ in loader:
                done += 1
                if progress:
                    progress(1)
                if done >= clips:
                    break
        return {"clips_per_s": clips / (time.perf_counter() - start), "clips": clips, "workers": workers}
    pipeline = dataset.pipeline
    rng = np.random.default_rng(0)
    try:
        pipeline(dataset.records[0], rng)  # warm-up: first decoder start, lazy imports
    except MediaError as e:
        raise UserError(f"cannot benchmark on unreadable media: {e}") from None
    load_time = transform_time = 0.0
    for i in range(clips):
        t0 = time.perf_counter()
        clip = pipeline.load(dataset.records[i % n], rng)
        t1 = time.perf_counter()
        for transform in pipeline.transforms:
            clip = transform(clip, rng)
        transform_time += time.perf_counter() - t1
        load_time += t1 - t0
        if progress:
            progress(1)
    total = load_time + transform_time
    return {"clips_per_s": clips / total, "clips": clips, "workers": 0,
            "decode_ms_per_clip": 1e3 * load_time / clips, "transform_ms_per_clip": 1e3 * transform_time / clips,
            "output_shape": list(clip.imgs.shape)}

