"""The own-videos journey's training, end to end, as users run it: a folder of class sub-folders,
`tsm prepare custom`, then `tsm train -p mine/tsm.yaml` (the preset's 25 epochs, validation every epoch,
its loader workers, checkpoints and curves) in a process of its own. Prints each run's wall time and,
from the run's own log, where it went (training steps, waiting for data, validation, checkpoints,
curves.png, logs, start-up).

    python benchmarks/train_loop.py [--contender NAME=TREE[::ARGS]] ... [--rounds 2] [--epochs 25]

A contender is a source tree of tsm (`.`, or a `git worktree` of an older commit, to time "before") and
extra `tsm train` arguments, e.g. `--contender last=.::--set model.frozen_stages=3`. Contenders run in
turn, round by round; the figure to compare is the ratio of their median wall times. ImageNet weights
cannot be downloaded here: a file of the right shapes stands in the cache where the first use puts them
(speed does not depend on the values). The videos are the toy's classes (motion and growth, in both
directions), drawn at --size pixels and --frames frames, --per-class of each class.
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tsmcli.prepare.toy import prepare_toy  # noqa: E402


def make_journey(root, per_class, size, frames, fps):
    """root/mine/videos/<class>/*.mp4 and `tsm prepare custom --root mine`'s lists and preset."""
    prepare_toy(root / "mine", train_per_class=per_class, val_per_class=0, size=size, frames=frames, fps=fps)
    for leftover in ("toy_train_list_videos.txt", "toy_val_list_videos.txt", "label_map.txt"):
        (root / "mine" / leftover).unlink(missing_ok=True)
    tsm(REPO, ["prepare", "custom", "--root", "mine"], root, {})


def offline_imagenet_weights(torch_home):
    import torch
    import torchvision

    cache = torch_home / "hub/checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet18().state_dict(), cache / "resnet18-f37072fd.pth")


def tsm(tree, args, cwd, env):
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", *args], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, **env, "PYTHONPATH": str(Path(tree).resolve())})
    if run.returncode:
        sys.exit(f"tsm {shlex.join(args)} ({tree}) failed:\n{run.stdout}\n{run.stderr}")
    return run


def read_run(work_dir):
    """The run's own "time" record (trees before it existed have none) and its validation top-1 per epoch."""
    records = [json.loads(line) for line in (work_dir / "log.jsonl").read_text().splitlines()]
    times = [r for r in records if r.get("mode") == "time"]
    return (times[-1] if times else None), [r["top1"] for r in records if r.get("mode") == "val"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contender", action="append", default=[], metavar="NAME=TREE[::ARGS]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--per-class", type=int, default=12, help="videos per class (4 classes), 80/20 split")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="make the journey here and keep it (default: a temporary folder)")
    args = parser.parse_args()
    contenders = {}
    for spec in args.contender or ["now=."]:
        name, _, rest = spec.partition("=")
        tree, _, extra = rest.partition("::")
        contenders[name] = (tree, shlex.split(extra))

    root = args.keep or Path(tempfile.mkdtemp(prefix="train_loop_"))
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "mine/tsm.yaml").exists():
        make_journey(root, args.per_class, args.size, args.frames, args.fps)
    offline_imagenet_weights(root / "torch_home")
    env = {"TORCH_HOME": str(root / "torch_home")}
    print(f"# {root}/mine: 4 classes x {args.per_class} videos, {args.size}x{args.size}, {args.frames} frames; "
          f"{os.cpu_count()} cores")
    walls = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        for name, (tree, extra) in contenders.items():
            work_dir = root / f"work_dirs/{name}-{round_}"
            command = ["train", "-p", "mine/tsm.yaml", "--work-dir", str(work_dir), *extra]
            if args.epochs:
                command += ["--set", f"schedule.epochs={args.epochs}"]
            start = time.perf_counter()
            tsm(tree, command, root, env)
            wall = time.perf_counter() - start
            walls[name].append(wall)
            record, top1 = read_run(work_dir)
            best = max(top1)
            parts = "" if record is None else "  " + " ".join(
                f"{k} {v:.1f}" for k, v in record.items() if k not in ("mode", "epoch"))
            print(f"round {round_} {name}: wall {wall:.1f} s, val top1 last {top1[-1]:.3f} best {best:.3f} "
                  f"(first at epoch {top1.index(best) + 1}){parts}", flush=True)
    first = next(iter(contenders))
    print(f"\n| contender | median wall s | x {first} |\n|---|---|---|")
    for name, values in walls.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {statistics.median(walls[first]) / median:.2f} |")


if __name__ == "__main__":
    main()
