import json
import math

import pytest
import torch
from reference_weights import to_mmaction_keys
from toy_runs import finished, toy_preset, tsm_train, write_run_yaml

import tsmcli
from tsmcli.errors import UserError
from tsmcli.prepare.toy import prepare_toy
from tsmcli.train.optim import param_groups, scaled_lr
from tsmcli.train.precision import native_bf16, resolve_precision
from tsmcli.train.schedule import lr_at


def test_param_groups_follow_the_tsm_rule():
    model = tsmcli.build_model("tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400", pretrained=False,
                               model__depth=18, model__non_local={"mode": "embedded_gaussian", "stages":
                                                                  [[0, 0], [1, 0], [0, 0], [0, 0]],
                                                                  "sub_sample": True, "use_scale": False})
    groups = {g["name"]: g for g in param_groups(model, lr=0.01, weight_decay=1e-4, fc_lr5=True)}
    assert groups["first_conv_weight"]["params"] == [model.backbone.conv1.weight]
    assert (groups["first_conv_weight"]["lr"], groups["first_conv_weight"]["weight_decay"]) == (0.01, 1e-4)
    assert groups["fc_weight"]["params"] == [model.head.fc.weight] and groups["fc_weight"]["lr"] == pytest.approx(0.05)
    assert groups["fc_bias"]["params"] == [model.head.fc.bias] and groups["fc_bias"]["lr"] == pytest.approx(0.1)
    assert groups["fc_bias"]["weight_decay"] == 0
    assert groups["bias"]["lr"] == pytest.approx(0.02) and groups["bias"]["weight_decay"] == 0  # non-local conv biases
    assert groups["norm"]["weight_decay"] == 0 and groups["norm"]["lr"] == 0.01
    assert any(p is model.backbone.bn1.weight for p in groups["norm"]["params"])
    every = sum(len(g["params"]) for g in groups.values())
    assert every == len(list(model.parameters()))  # each parameter in exactly one group
    plain = {g["name"]: g for g in param_groups(model, 0.01, 1e-4, fc_lr5=False)}
    assert plain["fc_weight"]["lr"] == 0.01 and plain["fc_bias"]["lr"] == pytest.approx(0.02)


def test_linear_scaling_rule():
    zoo = {"lr": 0.01, "lr_batch_size": None}
    assert scaled_lr(zoo, 8, 1) == (0.00125, 64, 8)          # one device: 1/8 of the 8-GPU lr
    assert scaled_lr(zoo, 8, 1, accumulation=8) == (0.01, 64, 64)
    assert scaled_lr(zoo, 8, 1, autoscale=False)[0] == 0.01
    assert scaled_lr({"lr": 0.02, "lr_batch_size": 8}, 8, 1)[0] == 0.02


def test_scaling_reference_is_the_presets_own_batch(tmp_path):
    """--set data.videos_per_gpu=4 --gpus 8 is half the zoo's batch of 64: half its lr."""
    cfg = tsmcli.load_preset("tsm_r50_1x1x8_50e_k400", ["data.videos_per_gpu=4"])
    assert cfg["optimizer"]["lr_batch_size"] == 64
    assert scaled_lr(cfg["optimizer"], 4, 8) == (0.005, 64, 32)
    assert tsmcli.load_preset("tsm_r50_1x1x16_50e_sthv2")["optimizer"]["lr_batch_size"] == 8 * 6
    own = tmp_path / "own.yaml"  # a user file that sets its own lr sets it for its own batch
    own.write_text("extends: tsm_r50_1x1x8_50e_k400\ndata: {videos_per_gpu: 2}\noptimizer: {lr: 0.004}\n")
    assert tsmcli.load_preset(str(own), ["data.videos_per_gpu=1"])["optimizer"]["lr_batch_size"] == 16
    batch_only = tmp_path / "batch.yaml"
    batch_only.write_text("extends: tsm_r50_1x1x8_50e_k400\ndata: {videos_per_gpu: 2}\n")
    assert tsmcli.load_preset(str(batch_only))["optimizer"]["lr_batch_size"] == 64


def test_schedules():
    step = {"policy": "step", "steps": [20, 40], "gamma": 0.1, "epochs": 50, "min_lr": 0,
            "warmup_epochs": 0, "warmup_ratio": 0.1}
    assert [lr_at(step, 1.0, e, 10, 0) for e in (0, 19, 20, 39, 40)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cosine = {**step, "policy": "cosine", "min_lr": 0.0}
    assert lr_at(cosine, 1.0, 25, 10, 0) == pytest.approx(0.5)
    warm = {**step, "warmup_epochs": 1}
    assert lr_at(warm, 1.0, 0, 10, 0) == pytest.approx(0.1)   # warmup_ratio
    assert lr_at(warm, 1.0, 0, 10, 5) == pytest.approx(0.55)
    assert lr_at(warm, 1.0, 1, 10, 0) == 1.0
    assert math.isclose(lr_at(cosine, 1.0, 50, 10, 0), 0.0, abs_tol=1e-12)


def test_toy_training_runs_logs_checkpoints_and_resumes(tmp_path, capsys):
    from tsmcli.train.loop import train

    prepare_toy(tmp_path / "toy", train_per_class=2, val_per_class=1, seed=0)
    cfg = toy_preset(tmp_path / "toy",
                     "schedule.epochs=2", "evaluation.interval=1", "data.workers_per_gpu=0", "log.interval=1",
                     "data.videos_per_gpu=4")
    work = tmp_path / "work"
    metrics = train(cfg, work, device="cpu", echo=None)
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    last_val = [r for r in records if r["mode"] == "val"][-1]
    assert metrics["videos"] == 4 and metrics["top1"] == last_val["top1"] and metrics["top1"] * 4 % 1 == 0
    trains = [r for r in records if r["mode"] == "train"]
    assert len(trains) == 4 and all(math.isfinite(r["loss"]) for r in trains)
    assert {"epoch", "iter", "lr", "loss", "top1", "data_time", "time", "memory_mb"} <= set(trains[0])
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1, 2]
    assert "linear scaling rule" in (work / "log.txt").read_text()
    default_amp = "bf16" if native_bf16() else None  # this CPU's default (the next test checks both)
    assert (f"computing in channels-last memory, {default_amp or 'fp32'} (channels-last: the default on the CPU"
            in (work / "log.txt").read_text())
    assert torch.load(work / "best.pth", weights_only=True)["precision"] == {"channels_last": True, "amp": default_amp}
    for name in ("latest.pth", "best.pth", "epoch_2.pth", "config.yaml"):
        assert (work / name).exists()
    model = tsmcli.load_model(work / "latest.pth")  # our checkpoint embeds the preset and labels
    assert model.labels == ["moving left", "moving right", "growing", "shrinking"]
    assert [p.name for p in work.glob("epoch_*.pth")] == ["epoch_2.pth"]  # the last epoch (interval 12)
    more = {**cfg, "schedule": {**cfg["schedule"], "epochs": 3}, "checkpoint": {"interval": 1, "max_keep": 1}}
    train(more, work, device="cpu", resume=work / "latest.pth", echo=None)
    assert [p.name for p in work.glob("epoch_*.pth")] == ["epoch_3.pth"]  # mmaction2's max_keep_ckpts
    epochs = [json.loads(line)["epoch"] for line in (work / "log.jsonl").read_text().splitlines()
              if '"val"' in line]
    assert epochs == [1, 2, 3]  # resumed at epoch 3, not from scratch
    assert torch.load(work / "latest.pth", weights_only=True)["epoch"] == 3
    assert f"channels-last memory, {default_amp or 'fp32'} (channels-last as the run started" in (work / "log.txt").read_text()
    # the curves are redrawn at each validation, the resumed epoch included
    from tsmcli.viz.curves import plot_runs

    drawn = plot_runs([work])
    assert len(drawn.axes[3].lines[0].get_xdata()) == 3 and (work / "curves.png").stat().st_size > 10_000
    assert not (work / "curves.tmp.png").exists()
    # TensorBoard scalars, where the tensorboard extra is installed (scripts/setup.sh installs it)
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(work / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "val/top1"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val/top1")) == 3  # the resumed epoch included


@pytest.mark.slow
def test_latest_is_written_after_the_first_epoch_then_with_each_epoch_file_and_the_run_says_where_its_time_went(
        tmp_path, monkeypatch):
    import tsmcli.train.run as run_module
    from tsmcli.train.loop import train

    written = []
    real_save, real_copy = run_module.save_checkpoint, run_module.copy_file

    def save(path, *args, **kwargs):
        written.append((kwargs["epoch"], path.name))
        return real_save(path, *args, **kwargs)

    def copy(source, target):
        written.append((int(source.stem.split("_")[1]), f"{target.name} <- {source.name}"))
        return real_copy(source, target)

    monkeypatch.setattr(run_module, "save_checkpoint", save)
    monkeypatch.setattr(run_module, "copy_file", copy)
    prepare_toy(tmp_path / "toy", train_per_class=1, val_per_class=1, seed=0)
    cfg = toy_preset(tmp_path / "toy", "schedule.epochs=4", "evaluation.interval=5", "checkpoint.interval=3",
                     "data.videos_per_gpu=4")  # the preset's loader workers
    work = tmp_path / "work"
    train(cfg, work, device="cpu", echo=None)
    # short epochs: latest.pth after the first, then a copy of each epoch_N.pth; none in between
    assert written == [(1, "latest.pth"), (3, "epoch_3.pth"), (3, "latest.pth <- epoch_3.pth"),
                       (4, "best.pth"), (4, "epoch_4.pth"), (4, "latest.pth <- epoch_4.pth")]
    latest, epoch_file = (torch.load(work / name, weights_only=True) for name in ("latest.pth", "epoch_4.pth"))
    assert latest["epoch"] == 4 and latest["content_sha256"] == epoch_file["content_sha256"]
    (work / "epoch_4.pth").write_bytes(b"")  # a copy, not a link: damaging one leaves the other intact
    assert tsmcli.load_model(work / "latest.pth").labels[0] == "moving left"

    # a minute apart: every epoch writes it
    written.clear()
    monkeypatch.setattr(run_module, "LATEST_EVERY_S", 0)
    train({**cfg, "checkpoint": {**cfg["checkpoint"], "interval": 4}}, tmp_path / "minutes", device="cpu", echo=None)
    assert [name for _, name in written if name.startswith("latest")] == ["latest.pth"] * 3 + [
        "latest.pth <- epoch_4.pth"]

    # where the time went: the last record of log.jsonl and the last line of log.txt
    record = json.loads((work / "log.jsonl").read_text().splitlines()[-1])
    assert record["mode"] == "time" and record["epoch"] == 4
    parts = {k: v for k, v in record.items() if k not in ("mode", "epoch", "total")}
    assert {"steps", "data", "validation", "checkpoints", "start-up", "other"} <= set(parts)
    assert all(v >= 0 for v in parts.values()) and sum(parts.values()) == pytest.approx(record["total"], abs=0.01)
    assert record["steps"] > 0 and record["checkpoints"] > 0 and record["validation"] > 0
    last = (work / "log.txt").read_text().splitlines()[-1]
    assert last.startswith(f"time {record['total']:.1f} s: ") and "training steps" in last and "checkpoints" in last


@pytest.mark.slow
def test_a_resumed_run_keeps_its_memory_format_and_channels_last_changes_only_rounding(tmp_path):
    from tsmcli.speed import training_step
    from tsmcli.train.loop import train

    prepare_toy(tmp_path / "toy", train_per_class=1, val_per_class=1, seed=0)
    cfg = toy_preset(tmp_path / "toy", "schedule.epochs=1", "data.workers_per_gpu=0", "data.videos_per_gpu=4")
    work = tmp_path / "work"
    train(cfg, work, device="cpu", echo=None, channels_last=False)
    more = {**cfg, "schedule": {**cfg["schedule"], "epochs": 2}}
    train(more, work, device="cpu", resume=work / "latest.pth", echo=None)
    computes = "bf16" if native_bf16() else "fp32"  # this CPU's default
    assert f"contiguous memory, {computes} (contiguous as the run started" in (work / "log.txt").read_text()
    assert torch.load(work / "latest.pth", weights_only=True)["precision"]["channels_last"] is False
    stepped = []
    for channels_last in (False, True):  # one training step from the same weights on the same batch
        torch.manual_seed(0)
        model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False, model__dropout=0.0)
        step, precision = training_step(model, torch.device("cpu"), (2, 8, 3, 56, 56), "none", channels_last, False)
        assert precision.channels_last is channels_last
        loss, _ = step()
        stepped.append((float(loss), torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert stepped[0][0] == pytest.approx(stepped[1][0], rel=1e-5)
    assert torch.allclose(stepped[0][1], stepped[1][1], rtol=0, atol=1e-5)


@pytest.mark.slow
def test_bf16_is_the_default_where_the_cpu_computes_it_natively_and_a_resumed_run_keeps_what_it_started_with(
        tmp_path, monkeypatch):
    from tsmcli.speed import measure_model
    from tsmcli.train.loop import train

    prepare_toy(tmp_path / "toy", train_per_class=1, val_per_class=1, seed=0)
    cfg = toy_preset(tmp_path / "toy", "schedule.epochs=1", "data.videos_per_gpu=4")
    more = {**cfg, "schedule": {**cfg["schedule"], "epochs": 2}}

    def stored(work):
        return torch.load(work / "latest.pth", weights_only=True)["precision"]["amp"]

    for native in (True, False):
        monkeypatch.setattr("tsmcli.train.precision.native_bf16", lambda native=native: native)
        work = tmp_path / f"native_{native}"
        train(cfg, work, device="cpu", echo=None)
        log = (work / "log.txt").read_text()
        assert stored(work) == ("bf16" if native else None)
        assert ("bf16: the default on a CPU that computes it natively, --amp none trains in fp32" in log) is native
        assert measure_model("tsm_r18_1x1x8_toy", train=True, iters=1, warmup=0)["amp"] == ("bf16" if native else None)
        assert resolve_precision(None, None, torch.device("cuda"))[0].amp is None  # GPUs: opt-in
    # a run keeps its precision on resume, on another CPU too; --amp none is fp32 on any
    monkeypatch.setattr("tsmcli.train.precision.native_bf16", lambda: False)
    train(more, tmp_path / "native_True", device="cpu", echo=None, resume=tmp_path / "native_True/latest.pth")
    assert stored(tmp_path / "native_True") == "bf16"
    assert "--amp bf16 as the run started" in (tmp_path / "native_True/log.txt").read_text()
    monkeypatch.setattr("tsmcli.train.precision.native_bf16", lambda: True)
    train(more, tmp_path / "native_False", device="cpu", echo=None, resume=tmp_path / "native_False/latest.pth")
    assert stored(tmp_path / "native_False") is None
    train(cfg, tmp_path / "none", device="cpu", echo=None, amp="none")
    assert stored(tmp_path / "none") is None and "fp32" in (tmp_path / "none/log.txt").read_text()


@pytest.mark.slow
def test_finetune_from_an_mmaction_checkpoint_keeps_backbone_and_logs_it(tmp_path):
    from tsmcli.train.loop import train
    from tsmcli.train.run import start_from_checkpoint
    from tsmcli.train.runtime import Logger

    k400 = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False, model__num_classes=400)
    path = tmp_path / "tsm_r18_k400_mmaction.pth"
    torch.save({"meta": {"epoch": 50}, "state_dict": to_mmaction_keys(k400.state_dict())}, path)
    target = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    (tmp_path / "log").mkdir()
    report = start_from_checkpoint(target, path, Logger(tmp_path / "log", echo=None))
    assert report["dropped"] == ["head.fc.bias", "head.fc.weight"] and not report["missing"]
    assert torch.equal(target.backbone.layer3[1].conv1.weight, k400.backbone.layer3[1].conv1.weight)
    assert torch.equal(target.backbone.bn1.running_var, k400.backbone.bn1.running_var)
    log = (tmp_path / "log/log.txt").read_text()
    assert "dropped head.fc.weight (400x512 -> 4x512)" in log and "kept" in log

    prepare_toy(tmp_path / "toy", train_per_class=1, val_per_class=1, seed=0)
    cfg = toy_preset(tmp_path / "toy",
                     "schedule.epochs=1", "data.workers_per_gpu=0", "data.videos_per_gpu=4")
    train(cfg, tmp_path / "work", device="cpu", load_from=path, echo=None)
    assert "finetuning from" in (tmp_path / "work/log.txt").read_text()


@pytest.fixture(scope="module")
def toy_run(module_dir):
    """A user YAML training the toy preset on a small toy set for 3 short epochs, deterministically, with
    the preset's loader workers and validation and a checkpoint every epoch."""
    root = module_dir("resume")
    prepare_toy(root / "toy", train_per_class=3, val_per_class=1, seed=0)
    write_run_yaml(root / "run.yaml", root / "toy", videos_per_gpu=2, epochs=3)
    return root


def _tsm_train(yaml_path, work, *extra):
    return tsm_train("--preset", yaml_path, "--work-dir", work, *extra)


def _interrupt_in_epoch_2(proc, work, sig):
    import time

    deadline = time.time() + 120
    while time.time() < deadline:
        log = work / "log.jsonl"
        if log.exists() and '"epoch": 2, "iter": 2' in log.read_text():
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    return finished(proc, timeout=120)


def _final_weights(work):
    return torch.load(work / "latest.pth", weights_only=True)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("sig_name", ["SIGKILL", "SIGTERM"])
def test_interrupted_then_resumed_equals_uninterrupted(toy_run, sig_name):
    import signal

    reference = toy_run / "uninterrupted"
    if not (reference / "latest.pth").exists():
        assert finished(_tsm_train(toy_run / "run.yaml", reference))[0] == 0
    work = toy_run / sig_name
    code, output = _interrupt_in_epoch_2(_tsm_train(toy_run / "run.yaml", work), work, getattr(signal, sig_name))
    state = torch.load(work / "latest.pth", weights_only=True)
    if sig_name == "SIGTERM":  # finished its step, wrote a mid-epoch checkpoint, said how to go on, exit 143
        assert code == 128 + signal.SIGTERM and state["epoch"] == 1 and state["iteration"] >= 2
        # the command as its options were parsed (in the command's order), not a copy of sys.argv
        assert f"tsm train --preset {toy_run / 'run.yaml'} --device cpu --deterministic --work-dir {work} " \
               "--resume auto" in output
    else:  # killed: the last checkpoint is the end of epoch 1
        assert code == -9 and state["epoch"] == 1 and state["iteration"] == 0
    assert finished(_tsm_train(toy_run / "run.yaml", work, "--resume", "auto"))[0] == 0
    expected, got = _final_weights(reference), _final_weights(work)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_fp16_on_the_cpu_is_refused(tmp_path):
    from tsmcli.train.loop import train

    cfg = tsmcli.load_preset("tsm_r18_1x1x8_toy")
    with pytest.raises(UserError, match="fp16.*needs a GPU"):
        train(cfg, tmp_path / "work", device="cpu", amp="fp16", echo=None)


@pytest.mark.slow
def test_unreadable_videos_are_warnings_in_the_runs_log_once_each(tmp_path):
    """Training-time messages reach log.txt: an unreadable training video (replaced by another) and an
    unreadable validation video (counted as wrong), each reported once, in the log and on the terminal,
    though the loader workers (the preset's) are the processes that met them."""
    toy = tmp_path / "toy"
    prepare_toy(toy, train_per_class=2, val_per_class=1, seed=0)
    broken = []
    for split in ("train", "val"):
        first = (toy / f"toy_{split}_list_videos.txt").read_text().split()[0]
        (toy / "videos" / first).write_bytes(b"not a video" * 50)
        broken.append(str(toy / "videos" / first))
    preset = write_run_yaml(tmp_path / "run.yaml", toy, videos_per_gpu=2, epochs=2)
    code, output = finished(tsm_train("--preset", preset, "--work-dir", tmp_path / "work"))
    assert code == 0, output
    log = (tmp_path / "work/log.txt").read_text()
    for path in broken:
        assert log.count(f"warning: unreadable media {path}") == 1, log
        assert output.count(f"unreadable media {path}") == 1, output
    assert "list line 1" in log
