"""Our data pipeline against mmaction2 0.x's on the same media, alternating round by round.

    python benchmarks/data_vs_mmaction.py --mm-python /tmp/mmvenv/bin/python \
        --mm-configs /tmp/mmdl/mma/mmaction/.mim/configs/recognition/tsm [--rounds 5 --clips 30]

Both run single-process (the loaders' worker count multiplies both alike). mmaction2 runs in its own
scratch virtualenv (tools/mmaction_reference/README.md); its import time is not counted.
"""
import argparse
import json
import statistics
import subprocess
from pathlib import Path

import numpy as np

import tsmcli
from tsmcli.data import Record

SHARED = Path(__file__).resolve().parents[2] / "shared"
CASES = [  # (our preset, mmaction2 config, split, media)
    ("tsm_r50_video_1x1x8_50e_k400", "tsm_r50_video_1x1x8_50e_kinetics400_rgb", "train", "videos"),
    ("tsm_r50_video_1x1x8_50e_k400", "tsm_r50_video_1x1x8_50e_kinetics400_rgb", "test", "videos"),
    ("tsm_r50_1x1x8_50e_k400", "tsm_r50_1x1x8_50e_kinetics400_rgb", "train", "rawframes"),
    ("tsm_r50_1x1x8_50e_k400", "tsm_r50_1x1x8_50e_kinetics400_rgb", "test", "rawframes"),
]


def media(kind):
    if kind == "videos":
        return [str(p) for p in sorted((SHARED / "fixtures/videos").glob("*.mp4"))]
    return [f"{SHARED / 'fixtures/frames'}:10"]


def ours(preset, split, items, clips):
    cfg = tsmcli.load_preset(preset)
    pipeline = tsmcli.data.Pipeline(cfg["data"][split]["pipeline"], cfg["data"]["format"],
                                    cfg["data"]["filename_tmpl"], cfg["data"]["start_index"])
    records = [Record(*i.rsplit(":", 1)[:1], [0], total_frames=int(i.rsplit(":", 1)[1])) if ":" in i
               else Record(i, [0]) for i in items]
    rng = np.random.default_rng(0)
    pipeline(records[0], rng)
    import time

    start = time.perf_counter()
    for i in range(clips):
        pipeline(records[i % len(records)], rng)
    return clips / (time.perf_counter() - start)


def theirs(args, config, split, items):
    worker = Path(__file__).with_name("mmaction_data_worker.py")
    out = subprocess.run([args.mm_python, str(worker), "--config", str(Path(args.mm_configs) / f"{config}.py"),
                          "--split", split, "--clips", str(args.clips), *items],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["clips_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mm-python", required=True)
    parser.add_argument("--mm-configs", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clips", type=int, default=30)
    args = parser.parse_args()
    for preset, config, split, kind in CASES:
        items = media(kind)
        ours_runs, theirs_runs = [], []
        for _ in range(args.rounds):
            theirs_runs.append(theirs(args, config, split, items))
            ours_runs.append(ours(preset, split, items, args.clips))
        o, t = statistics.median(ours_runs), statistics.median(theirs_runs)
        print(f"{kind:9s} {split:5s} ours {o:7.1f} clips/s  mmaction2 {t:7.1f} clips/s  ratio {o / t:.2f}")


if __name__ == "__main__":
    main()
