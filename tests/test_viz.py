"""Pictures: what the figures contain (curves and points, matrix cells, Grad-CAM maps), not only that a
file was written. The Grad-CAM known-answer check on a trained model is in test_toy_accuracy.py."""
import json
import subprocess
import sys

import av
import pytest
import torch
from conftest import SHARED

import tsmcli
from tsmcli.video.writer import band_height
from tsmcli.viz.curves import plot_runs, read_log
from tsmcli.viz.gradcam import grad_cam

pytest.importorskip("matplotlib")


def write_log(path, records, tail=""):
    path.mkdir(parents=True, exist_ok=True)
    (path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def train_record(epoch, it, iters=4, loss=1.0):
    return {"mode": "train", "epoch": epoch, "iter": it, "step": (epoch - 1) * iters + it, "lr": 0.01 / epoch,
            "loss": loss, "top1": 0.5}


def val_record(epoch, top1):
    return {"mode": "val", "epoch": epoch, "top1": top1, "top5": 0.9, "mean_class_accuracy": top1 - 0.01}


def test_resumed_and_running_logs_read_without_duplicates(tmp_path):
    # epochs 1-2 logged; killed in epoch 3 after step 10; resumed from the end of epoch 2, which logs
    # steps 9-12 again (the later records are the ones the finished run took); epoch 4 still running,
    # its last line half written
    first = [train_record(e, i) for e in (1, 2) for i in (2, 4)] + [val_record(1, 0.3), val_record(2, 0.5)]
    killed = [train_record(3, 2, loss=9.0)]
    resumed = [train_record(3, 2, loss=0.5), train_record(3, 4), val_record(3, 0.7), train_record(4, 2)]
    write_log(tmp_path / "run", first + killed + resumed, tail='{"mode": "train", "ep')
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log["train"]] == [2, 4, 6, 8, 10, 12, 14]
    assert next(r for r in log["train"] if r["step"] == 10)["loss"] == 0.5
    assert [r["epoch"] for r in log["val"]] == [1, 2, 3]


def test_curves_of_several_runs_on_one_figure(tmp_path):
    write_log(tmp_path / "a", [train_record(e, i) for e in (1, 2) for i in (2, 4)] + [val_record(1, .3), val_record(2, .6)])
    write_log(tmp_path / "b", [train_record(1, i) for i in (1, 2, 3, 4)] + [val_record(1, .2)])
    figure = plot_runs([tmp_path / "a", tmp_path / "b"])
    loss, lr, train_top1, val = figure.axes[:4]
    assert [line.get_label() for line in loss.lines] == ["a", "b"]
    assert [len(line.get_xdata()) for line in loss.lines] == [4, 4]
    assert list(loss.lines[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]  # fractional epochs
    assert len(lr.lines) == len(train_top1.lines) == 2
    # per run: top1, top5, mean class accuracy; a points each per validation
    assert [(line.get_label(), len(line.get_xdata())) for line in val.lines] == [
        ("a top1", 2), ("a top5", 2), ("a mean class accuracy", 2),
        ("b top1", 1), ("b top5", 1), ("b mean class accuracy", 1)]
    assert val.get_xlabel() == "epoch" and val.get_ylabel() == "accuracy"
    by_iteration = plot_runs([tmp_path / "a"], x="iteration")
    assert list(by_iteration.axes[0].lines[0].get_xdata()) == [2, 4, 6, 8]
    # one x-axis for the four panels; points at 1.0 off the frame; a second identical run does not hide the first
    figure.canvas.draw()
    assert len({ax.get_xlim() for ax in figure.axes[:4]}) == 1 and val.get_ylim()[1] > 1.05
    assert loss.lines[0].get_linewidth() > loss.lines[1].get_linewidth()
    # a flat loss: linear, with plain tick labels (no offset, no x10^k)
    write_log(tmp_path / "flat", [train_record(1, i, loss=0.6965 + i * 1e-5) for i in (1, 2, 3, 4)] + [val_record(1, .2)])
    flat = plot_runs([tmp_path / "flat"])
    flat.canvas.draw()
    loss_ax = flat.axes[0]
    labels = [t.get_text() for t in loss_ax.get_yticklabels() + loss_ax.get_yminorticklabels() if t.get_text()]
    assert loss_ax.get_yscale() == "linear" and labels and not any("10^" in t or "times" in t for t in labels)
    assert loss_ax.yaxis.get_offset_text().get_text() == ""


@pytest.mark.slow
def test_plot_command_and_errors(tmp_path):
    write_log(tmp_path / "a", [train_record(1, 4), val_record(1, .3)])
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "plot", tmp_path / "a", "--out", tmp_path / "c.svg"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and (tmp_path / "c.svg").read_text().startswith("<?xml")
    missing = subprocess.run([sys.executable, "-m", "tsmcli.cli", "plot", tmp_path / "nothing"],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nothing does not exist: give a work dir of `tsm train`" in missing.stderr


def test_confusion_matrix_names_classes_or_lists_the_most_confused_pairs(tmp_path, monkeypatch):
    from tsmcli.viz import confusion

    figures = []
    monkeypatch.setattr(confusion, "save", lambda figure, path: figures.append(figure))
    confusion.plot_confusion([[3, 1], [0, 4]], tmp_path / "cm.png", ["walk", "run"])
    axis = figures[0].axes[0]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["walk (4)", "run (4)"]  # with their videos
    assert axis.images[0].get_array().tolist() == [[0.75, 0.25], [0.0, 1.0]]
    assert [t.get_text() for t in axis.texts] == ["0.75\n3", "0.25\n1", "1.00\n4"]  # shares and counts
    big = torch.eye(400, dtype=torch.long) * 5
    big[7, 9] = 5  # class 7 is as often taken for 9 as it is right
    confusion.plot_confusion(big.tolist(), tmp_path / "cm400.png", [f"c{i}" for i in range(400)])
    bars = figures[1].axes[0]
    assert [t.get_text() for t in bars.get_yticklabels()] == ["c7 → c9 (5)"]
    assert bars.patches[0].get_width() == 0.5


@pytest.mark.parametrize("preset", ["tsm_r50_1x1x8_50e_k400", "tsm_mobilenetv2_dense_1x1x8_100e_k400",
                                    "tsm_nl_dot_product_r50_1x1x8_50e_k400", "tsm_temporal_pool_r50_1x1x8_50e_k400"])
def test_gradcam_gives_one_map_per_frame_on_every_architecture(preset):
    torch.manual_seed(0)
    model = tsmcli.build_model(preset, pretrained=False, model__num_classes=5).eval()
    torch.nn.init.normal_(model.head.fc.weight, std=0.5)  # the initial 0.001 leaves the classes tied
    clip = torch.randn(1, 8, 3, 64, 64)
    maps, index, prob = grad_cam(model, clip)
    assert maps.shape == (8, 64, 64) and float(maps.max()) == pytest.approx(1.0) and float(maps.min()) >= 0
    with torch.no_grad():
        scores = model.logits(clip)[0, 0]
    assert index == int(scores.argmax()) and prob == pytest.approx(float(scores.softmax(0).max()), abs=1e-5)
    assert all(p.grad is None for p in model.parameters())  # nothing left behind


def test_the_grid_has_a_colour_bar(tmp_path):
    import numpy as np

    from tsmcli.viz.explain import draw_grid

    result = {"frames": np.zeros((8, 32, 32, 3), np.uint8), "maps": np.random.rand(8, 32, 32), "label": "a",
              "prob": 0.5, "layer": "backbone.layer4", "frame_inds": list(range(8))}
    figure = draw_grid(result, tmp_path / "g.png")
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "Grad-CAM" in bars[0].get_ylabel() and bars[0].get_ylim() == (0.0, 1.0)


@pytest.mark.slow
def test_explain_command_writes_a_grid_and_a_video(tmp_path):
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset, labels=["a", "b", "c", "d"])
    video = SHARED / "fixtures/videos/test.mp4"
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "explain", video, "--ckpt", tmp_path / "m.pth",
                          "--class", "c", "--png", tmp_path / "cam.png", "--out", tmp_path / "cam.mp4"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "'c'" in run.stdout and (tmp_path / "cam.png").stat().st_size > 10_000
    with av.open(str(tmp_path / "cam.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 * 4 and min(frames[0].shape[:2]) >= 224  # 8 sampled frames, half a second each
    band = band_height(frames[0].shape[0])  # the class, probability and frame written across the top
    assert frames[0][:band].max() > 200 and frames[0][:band].mean() < frames[0][band:].mean()
    # only --out: the grid beside the video, named after it, not over another run's; neither: named after the input
    only_video = subprocess.run([sys.executable, "-m", "tsmcli.cli", "explain", video, "--ckpt", tmp_path / "m.pth",
                                 "--out", "only.mp4"], capture_output=True, text=True, cwd=tmp_path)
    assert only_video.returncode == 0 and (tmp_path / "only.mp4").exists() and (tmp_path / "only.png").exists()
    assert "wrote only.png and only.mp4" in only_video.stdout and not list(tmp_path.glob("*gradcam*"))
    plain = subprocess.run([sys.executable, "-m", "tsmcli.cli", "explain", video, "--ckpt", tmp_path / "m.pth"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert plain.returncode == 0 and "wrote test_gradcam.png" in plain.stdout and (tmp_path / "test_gradcam.png").exists()
    wrong = subprocess.run([sys.executable, "-m", "tsmcli.cli", "explain", video, "--ckpt", tmp_path / "m.pth",
                            "--class", "zebra"], capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "--class zebra: not a class of this model" in wrong.stderr
