"""`tsm export` of a zoo checkpoint as users run it, verification included, timed for one or more
source trees of tsm:

    python benchmarks/export_time.py [--contender NAME=TREE] ... [--formats onnx openvino] [--rounds 2]

The checkpoint is mmaction2's embedded-Gaussian non-local R50 in mmaction2's own layout, with the tests'
input-sensitive weights (tests/reference_weights.py); the export runs with `--video` on the real Kinetics
clip, one process per export, as `tsm export CKPT -p PRESET --out m.onnx|m.xml --video CLIP`. A contender
is a tree (`.`, or a `git worktree` of an older commit); contenders interleave round by round. Prints the
median wall seconds per contender and format and the ratio to the first contender.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from reference_weights import non_local_checkpoint  # noqa: E402

from benchmarks.train_loop import tsm  # noqa: E402

PRESET = "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400"
CLIP = REPO.parent / "shared/fixtures/videos/demo.mp4"
SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contender", action="append", default=[], metavar="NAME=TREE")
    parser.add_argument("--formats", nargs="+", default=list(SUFFIX), choices=list(SUFFIX))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--video", type=Path, default=CLIP)
    args = parser.parse_args()
    contenders = dict(spec.split("=", 1) for spec in args.contender or ["now=."])
    walls = {(name, fmt): [] for name in contenders for fmt in args.formats}
    with tempfile.TemporaryDirectory(prefix="tsm-export-time-") as scratch:
        scratch = Path(scratch)
        checkpoint = non_local_checkpoint("embedded_gaussian", scratch / "mm.pth")
        for _ in range(args.rounds):
            for name, tree in contenders.items():
                for fmt in args.formats:
                    start = time.perf_counter()
                    tsm(tree, ["export", str(checkpoint), "-p", PRESET, "--out", str(scratch / f"m{SUFFIX[fmt]}"),
                               "--video", str(args.video.resolve())], cwd=scratch, env={})
                    walls[name, fmt].append(time.perf_counter() - start)
                    print(f"# {name} {fmt}: {walls[name, fmt][-1]:.1f} s", flush=True)
    first = next(iter(contenders))
    print(f"\n| format | contender | median wall s | x {first} |\n|---|---|---|---|")
    for fmt in args.formats:
        for name in contenders:
            median = statistics.median(walls[name, fmt])
            print(f"| {fmt} | {name} | {median:.1f} | {statistics.median(walls[first, fmt]) / median:.2f} |")


if __name__ == "__main__":
    main()
