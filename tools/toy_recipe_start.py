"""How the toy recipe starts: the first epoch's training losses (log.interval 1) of tsm_r18_1x1x8_toy and of
variants, each with several seeds. The first epoch of the 12-epoch cosine schedule is the same as that of a
1-epoch run (the lr changes per epoch; warmup per iteration), so each variant trains one epoch.

    python tools/toy_recipe_start.py [--seeds 0 1 2] [--root data/toy]     (tsm prepare toy first)
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = {  # changes to the preset (one lr for all layers, gradients clipped at 2, one warmup epoch)
    "preset": [],
    "before: fc lr x5, clip 20, no warmup": ["optimizer.fc_lr5=true", "optimizer.grad_clip=20",
                                             "schedule.warmup_epochs=0"],
    "fc lr x5": ["optimizer.fc_lr5=true"],
    "clip 20": ["optimizer.grad_clip=20"],
    "no warmup": ["schedule.warmup_epochs=0"],
}


def first_epoch_losses(overrides, seed, root, work):
    sets = [f"data.train.ann_file={root}/toy_train_list_videos.txt", f"data.train.data_prefix={root}/videos",
            f"data.val.ann_file={root}/toy_val_list_videos.txt", f"data.val.data_prefix={root}/videos",
            "schedule.epochs=1", "log.interval=1", *overrides]
    subprocess.run([sys.executable, "-m", "tsmcli", "train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu",
                    "--seed", str(seed), "--work-dir", str(work), "--set", *sets], check=True,
                   stdout=subprocess.DEVNULL)
    return [r["loss"] for r in map(json.loads, open(work / "log.jsonl")) if r["mode"] == "train"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", default="data/toy")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    print("| variant | seed | max loss, epoch 1 | mean loss, epoch 1 | last loss |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.variants:
            for seed in args.seeds:
                losses = first_epoch_losses(VARIANTS[name], seed, Path(args.root).resolve(), Path(tmp) / f"{name}{seed}")
                print(f"| {name} | {seed} | {max(losses):.2f} | {sum(losses) / len(losses):.2f} | {losses[-1]:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
