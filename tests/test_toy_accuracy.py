"""The main job's claim, shortened: on the toy dataset the temporal shift learns frame order and the same
network without it cannot. `bash scripts/run.sh` runs the full version (64 px videos, 12 epochs: TSM
~98 %, no shift ~50 %); this one trains on 32 px videos for ~25 s per model on 2 cores.

`python tests/test_toy_accuracy.py 1 2 3 4` trains it for seeds 1-4: TSM 95/70/78/75 % and no shift
47/45/50/39 % (64 validation videos) in one run. The same seed moves by several points between runs
(seed 1: 88-95 % over three); not pinned down yet: one toy clip's H.264 bytes were seen to differ
between two preparations under pytest, which may not be the only cause. Hence the wide margins below.
"""
import pytest

from toy_runs import toy_preset
from tsmcli.prepare.toy import prepare_toy
from tsmcli.train.loop import train


@pytest.fixture(scope="module")
def small_toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy32")
    prepare_toy(root, train_per_class=16, val_per_class=16, seed=1, size=32)
    return root


def train_toy(root, work, shift, seed=1):
    cfg = toy_preset(root, "schedule.epochs=16", "evaluation.interval=16", "data.workers_per_gpu=0",
                     f"model.shift={shift}")
    train_pipeline, val_pipeline = cfg["data"]["train"]["pipeline"], cfg["data"]["val"]["pipeline"]
    train_pipeline[1]["input_size"] = 28  # MultiScaleCrop
    train_pipeline[2]["scale"] = [28, 28]  # Resize
    val_pipeline[1]["crop_size"] = 28  # CenterCrop
    return train(cfg, work, device="cpu", seed=seed, deterministic=True, echo=None)["top1"]


def test_shift_learns_frame_order_and_no_shift_cannot(small_toy, tmp_path):
    tsm = train_toy(small_toy, tmp_path / "tsm", shift="true")
    no_shift = train_toy(small_toy, tmp_path / "no_shift", shift="false")
    assert tsm >= 0.70, f"TSM reached only {tsm:.1%}"
    assert no_shift <= 0.62, f"without the shift {no_shift:.1%}: above what order-blind averaging allows (~50%)"
    assert tsm - no_shift >= 0.2


if __name__ == "__main__":  # the per-seed figures of the docstring
    import sys
    import tempfile
    from pathlib import Path

    for seed in map(int, sys.argv[1:] or ["1"]):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            prepare_toy(root / "toy", train_per_class=16, val_per_class=16, seed=seed, size=32)
            tsm, plain = (train_toy(root / "toy", root / shift, shift, seed) for shift in ("true", "false"))
            print(f"seed {seed}: TSM {tsm:.1%}, without the shift {plain:.1%}")
