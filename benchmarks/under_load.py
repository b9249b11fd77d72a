"""Training beside another job on the same cores: how the OpenMP threads' wait policy decides the time.

For each setting of the environment (the default `tsm` start-up, and the variants below), the wall time of
a short toy training alone, of two such trainings side by side, and of a training beside a `tsm test`;
each run is a real `tsm` process with the preset's loader workers. Settings alternate within a round.

    python benchmarks/under_load.py [--rounds 2] [--root data/toy]      (tsm prepare toy first)

Figures: docs/benchmarks.md, "Under load".
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {  # what each run's environment adds; "tsm default": nothing, the command's own start-up
    "tsm default": {},
    "libgomp's default (GOMP_SPINCOUNT=300000)": {"GOMP_SPINCOUNT": "300000"},
    "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}


def train_cmd(root, work):
    return [sys.executable, "-m", "tsmcli", "train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir",
            str(work), "--set", f"data.train.ann_file={root}/toy_train_list_videos.txt",
            "--set", f"data.train.data_prefix={root}/videos", "--set", f"data.val.ann_file={root}/toy_val_list_videos.txt",
            "--set", f"data.val.data_prefix={root}/videos", "--set", "schedule.epochs=2", "--set", "evaluation.interval=2"]


def test_cmd(root, checkpoint):
    return [sys.executable, "-m", "tsmcli", "test", str(checkpoint), "--device", "cpu", "--list",
            f"{root}/toy_train_list_videos.txt", "--data-root", f"{root}/videos"]


def run_together(commands, env):
    """Start the commands at once; -> wall seconds of each."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in commands]
    ends = [None] * len(procs)
    while any(e is None for e in ends):
        for i, p in enumerate(procs):
            if ends[i] is None and p.poll() is not None:
                if p.returncode != 0:
                    raise SystemExit(f"{commands[i]} failed ({p.returncode})")
                ends[i] = time.perf_counter() - start
        time.sleep(0.05)
    return ends


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--root", default="data/toy")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    root = Path(args.root).resolve()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    times = {(s, case): [] for s in args.settings for case in ("alone", "two trainings", "beside a test")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(train_cmd(root, tmp / "ckpt"), env=base, check=True, stdout=subprocess.DEVNULL)
        checkpoint = tmp / "ckpt" / "latest.pth"
        for r in range(args.rounds):
            for s in args.settings:
                env = {**base, **SETTINGS[s]}
                work = tmp / f"{r}_{s}"
                times[s, "alone"].append(run_together([train_cmd(root, work / "a")], env)[0])
                times[s, "two trainings"].append(max(run_together([train_cmd(root, work / "b"),
                                                                   train_cmd(root, work / "c")], env)))
                times[s, "beside a test"].append(run_together([train_cmd(root, work / "d"),
                                                               test_cmd(root, checkpoint)], env)[0])
                print(f"round {r + 1}: {s}: " + ", ".join(f"{case} {times[s, case][-1]:.1f} s"
                                                         for case in ("alone", "two trainings", "beside a test")),
                      flush=True)
    alone_default = statistics.median(times[args.settings[0], "alone"])
    print("\n| setting | alone s | vs tsm default | two side by side s (slower one) | / alone | training beside a test s | / alone |")
    print("|---|---|---|---|---|---|---|")
    for s in args.settings:
        alone = statistics.median(times[s, "alone"])
        two, beside = statistics.median(times[s, "two trainings"]), statistics.median(times[s, "beside a test"])
        print(f"| {s} | {alone:.1f} | {alone / alone_default:.2f}x | {two:.1f} | {two / alone:.2f}x | {beside:.1f} | "
              f"{beside / alone:.2f}x |")


if __name__ == "__main__":
    main()
