"""Multi-label (data.multi_label): mmaction2 0.24.1's mean average precisions and head loss (fixtures it
wrote itself), multi-hot blending, `tsm prepare custom --labels`, and the multi-label toy trained through
the CLI with the preset's loader workers, then tested, predicted and streamed above a threshold."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import TESTS

import tsmcli
from tsmcli.data import blend_batch
from tsmcli.errors import UserError
from tsmcli.metrics import mean_average_precision, mmit_mean_average_precision
from tsmcli.train.losses import training_loss

FIXTURES = json.loads((TESTS / "data/mmaction/multilabel.json").read_text())


@pytest.mark.parametrize("case", FIXTURES["metrics"], ids=lambda c: f"n{len(c['labels'])}-empty{c['empty_classes']}")
def test_mean_average_precisions_equal_mmactions(case):
    scores, labels = np.array(case["scores"]), np.array(case["labels"])
    assert len(np.unique(scores)) < scores.size  # ties, which the thresholds must group as mmaction2 does
    assert (labels.sum(axis=0) == 0).sum() == case["empty_classes"]
    assert mean_average_precision(scores, labels) == pytest.approx(case["mean_average_precision"], abs=1e-12)
    assert mmit_mean_average_precision(torch.tensor(scores), torch.tensor(labels)) == pytest.approx(
        case["mmit_mean_average_precision"], abs=1e-12)


@pytest.mark.parametrize("case", FIXTURES["losses"], ids=lambda c: f"eps{c['label_smooth_eps']}")
def test_the_loss_equals_mmactions_bce_head_with_label_smoothing(case):
    model_cfg = {"loss_weight": case["loss_weight"], "label_smooth_eps": case["label_smooth_eps"]}
    loss = training_loss(model_cfg, multi_label=True)(torch.tensor(case["logits"]), torch.tensor(case["labels"]))
    assert float(loss) == pytest.approx(case["loss"], rel=1e-6)


def test_mixup_and_cutmix_blend_multi_hot_targets():
    labels = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]])
    for kind in ("mixup", "cutmix"):
        _, target = blend_batch(torch.rand(3, 8, 3, 16, 16), labels, 4, kind, 1.0, np.random.default_rng(4))
        draws = np.random.default_rng(4)  # the same draws: lambda, then the partner of each video
        lam, partner = float(draws.beta(1.0, 1.0)), torch.from_numpy(draws.permutation(3))
        if kind == "cutmix":  # lambda becomes the kept area: recover it from the targets
            lam = float(((target - labels[partner]) * (labels - labels[partner])).sum()
                        / ((labels - labels[partner]) ** 2).sum())
        assert 0 < lam < 1
        assert torch.allclose(target, lam * labels + (1 - lam) * labels[partner], atol=1e-6)


def test_prepare_custom_with_a_labels_csv_writes_multi_label_lists_and_preset(tmp_path):
    from tsmcli.prepare.custom import prepare_custom
    from tsmcli.video import write_video

    clip = np.zeros((12, 32, 32, 3), np.uint8)
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4"):
        write_video(tmp_path / "videos/clips" / name, clip, fps=12)
    (tmp_path / "labels.csv").write_text("video,labels\nclips/a.mp4,run;jump\nclips/b.mp4,jump\nclips/c.mp4,sit\n"
                                         "clips/d.mp4,run;sit\nclips/e.mp4, jump ; run\n")
    result = prepare_custom(tmp_path, labels_csv=tmp_path / "labels.csv", val_ratio=0.2, workers=1)
    assert result["classes"] == 3 and result["train"] + result["val"] == 5 and result["val"] == 1
    assert (tmp_path / "label_map.txt").read_text() == "jump\nrun\nsit\n"
    lines = {}
    for split in ("train", "val"):
        for line in (tmp_path / f"custom_{split}_list_videos.txt").read_text().splitlines():
            path, *labels = line.split()
            lines[path] = labels
    assert lines == {"clips/a.mp4": ["0", "1"], "clips/b.mp4": ["0"], "clips/c.mp4": ["2"], "clips/d.mp4": ["1", "2"],
                     "clips/e.mp4": ["0", "1"]}
    preset = tsmcli.load_preset(str(tmp_path / "tsm.yaml"))
    assert preset["data"]["multi_label"] is True and preset["model"]["num_classes"] == 3
    assert preset["evaluation"]["metrics"] == ["mean_average_precision", "mmit_mean_average_precision"]
    dataset = tsmcli.build_dataset(preset, "train")
    assert {tuple(dataset[i]["label"].tolist()) for i in range(len(dataset))} <= {
        (1, 1, 0), (1, 0, 0), (0, 0, 1), (0, 1, 1)}
    (tmp_path / "bad.csv").write_text("clips/a.mp4,run\nclips/b.mp4,\n")
    with pytest.raises(UserError, match=r"bad.csv:2: clips/b.mp4 has no label"):
        prepare_custom(tmp_path, labels_csv=tmp_path / "bad.csv", workers=1)
    (tmp_path / "twice.csv").write_text("clips/a.mp4,run\nclips/a.mp4,sit\n")
    with pytest.raises(UserError, match=r"twice.csv:2: clips/a.mp4 is already on line 1"):
        prepare_custom(tmp_path, labels_csv=tmp_path / "twice.csv", workers=1)


def tsm(*args, cwd):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_the_multi_label_toy_trains_tests_predicts_and_streams(tmp_path):
    assert tsm("prepare", "toy", "--multi-label", "--train-per-class", 24, "--val-per-class", 8, cwd=tmp_path).returncode == 0
    train = tsm("train", "-p", "tsm_r18_1x1x8_toy_multilabel", "--device", "cpu", "--deterministic", "--work-dir",
                "work", "--set", "evaluation.interval=6", "--set", "checkpoint.interval=12", cwd=tmp_path)
    assert train.returncode == 0, train.stdout + train.stderr
    assert "val mean_average_precision" in train.stdout
    run = tsm("test", "work/best.pth", "--device", "cpu", "--out", "result.json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert set(result["metrics"]) == {"mean_average_precision", "mmit_mean_average_precision"}
    assert result["metrics"]["mean_average_precision"] >= 0.9  # chance: about 0.5 (half the videos have each label)
    assert [row["label"] for row in result["per_class"]] == ["square moving left", "square moving right",
                                                              "circle moving left", "circle moving right"]
    assert all(row["videos"] == 8 and row["ap"] >= 0.75 for row in result["per_class"])
    assert result["confusion_matrix"] is None and result["videos"][1]["label"] == [1, 2]
    scores = torch.tensor([v["scores"] for v in result["videos"]])
    labels = torch.tensor([[int(c in v["label"]) for c in range(4)] for v in result["videos"]])
    assert result["metrics"]["mean_average_precision"] == pytest.approx(mean_average_precision(scores, labels), abs=1e-6)
    assert not torch.allclose(scores.sum(1), torch.ones(len(scores)))  # sigmoids, not a softmax
    predicted = tsm("predict", "data/toy_multilabel/videos/val_0001.mp4", "--ckpt", "work/best.pth", "--device", "cpu",
                    "--json", "--threshold", "0.5", cwd=tmp_path)
    shown = json.loads(predicted.stdout)
    assert all(c["prob"] >= 0.5 for c in shown["top"])
    assert len(shown["top"]) == sum(p >= 0.5 for p in shown["scores"])
    assert [round(p, 4) for p in shown["scores"]] == [round(p, 4) for p in result["videos"][1]["scores"]]
    streamed = tsm("stream", "data/toy_multilabel/videos/val_0001.mp4", "--ckpt", "work/best.pth", "--device", "cpu",
                   "--json", "--threshold", "0.5", cwd=tmp_path)
    steps = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert steps and all(all(c["prob"] >= 0.5 for c in step["top"]) for step in steps)
