"""The video decoders side by side in one process (docs/benchmarks.md, "Video decoders"): for each decoder
tsm can use, on ../shared/fixtures/videos/ and on re-encoded copies with a keyframe every 16 frames (what
`tsm prepare --resize-videos` writes), the fetches the data pipeline and streaming make:

    train   8 random segments (SampleFrames, K400 training)
    test    8 uniform segments (test mode)
    twice   the same plus the segments' starts (twice_sample: 16 frames)
    dense   8 frames in a random 64-frame window (DenseSampleFrames)
    full    every frame in order (streaming, frame extraction)

Each fetch opens the video anew, as each item of the loader does, with one decoder thread. Rounds
alternate the decoders; the figure is the median time. Pixels are compared with decord's frames for
the same indices (the same frames for `full`): identical, or the largest difference in uint8 levels and
the share of values that differ.

    python benchmarks/decoders.py [--rounds 5] [--decoders pyav torchcodec decord]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from tsmcli.data.sampling import DenseSampleFrames, SampleFrames
from tsmcli.video import MediaError, available_decoders, open_video, resize_video

VIDEOS = Path(__file__).resolve().parents[2] / "shared/fixtures/videos"
FETCHES = {
    "train": SampleFrames(num_clips=8),
    "test": SampleFrames(num_clips=8, test_mode=True),
    "twice": SampleFrames(num_clips=8, test_mode=True, twice_sample=True),
    "dense": DenseSampleFrames(num_clips=8, sample_range=64),
}


def fetch(path, decoder, kind, seed):
    """-> (frames as uint8 (N, H, W, 3), the indices) for one item."""
    with open_video(path, decoder) as reader:
        if kind == "full":
            return np.stack([f for _, f in reader.frames()]), None
        indices = FETCHES[kind](len(reader), np.random.default_rng(seed))
        return reader.get(indices).permute(0, 2, 3, 1).numpy(), indices


def pixel_difference(a, b):
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return "identical" if not diff.any() else f"max {diff.max()}, {np.count_nonzero(diff) / diff.size:.2%} differ"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decoders", nargs="+", default=available_decoders())
    parser.add_argument("--fetches", nargs="+", default=list(FETCHES) + ["full"])
    args = parser.parse_args()
    reference = "decord" if "decord" in args.decoders else None
    with tempfile.TemporaryDirectory() as tmp:
        videos = sorted(VIDEOS.glob("*.*"))
        for video in list(videos):
            copy = Path(tmp) / f"{video.stem}_{video.suffix[1:]}_gop16.mp4"
            resize_video(str(video), str(copy), lambda h, w: (h - h % 2, w - w % 2), gop=16)
            videos.append(copy)
        print(f"decoders: {', '.join(args.decoders)}; {args.rounds} rounds; ms per clip (median), clips/s, frames/s; "
              f"pixels against {reference or 'nothing (decord is not installed)'}\n")
        totals = {(d, k): 0.0 for d in args.decoders for k in args.fetches}
        frame_totals = {(d, k): 0 for d in args.decoders for k in args.fetches}
        for kind in args.fetches:
            print(f"| {kind} | frames | " + " | ".join(f"{d} ms" for d in args.decoders)
                  + " | " + " | ".join(f"{d} pixels" for d in args.decoders if d != reference) + " |")
            print("|---|---|" + "---|" * (2 * len(args.decoders) - (1 if reference else 0)))
            for video in videos:
                times = {d: [] for d in args.decoders}
                outputs, failed = {}, {}
                for d in args.decoders:
                    try:
                        outputs[d] = fetch(str(video), d, kind, seed=0)
                    except MediaError as e:
                        failed[d] = e.reason
                for r in range(args.rounds):
                    for d in outputs:
                        start = time.perf_counter()
                        fetch(str(video), d, kind, seed=r + 1)
                        times[d].append(time.perf_counter() - start)
                medians = {d: statistics.median(t) for d, t in times.items() if t}
                frames = len(outputs[reference or next(iter(outputs))][0])
                for d in medians:
                    totals[d, kind] += medians[d]
                    frame_totals[d, kind] += frames
                cells = [f"{medians[d] * 1e3:.1f}" if d in medians else "fails" for d in args.decoders]
                pixels = [(f"fails: {failed[d][:60]}" if d in failed else pixel_difference(outputs[d][0], outputs[reference][0]))
                          if reference else "-" for d in args.decoders if d != reference]
                print(f"| {video.name} | {frames} | " + " | ".join(cells) + " | " + " | ".join(pixels) + " |")
            print()
        print("all videos, clips/s (the sum of the per-video medians, inverted) and the ratio to decord; frames/s:\n")
        print("| fetch | " + " | ".join(args.decoders) + " |")
        print("|---|" + "---|" * len(args.decoders))
        for kind in args.fetches:
            row = []
            for d in args.decoders:  # a video a decoder fails on counts as no time: its total is then flattered
                rate = len(videos) / totals[d, kind]
                ratio = f" ({totals[reference, kind] / totals[d, kind]:.2f}x)" if reference else ""
                row.append(f"{rate:.1f}{ratio}, {frame_totals[d, kind] / totals[d, kind]:.0f} frames/s")
            print(f"| {kind} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
