"""`tsm extract --mode dense` throughput, windows per second, decoding included, with and without the fast
path (BatchNorm folded, channels-last: `tsm extract`'s default; --no-fast turns it off), in one process
with the allocator tuned as the CLI tunes it. The two contenders alternate round by round over the same
real video (../shared/fixtures/videos/demo.mp4, 10 s at 30 fps); medians and the median per-round ratio.

    python benchmarks/features.py [--rounds 5] [--every 2] [--stride 8] [--batch 8] [--models r50 mobilenetv2]

Weights are random (speed does not depend on them); the frames are the video's.
"""
import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

import tsmcli
from tsmcli.allocator import tune_cpu_allocator
from tsmcli.features.dense import dense_features
from tsmcli.inference import Predictor
from tsmcli.models.fast import prepare_for_inference

DEMO = Path(__file__).resolve().parents[2] / "shared/fixtures/videos/demo.mp4"
PRESETS = {"r50": "tsm_r50_1x1x8_50e_k400", "mobilenetv2": "tsm_mobilenetv2_dense_1x1x8_100e_k400",
           "r18-toy": "tsm_r18_1x1x8_toy"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--every", type=int, default=2)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=["r50", "mobilenetv2"], choices=sorted(PRESETS))
    args = parser.parse_args()
    tune_cpu_allocator()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {DEMO.name}, every {args.every}, "
          f"stride {args.stride}, batch {args.batch}")
    print(f"{'model':12} {'windows':>7} {'plain w/s':>10} {'fast w/s':>10} {'fast/plain':>10}")
    for name in args.models:
        plain = tsmcli.build_model(PRESETS[name], pretrained=False).eval()
        fast = prepare_for_inference(copy.deepcopy(plain))
        times = {"plain": [], "fast": []}
        windows = None
        for _ in range(args.rounds + 1):  # the first round warms up and is not counted
            for label, model in (("plain", plain), ("fast", fast)):
                start = time.perf_counter()
                result = dense_features(Predictor(model), str(DEMO), stride=args.stride, every=args.every, batch_size=args.batch)
                times[label].append(time.perf_counter() - start)
                windows = len(result.windows)
        plain_t, fast_t = times["plain"][1:], times["fast"][1:]
        ratio = statistics.median(p / f for p, f in zip(plain_t, fast_t))
        print(f"{name:12} {windows:7d} {windows / statistics.median(plain_t):10.2f} "
              f"{windows / statistics.median(fast_t):10.2f} {ratio:9.2f}x")


if __name__ == "__main__":
    main()
