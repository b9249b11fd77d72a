"""Does training in mixed precision reach what fp32 reaches? The toy trainings as users run them, once in
fp32 and once with `--amp bf16` (or fp16 on a GPU), from the same seeds:

- main: the main job's preset, `tsm_r18_1x1x8_toy`, over --seeds (its fp32 runs give the seed-to-seed
  spread that the mixed-precision curves are judged against, as `scripts/main_job_seeds.sh` does);
- multilabel: `tsm_r18_1x1x8_toy_multilabel` (mean average precision);
- online: the main job's preset with the online shift (`model.shift_mode=online`);
- journey: the own-videos journey of `benchmarks/train_loop.py` (class folders, `tsm prepare custom`, the
  small ResNet18 preset it writes, 25 epochs; random weights of ImageNet's shapes stand in for them).

    python benchmarks/amp_convergence.py [--seeds 0 1 2] [--amp bf16] [--only main ...] [--root DIR]

Prints, per run, its last and best validation figure and wall time, then for the main job the per-epoch
mean training loss of each run against the fp32 seeds' range. Runs that finished are read back, not
rerun, so an interrupted comparison continues where it stopped. On a CPU without native bf16 the bf16
runs are about 2x slower than fp32 (emulated), but compute the same roundings.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.train_loop import make_journey, offline_imagenet_weights, tsm  # noqa: E402

EXPERIMENTS = {
    "main": ["-p", "tsm_r18_1x1x8_toy"],
    "multilabel": ["-p", "tsm_r18_1x1x8_toy_multilabel"],
    "online": ["-p", "tsm_r18_1x1x8_toy", "--set", "model.shift_mode=online"],
    "journey": ["-p", "mine/tsm.yaml"],
}


def read_log(work_dir):
    """-> (validation figures in order, mean training loss per epoch), or None if the run did not finish."""
    log = work_dir / "log.jsonl"
    if not log.exists():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines()]
    if not any(r.get("mode") == "time" for r in records):
        return None
    val = [r.get("top1", r.get("mean_average_precision")) for r in records if r.get("mode") == "val"]
    losses = {}
    for r in records:
        if r.get("mode") == "train":
            losses.setdefault(r["epoch"], []).append(r["loss"])
    return val, [statistics.mean(losses[e]) for e in sorted(losses)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the main job; the "
                        "other experiments run the first")
    parser.add_argument("--amp", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="+", choices=list(EXPERIMENTS), default=list(EXPERIMENTS))
    parser.add_argument("--root", type=Path, default=REPO / "work_dirs/amp_convergence")
    args = parser.parse_args()
    root = args.root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "data/toy/toy_val_list_videos.txt").exists():
        tsm(REPO, ["prepare", "toy", "--root", "data/toy"], root, {})
    if "multilabel" in args.only and not (root / "data/toy_multilabel/label_map.txt").exists():
        tsm(REPO, ["prepare", "toy", "--multi-label", "--root", "data/toy_multilabel"], root, {})
    env = {}
    if "journey" in args.only:
        if not (root / "mine/tsm.yaml").exists():
            make_journey(root, per_class=12, size=256, frames=60, fps=25)
        offline_imagenet_weights(root / "torch_home")
        env["TORCH_HOME"] = str(root / "torch_home")

    results = {}
    for experiment in args.only:
        for seed in args.seeds if experiment == "main" else args.seeds[:1]:
            for precision in ("fp32", args.amp):
                name = f"{experiment}/{precision}_seed{seed}"
                work_dir = root / "work_dirs" / name
                wall = None
                if read_log(work_dir) is None:
                    start = time.perf_counter()
                    tsm(REPO, ["train", *EXPERIMENTS[experiment], "--device", args.device, "--seed", str(seed),
                               "--work-dir", str(work_dir), "--amp", "none" if precision == "fp32" else precision],
                        root, env)
                    wall = time.perf_counter() - start
                val, losses = results[name] = read_log(work_dir)
                took = "" if wall is None else f", wall {wall:.0f} s"
                print(f"{name}: validation last {val[-1]:.3f} best {max(val):.3f}{took}", flush=True)

    print("\n| run | validation, last | best | mean training loss, last epoch |\n|---|---|---|---|")
    for name, (val, losses) in results.items():
        print(f"| {name} | {val[-1]:.1%} | {max(val):.1%} | {losses[-1]:.4f} |")
    if "main" in args.only and len(args.seeds) > 1:
        fp32 = [results[f"main/fp32_seed{s}"][1] for s in args.seeds]
        amp = [results[f"main/{args.amp}_seed{s}"][1] for s in args.seeds]
        low, high = [min(c) for c in zip(*fp32)], [max(c) for c in zip(*fp32)]
        print(f"\nmain job, mean training loss per epoch: the fp32 seeds' range, {args.amp}'s seeds, and the largest "
              f"{args.amp}-fp32 distance at the same seed (the same weights at the start, the same batches: only "
              "rounding differs) against the fp32 seeds' spread")
        print("| epoch | fp32 min | fp32 max | " + " | ".join(f"{args.amp} seed {s}" for s in args.seeds)
              + " | same-seed distance | fp32 spread |")
        print("|---" * (5 + len(args.seeds)) + "|")
        inside = closer = 0
        for epoch, (lo, hi, *runs) in enumerate(zip(low, high, *amp), 1):
            inside += sum(lo <= r <= hi for r in runs)
            distance = max(abs(run_a[epoch - 1] - run_f[epoch - 1]) for run_a, run_f in zip(amp, fp32))
            closer += distance <= hi - lo
            marks = " | ".join(f"{r:.4f}{'' if lo <= r <= hi else ' *'}" for r in runs)
            print(f"| {epoch} | {lo:.4f} | {hi:.4f} | {marks} | {distance:.4f} | {hi - lo:.4f} |")
        print(f"\n{inside} of {len(low) * len(amp)} {args.amp} epoch losses inside the fp32 seeds' range (* outside; "
              f"another fp32 seed would be inside about {(len(fp32) - 1) / (len(fp32) + 1):.0%} of the time); "
              f"in {closer} of {len(low)} epochs the same-seed distance is within the fp32 seeds' spread")

if __name__ == "__main__":
    main()
