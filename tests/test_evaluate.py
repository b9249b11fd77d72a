import json
import subprocess
import sys

import pytest
import torch
from toy_runs import toy_preset

import tsmcli
from tsmcli.data.schemes import scheme_pipeline
from tsmcli.errors import UserError
from tsmcli.labels import label_map
from tsmcli.prepare.toy import prepare_toy
from tsmcli.testing import test_checkpoint as evaluate_checkpoint
from tsmcli.train.loop import train


@pytest.mark.parametrize("preset, scheme, views, crop", [
    ("tsm_r50_1x1x8_50e_sthv1", "efficient", 1, ("CenterCrop", 224)),
    ("tsm_r50_1x1x8_50e_sthv1", "accurate", 6, ("ThreeCrop", 256)),
    ("tsm_r50_1x1x8_50e_k400", "accurate", 6, ("ThreeCrop", 256)),
    ("tsm_r50_dense_1x1x8_100e_k400", "dense", 100, ("TenCrop", 224)),
    ("tsm_r50_dense_1x1x8_100e_k400", "efficient", 1, ("CenterCrop", 224)),
])
def test_scheme_views_and_layout(preset, scheme, views, crop):
    from tsmcli.data import Pipeline

    steps = scheme_pipeline(tsmcli.load_preset(preset)["data"], scheme)
    crops = [(s["type"], s["crop_size"]) for s in steps if s["type"] in ("CenterCrop", "ThreeCrop", "TenCrop")]
    assert crops == [crop]
    pipeline = Pipeline(steps, "videos")
    crop_views = {"CenterCrop": 1, "ThreeCrop": 3, "TenCrop": 10}[crop[0]]
    assert pipeline.sampler.views * crop_views == views


def test_efficient_scheme_on_dense_presets_samples_the_middle_of_the_video():
    from tsmcli.data import Pipeline

    steps = scheme_pipeline(tsmcli.load_preset("tsm_r50_dense_1x1x8_100e_k400")["data"], "efficient")
    inds = Pipeline(steps, "videos").sampler(300)
    assert inds.tolist() == [118 + 8 * i for i in range(8)]  # 237 start positions: the middle one is 118
    dense = Pipeline(scheme_pipeline(tsmcli.load_preset("tsm_r50_dense_1x1x8_100e_k400")["data"], "dense"), "videos")
    assert dense.sampler(300)[:8].tolist() == [8 * i for i in range(8)]  # mmaction2's 10 views start at 0


def test_dense_scheme_needs_a_dense_preset():
    with pytest.raises(UserError, match="dense"):
        scheme_pipeline(tsmcli.load_preset("tsm_r50_1x1x8_50e_k400")["data"], "dense")


@pytest.mark.slow
def test_test_reproduces_the_training_validation_and_writes_json(tmp_path):
    prepare_toy(tmp_path / "toy", train_per_class=2, val_per_class=2, seed=0)
    val_list, videos = tmp_path / "toy/toy_val_list_videos.txt", tmp_path / "toy/videos"
    cfg = toy_preset(tmp_path / "toy", "schedule.epochs=1", "data.videos_per_gpu=4")  # the preset's workers
    logged = train(cfg, tmp_path / "work", device="cpu", echo=None)
    result = evaluate_checkpoint(tmp_path / "work/latest.pth", ann_file=str(val_list), data_prefix=str(videos))
    assert result["metrics"]["top1"] == logged["top1"]
    efficient = evaluate_checkpoint(tmp_path / "work/latest.pth", scheme="efficient", ann_file=str(val_list),
                                    data_prefix=str(videos))
    assert efficient["metrics"]["top1"] == logged["top1"] and efficient["views"] == 1
    # per video: the scores the validation pipeline gives each clip, through the trained model
    model, val_set = tsmcli.load_model(tmp_path / "work/latest.pth"), tsmcli.build_dataset(cfg, "val")
    with torch.no_grad():
        direct = torch.cat([model(val_set[i]["imgs"][None]) for i in range(len(val_set))])
    tested = torch.tensor([v["scores"] for v in efficient["videos"]])
    assert [v["path"] for v in efficient["videos"]] == [r.path for r in val_set.records]
    assert torch.allclose(tested, direct, atol=1e-6)
    assert result["videos_total"] == 8 and result["views"] == 1 and not result["failed"]
    assert len(result["videos"][0]["scores"]) == 4 and result["labels"][0] == "moving left"
    from typer.testing import CliRunner

    from tsmcli.cli import app

    out = tmp_path / "result.json"
    run = CliRunner().invoke(app, ["test", str(tmp_path / "work/latest.pth"), "--list", str(val_list), "--data-root",
                                   str(videos), "--scheme", "accurate", "--workers", "0", "--out", str(out),
                                   "--plot", str(tmp_path / "cm.png")])
    assert run.exit_code == 0, run.output
    saved = json.loads(out.read_text())
    assert sum(c["videos"] for c in saved["per_class"]) == 8 and len(saved["confusion_matrix"]) == 4
    from PIL import Image

    assert Image.open(tmp_path / "cm.png").size[0] >= 420
    assert saved["scheme"] == "accurate" and saved["views"] == 6 and set(saved["metrics"]) == {
        "top1", "mean_class_accuracy"}  # top-4 of 4 classes is always 1: left out

    predicted = CliRunner().invoke(app, ["predict", str(videos / "growing/val_0000.mp4"), "--ckpt",
                                         str(tmp_path / "work/latest.pth"), "--top", "2", "--json"])
    assert predicted.exit_code == 0, predicted.output
    line = json.loads(predicted.output.strip().splitlines()[0])
    assert line["video"].endswith("val_0000.mp4") and len(line["top"]) == 2 and len(line["scores"]) == 4
    assert line["top"][0]["label"] in ["moving left", "moving right", "growing", "shrinking"]
    assert abs(sum(line["scores"]) - 1) < 1e-4


@pytest.mark.slow
def test_predict_shows_kinetics_names_for_an_mmaction_checkpoint(tmp_path, mmaction_outputs):
    import torch
    from conftest import SHARED
    from reference_weights import fill_state_dict
    from typer.testing import CliRunner

    from tsmcli.cli import app

    path = tmp_path / "tsm_r50_video_1x1x8_50e_kinetics400_rgb_20200702-a77f4328.pth"
    torch.save({"meta": {}, "state_dict": fill_state_dict(mmaction_outputs["r50_two_views"]["keys"])}, path)
    run = CliRunner().invoke(app, ["predict", str(SHARED / "fixtures/videos/demo.mp4"), "--ckpt", str(path),
                                   "--top", "3", "--json"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.output)
    kinetics = label_map("kinetics400")
    assert [t["label"] for t in out["top"]] == [kinetics[t["index"]] for t in out["top"]]
    assert len(out["scores"]) == 400


@pytest.mark.slow
def test_benchmark_model_reports_speed_and_memory():
    from tsmcli.speed import measure_model

    result = measure_model("tsm_r18_1x1x8_toy", "cpu", batch=1, iters=2, warmup=1, size=56)
    assert result["input"] == [1, 8, 3, 56, 56]
    assert result["videos_per_s"] == pytest.approx(1000 / result["ms_per_batch"], rel=1e-6)
    assert result["peak_memory_mb"] > 100  # the process with torch and a model: at least this much RSS
    trained = measure_model("tsm_r18_1x1x8_toy", "cpu", iters=8, warmup=1, size=56, train=True)
    assert trained["mode"] == "train" and trained["batch"] == 8


@pytest.mark.slow
def test_benchmark_model_train_times_the_batch_asked_for():
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--train",
                          "--batch", "2", "--iters", "2", "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)
    assert result["mode"] == "train" and result["batch"] == 2 and result["input"][0] == 2


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_give_the_same_numbers_and_every_video_once(tmp_path):
    import socket

    from tsmcli.testing import launch_test

    prepare_toy(tmp_path / "toy", train_per_class=1, val_per_class=2, seed=3)
    lines = (tmp_path / "toy/toy_val_list_videos.txt").read_text().splitlines()[:7]  # odd: uneven shards
    (tmp_path / "val7.txt").write_text("\n".join(lines) + "\n")
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    args = dict(ann_file=str(tmp_path / "val7.txt"), data_prefix=str(tmp_path / "toy/videos"), workers=0)
    single = evaluate_checkpoint(tmp_path / "m.pth", **args)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch_test(tmp_path / "m.pth", 2, tmp_path / "two.json", port, **args)
    double = json.loads((tmp_path / "two.json").read_text())
    assert [v["path"] for v in double["videos"]] == [v["path"] for v in single["videos"]]
    assert double["videos_total"] == 7
    assert double["metrics"] == pytest.approx(single["metrics"])
    flat = [x for v in double["videos"] for x in v["scores"]]
    assert flat == pytest.approx([x for v in single["videos"] for x in v["scores"]], abs=1e-5)


def test_per_view_scores_are_refused_by_validation():
    from tsmcli.train.loop import validation_metrics

    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False, model__average_clips=None)
    with pytest.raises(UserError, match="model.average_clips: null"):
        validation_metrics(model, [], "cpu", ["top_k_accuracy"])
