"""What one training step does, checked through the training loop as `tsm train` runs it (the preset's
loader workers): gradient accumulation, gradient clipping, warmup, mixup, and mixed precision."""
import json

import numpy as np
import pytest
import torch
from toy_runs import toy_preset

import tsmcli
from tsmcli.prepare.toy import prepare_toy
from tsmcli.train import loop


@pytest.fixture(scope="module")
def toy(module_dir):
    root = module_dir("step")
    prepare_toy(root / "toy", train_per_class=1, val_per_class=1, seed=0)  # 4 training videos
    return root / "toy"


def run(toy, work, *overrides, **kwargs):
    """One epoch of the toy preset; -> (final state dict, train log records)."""
    cfg = toy_preset(toy, "schedule.epochs=1", "log.interval=1", "schedule.policy=step", "schedule.steps=[]",
                     *overrides)
    loop.train(cfg, work, device="cpu", echo=None, **kwargs)
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    return torch.load(work / "latest.pth", weights_only=True)["state_dict"], [r for r in records if r["mode"] == "train"]


@pytest.mark.slow
def test_accumulating_two_half_batches_is_one_step_on_the_whole_batch(toy, tmp_path):
    # no batch statistics, no dropout draws; no warmup: its lr moves per micro-batch, as mmcv's does
    fixed = ("model.norm_eval=true", "model.dropout=0.0", "schedule.warmup_epochs=0")
    # in fp32: bf16 (the default on CPUs that compute it natively) rounds a half batch otherwise than a whole
    whole, _ = run(toy, tmp_path / "whole", *fixed, "data.videos_per_gpu=4", amp="none")
    halves, records = run(toy, tmp_path / "halves", *fixed, "data.videos_per_gpu=2", accumulation=2, amp="none")
    assert len(records) == 2  # two micro-batches, logged
    for key in whole:
        assert torch.allclose(whole[key].float(), halves[key].float(), atol=2e-6), key
    one_half_step, _ = run(toy, tmp_path / "no_accumulation", *fixed, "data.videos_per_gpu=2")
    assert not torch.allclose(whole["head.fc.weight"], one_half_step["head.fc.weight"], atol=1e-4)


def _moved(state, start):
    return max((state[k] - start[k]).abs().max().item() for k in start if k.endswith("conv1.weight"))


@pytest.mark.slow
def test_gradient_clipping_bounds_every_update(toy, tmp_path):
    start_model = tsmcli.build_model(toy_preset(toy), pretrained=False)
    path = tsmcli.save_checkpoint(tmp_path / "start.pth", start_model, start_model.preset)
    start = {k: v.clone() for k, v in start_model.state_dict().items() if k.startswith("backbone.")}
    common = ("optimizer.weight_decay=0", "data.videos_per_gpu=1")
    clipped, _ = run(toy, tmp_path / "clipped", *common, "optimizer.grad_clip=1e-9", load_from=path)
    free, _ = run(toy, tmp_path / "free", *common, "optimizer.grad_clip=null", load_from=path)
    assert _moved(clipped, start) < 1e-8  # 4 steps of lr x (momentum sum <= 10) x 1e-9
    assert _moved(free, start) > 1e-5


def test_warmup_ramps_the_lr_of_every_step(toy, tmp_path):
    _, records = run(toy, tmp_path / "warm", "data.videos_per_gpu=1", "schedule.warmup_epochs=1",
                     "schedule.warmup_ratio=0.1")
    base = 0.02 * 1 / 8  # the toy preset's lr for 8 videos, scaled to 1
    assert [r["lr"] for r in records] == pytest.approx([base * (0.1 + 0.9 * i / 4) for i in range(4)])


@pytest.mark.slow
def test_mixup_blends_every_training_batch_with_its_own_draw(toy, tmp_path, monkeypatch):
    calls = []
    real = loop.blend_batch

    def spy(imgs, labels, num_classes, kind, alpha, rng):
        calls.append((kind, alpha, imgs.shape[0], rng.bit_generator.state["state"]["state"]))
        return real(imgs, labels, num_classes, kind, alpha, rng)

    monkeypatch.setattr(loop, "blend_batch", spy)
    run(toy, tmp_path / "mix", "data.videos_per_gpu=2", "train.blending={type: mixup, alpha: 0.2}")
    expected = [np.random.default_rng([0, 0, i]).bit_generator.state["state"]["state"] for i in range(2)]
    assert [c[:3] for c in calls] == [("mixup", 0.2, 2)] * 2
    assert [c[3] for c in calls] == expected  # seeded by (seed, epoch, step): resumable exactly


@pytest.mark.slow
def test_channels_last_and_bf16_train_like_fp32(toy, tmp_path):
    _, fp32 = run(toy, tmp_path / "fp32", "data.videos_per_gpu=2", amp="none")
    _, channels_last = run(toy, tmp_path / "cl", "data.videos_per_gpu=2", channels_last=True, amp="none")
    _, bf16 = run(toy, tmp_path / "bf16", "data.videos_per_gpu=2", amp="bf16")
    losses = [[r["loss"] for r in records] for records in (fp32, channels_last, bf16)]
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
    assert losses[2] == pytest.approx(losses[0], rel=0.05) and losses[2] != losses[0]  # bf16 really ran


@pytest.mark.slow
def test_validation_reports_the_metrics_the_preset_names(toy, tmp_path):
    run(toy, tmp_path / "mean_class", "data.videos_per_gpu=4", "evaluation.metrics=[mean_class_accuracy]")
    val = [json.loads(line) for line in (tmp_path / "mean_class/log.jsonl").read_text().splitlines()
           if '"val"' in line]
    assert set(val[0]) == {"mode", "epoch", "mean_class_accuracy", "videos", "failed"}
    run(toy, tmp_path / "both", "data.videos_per_gpu=4")  # the preset's: top-k and mean class
    val = [json.loads(line) for line in (tmp_path / "both/log.jsonl").read_text().splitlines() if '"val"' in line]
    assert {"top1", "mean_class_accuracy"} <= set(val[0]) and "top4" not in val[0]  # always 1 of 4 classes


@pytest.mark.slow
def test_a_finished_run_leaves_no_loader_workers_behind(toy, tmp_path):
    """Persistent workers left to the garbage collector were stopped during a later run in the same
    process (a sweep, a notebook, this suite), after it had forked its own workers: each stop then
    waited out a 5 s timeout."""
    import gc
    import multiprocessing

    gc.disable()  # whether the collector happens to run in between is not what this test is about
    try:
        run(toy, tmp_path / "run", "data.videos_per_gpu=2", accumulation=2)  # a run that used to leave them
        assert multiprocessing.active_children() == []
    finally:
        gc.enable()
