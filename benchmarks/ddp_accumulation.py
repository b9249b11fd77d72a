"""DDP with gradient accumulation: one all-reduce per optimizer step (no_sync on the other micro-batches)
against one per micro-batch, as the training loop did before. Two Gloo processes on the CPU train the toy
preset for one epoch with --accumulate N; the figure is the sum of the logged step times (forward,
backward, synchronisation, optimizer step) of rank 0, the two ways alternating within each round.

    python benchmarks/ddp_accumulation.py [--root data/toy] [--accumulate 4] [--rounds 3]   (tsm prepare toy first)

Figures: docs/benchmarks.md, "DDP and gradient accumulation".
"""
import argparse
import json
import socket
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the counting entry points
import ddp_counting  # noqa: E402

import tsmcli  # noqa: E402
from tsmcli.train.loop import launch  # noqa: E402

WAYS = {"no_sync (once per step)": ddp_counting.with_no_sync,
        "every micro-batch (before)": ddp_counting.syncing_every_micro_batch}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(root, accumulate, entry, work):
    cfg = tsmcli.load_preset("tsm_r18_1x1x8_toy", [
        f"data.train.ann_file={root}/toy_train_list_videos.txt", f"data.train.data_prefix={root}/videos",
        f"data.val.ann_file={root}/toy_val_list_videos.txt", f"data.val.data_prefix={root}/videos",
        "schedule.epochs=1", "log.interval=1", "data.videos_per_gpu=2"])
    launch(cfg, work, nproc=2, master_port=free_port(), device="cpu", accumulation=accumulate, entrypoint=entry)
    steps = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines() if '"train"' in line]
    return sum(r["time"] for r in steps), int((work / "allreduces-0.txt").read_text()), len(steps)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="data/toy")
    parser.add_argument("--accumulate", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for w, (way, entry) in enumerate(WAYS.items()):
                work = Path(folder) / f"round{r}-way{w}"
                seconds, syncs, micro = one_run(Path(args.root).resolve(), args.accumulate, entry, work)
                times[way].append(seconds)
                print(f"round {r + 1}  {way:28s} {seconds:6.2f} s for {micro} micro-batches, {syncs} synchronisations", flush=True)
    base, new = (statistics.median(times[way]) for way in ("every micro-batch (before)", "no_sync (once per step)"))
    print(f"\nmedian epoch step time: before {base:.2f} s, now {new:.2f} s: {base / new:.2f}x faster "
          f"(--accumulate {args.accumulate}, 2 Gloo processes, videos_per_gpu 2)")


if __name__ == "__main__":
    main()
