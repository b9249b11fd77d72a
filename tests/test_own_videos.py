"""The README's "Your own videos" section, run as written: a folder of class sub-folders of real clips
(a truncated and an empty file among them, names with spaces) to a trained model that names its classes."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import torch
import torchvision
from conftest import SHARED
from readme_blocks import own_videos_commands

import tsmcli

CLASSES = ["arm wrestling", "jumping", "waving"]


def make_folder(root):
    fixtures = SHARED / "fixtures/videos"
    for cls in CLASSES:
        folder = root / "mine/videos" / cls
        folder.mkdir(parents=True)
        for i in range(3):
            shutil.copy(fixtures / "test.mp4", folder / f"clip {i}.mp4")
        shutil.copy(fixtures / "part_0.mp4", folder / "clip.mp4")
    (root / "mine/videos/jumping/truncated.mp4").write_bytes((fixtures / "demo.mp4").read_bytes()[:3000])
    (root / "mine/videos/waving/empty.mp4").write_bytes(b"")


def offline_imagenet_weights(torch_home):
    """ImageNet weights cannot be downloaded here: put a file of the right shapes where the first use
    would have cached it (tests/test_download.py covers the download itself)."""
    cache = torch_home / "hub/checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), cache / "resnet18-f37072fd.pth")


@pytest.mark.slow
def test_readme_own_videos_section_as_written(tmp_path):
    make_folder(tmp_path)
    offline_imagenet_weights(tmp_path / "torch_home")
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home")}
    commands = own_videos_commands()
    assert [c[:2] for c in commands] == [["tsm", "prepare"], ["tsm", "train"], ["tsm", "test"], ["tsm", "predict"]]
    outputs = []
    for command in commands:
        if command[1] == "train":  # the one change: one epoch instead of the preset's 25
            command = command + ["--set", "schedule.epochs=1"]
        run = subprocess.run([sys.executable, "-m", "tsmcli.cli", *command[1:]], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert run.returncode == 0, f"{shlex.join(command)}\n{run.stdout}\n{run.stderr}"
        outputs.append(run)
    prepare, train, test, predict = outputs

    # prepare: failures named, and the next command is the README's
    assert "next:      " + shlex.join(commands[1]) in prepare.stdout
    failures = (tmp_path / "mine/failures.txt").read_text()
    assert "jumping/truncated.mp4" in failures and "waving/empty.mp4\tempty file" in failures
    assert "moov atom" not in prepare.stderr + prepare.stdout and "video_reader.cc" not in prepare.stderr

    # one validation video per class is said, not hidden; what training keeps on disk is said at its start
    assert "3 of 3 classes have fewer than 3 validation videos" in prepare.stdout
    assert "of which the newest 3 stay (--set checkpoint.max_keep=null keeps all)" in train.stdout

    # the checkpoint carries the class names; test and predict print them
    ckpt = torch.load(tmp_path / "work_dirs/mine/best.pth", map_location="cpu", weights_only=True)
    assert ckpt["labels"] == CLASSES and ckpt["state_dict"]["head.fc.weight"].shape[0] == 3
    assert "top1" in test.stdout and "top3" not in test.stdout and all(name in test.stdout for name in CLASSES)
    shown = [line.split("%", 1)[1].strip() for line in predict.stdout.splitlines() if "%" in line]
    assert sorted(shown) == CLASSES

    # and fine-tuning onto the same preset from a checkpoint of other classes (the toy's 4) just works
    toy = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "toy.pth", toy, toy.preset, labels=["a", "b", "c", "d"])
    finetune = subprocess.run([sys.executable, "-m", "tsmcli.cli", "finetune", "--from", "toy.pth", "-p", "mine/tsm.yaml",
                               "--work-dir", "ft", "--set", "schedule.epochs=1"], cwd=tmp_path, env=env,
                              capture_output=True, text=True)
    assert finetune.returncode == 0, finetune.stderr
    assert torch.load(tmp_path / "ft/best.pth", weights_only=True)["labels"] == CLASSES

    # a bidirectional model cannot stream frame by frame: the command suggested instead runs as printed
    export = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", "work_dirs/mine/best.pth", "--stream",
                             "--out", "step.onnx"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert export.returncode == 2, export.stderr
    suggested = re.search(r"tsm finetune .*?--set model\.shift_mode=online", export.stderr.replace("\n", " "))[0]
    online = subprocess.run([sys.executable, "-m", "tsmcli.cli", *shlex.split(suggested)[1:], "--work-dir", "online",
                             "--set", "schedule.epochs=1"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert online.returncode == 0, f"{suggested}\n{online.stderr}"
    assert torch.load(tmp_path / "online/best.pth", weights_only=True)["preset"]["model"]["shift_mode"] == "online"


@pytest.mark.slow
def test_written_preset_works_from_any_folder(tmp_path):
    """Paths in tsm.yaml are relative to the file: the same dataset builds from another directory."""
    make_folder(tmp_path)
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "prepare", "custom", "--root", "mine", "--json"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["train"] == 9
    from tsmcli import build_dataset

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    try:
        os.chdir(elsewhere)
        dataset = build_dataset("../mine/tsm.yaml", "val")
        item = dataset[0]
    finally:
        os.chdir(cwd)
    assert item["imgs"].shape == (8, 3, 112, 112) and not item["meta"]["failed"]
    assert dataset.preset["label_map"] == str(tmp_path / "mine/label_map.txt")
