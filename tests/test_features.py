"""Features: equal to mmaction2 0.24.1's feature-extraction mode on its own checkpoints' weights, and
through each model's own classifier equal to its probabilities; dense windows equal the model on those
frames taken by hand; `tsm extract` over folders and lists with loader workers as the preset sets them,
resumed after a kill, sharded, with unreadable videos listed."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED, TESTS
from random_models import calibrated
from reference_weights import fill_state_dict, input_clip

import tsmcli
from tsmcli.errors import UserError
from tsmcli.features import clip_features, extract_features
from tsmcli.inference import Predictor
from tsmcli.prepare.toy import prepare_toy

FEATURES = json.loads((TESTS / "data/mmaction/features.json").read_text())["cases"]
VIDEO = SHARED / "fixtures/videos/test.mp4"


def _classify(model, per_frame):
    """The model's own head on (N, V, T', C) features: fc, mean over the frames, its view averaging."""
    logits = model.head.fc(per_frame).mean(dim=2)
    return {"prob": logits.softmax(-1).mean(1), "score": logits.mean(1)}[model.average_clips]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FEATURES))
def test_features_equal_mmactions_and_give_the_classifiers_output(name, mmaction_outputs, tmp_path):
    case = mmaction_outputs[name]
    path = tmp_path / "mm.pth"  # a state dict in mmaction2's names, as its checkpoints hold them
    torch.save({"meta": {"epoch": 50}, "state_dict": fill_state_dict(case["keys"], case["norm_scale"])}, path)
    model = tsmcli.load_model(path, preset=case["config"])
    x = input_clip(case["input_shape"])
    per_frame = clip_features(model, x)
    with torch.no_grad():
        probs = model(x)
        assert torch.allclose(_classify(model, per_frame), probs, atol=1e-5, rtol=0)
    video = per_frame.mean(dim=(1, 2))
    theirs = torch.tensor(FEATURES[name]["features"])
    if name == "temporal_pool":
        # mmaction2 reshapes the pooled (N*T/2, C) features to (N, T, C/2) before its mean, which mixes
        # the channels of frame pairs: its vector is half as long and no classifier reads it
        assert theirs.shape[-1] == video.shape[-1] // 2
    else:
        assert torch.allclose(video, theirs, atol=1e-5 * max(1.0, theirs.abs().max().item()), rtol=0)
    with torch.no_grad():  # the fast path (folded BatchNorm) gives the same features up to rounding
        fast = clip_features(tsmcli.load_model(path, preset=case["config"], fast=True), x)
    assert torch.allclose(fast, per_frame, atol=1e-3 * max(1.0, per_frame.abs().max().item()), rtol=0)


def test_a_stage_and_its_block_names_give_that_layers_pooled_output():
    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4)
    x = torch.randn(1, 8, 3, 64, 64)
    third = clip_features(model, x, layer="layer3")
    assert third.shape == (1, 1, 8, 256)
    with torch.no_grad():
        frames = model.backbone_input(x)
        b = model.backbone
        maps = b.layer3(b.layer2(b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(frames)))))))
    assert torch.allclose(third[0, 0], maps.mean(dim=(2, 3)), atol=1e-6)
    with pytest.raises(tsmcli.UserError, match="stages are layer1, layer2, layer3, layer4"):
        clip_features(model, x, layer="layer9")
    mobile = calibrated("tsm_mobilenetv2_dense_1x1x8_100e_k400", model__num_classes=4)
    assert clip_features(mobile, x, layer="features.7").shape == (1, 1, 8, 64)


def test_dense_windows_equal_the_model_on_those_frames_read_by_hand():
    from tsmcli.data.pipeline import STEP_TYPES
    from tsmcli.data.schemes import scheme_pipeline
    from tsmcli.data.transforms import Clip
    from tsmcli.video import open_video

    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4)
    result = extract_features(model, VIDEO, mode="dense", every=3, stride=10, batch_size=3)
    with open_video(str(VIDEO)) as reader:
        count, fps = len(reader), reader.fps
        span = 7 * 3
        assert len(result.frames) == (count - 1 - span) // 10 + 1 and result.array.shape == (len(result.frames), 512)
        steps = scheme_pipeline(model.preset["data"], "efficient")[1:]
        for k in (0, len(result.frames) // 2, len(result.frames) - 1):
            frames = [10 * k + 3 * j for j in range(8)]
            assert result.frames[k] == frames
            assert result.windows[k] == [round(frames[0] / fps, 4), round((frames[-1] + 1) / fps, 4)]
            clip = Clip(reader.get(frames), None, {})
            for step in steps:
                clip = STEP_TYPES[step["type"]](**{a: b for a, b in step.items() if a != "type"})(clip, None)
            by_hand = clip_features(model, clip.imgs[None]).mean(dim=2)[0, 0]
            assert np.allclose(result.array[k], by_hand.numpy(), atol=1e-5)


def test_a_video_shorter_than_a_window_gives_one_padded_window():
    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4)
    frames = [np.full((64, 64, 3), 10 * i, np.uint8) for i in range(5)]
    from tsmcli.features.dense import dense_features

    result = dense_features(Predictor(model), frames, every=2)
    assert result.frames == [[0, 2, 4, 4, 4, 4, 4, 4]] and result.array.shape == (1, 512)


@pytest.fixture(scope="module")
def videos(module_dir):
    root = module_dir("features")
    prepare_toy(root / "toy", train_per_class=2, val_per_class=1, seed=3)
    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4)
    tsmcli.save_checkpoint(root / "toy.pth", model, model.preset, labels=["a", "b", "c", "d"])
    (root / "toy/videos/growing/broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    return root


def tsm_extract(*args):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", "extract", *map(str, args), "--device", "cpu"],
                          capture_output=True, text=True, timeout=300)


def _index(out):
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_extract_a_folder_the_classifier_reads_the_features_and_unreadable_videos_are_listed(videos, tmp_path):
    out = tmp_path / "out"
    run = tsm_extract(videos / "toy/videos", "--ckpt", videos / "toy.pth", "--out", out)
    assert run.returncode == 0, run.stderr
    assert "12 extracted, 0 already done, 1 unreadable of 13 videos" in run.stdout
    assert "unreadable:" in run.stderr and "broken.mp4" in run.stderr
    index = _index(out)
    assert [e["path"] for e in index] == sorted(e["path"] for e in index)  # input order: walked, sorted
    broken = [e for e in index if e["path"].endswith("broken.mp4")]
    assert broken[0]["file"] is None and broken[0]["error"]
    first = next(e for e in index if e["file"])
    assert first["file"] == "growing/train_0000.npy" and first["shape"] == [512] and first["fps"] == 12.0
    features = np.load(out / first["file"])
    assert features.dtype == np.float32
    model = tsmcli.load_model(videos / "toy.pth", fast=True)
    predicted = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", first["path"], "--ckpt",
                                videos / "toy.pth", "--json", "--device", "cpu"], capture_output=True, text=True)
    scores = torch.tensor(json.loads(predicted.stdout)["scores"])
    with torch.no_grad():
        probs = model.head.fc(torch.from_numpy(features)).softmax(-1)
    assert torch.allclose(probs, scores, atol=1e-5)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


@pytest.mark.slow
def test_extract_resumes_after_a_kill_and_equals_a_run_never_stopped(videos, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{p.relative_to(videos / 'toy/videos')}\n"
                              for p in sorted((videos / "toy/videos").rglob("train_*.mp4"))))
    clean = tmp_path / "clean"
    assert tsm_extract(listed, "--data-root", videos / "toy/videos", "--ckpt", videos / "toy.pth", "--out", clean,
                       "--mode", "frames", "--dtype", "float16").returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "extract", listed, "--data-root",
                             videos / "toy/videos", "--ckpt", videos / "toy.pth", "--out", out, "--mode", "frames",
                             "--dtype", "float16", "--device", "cpu", "--batch-size", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    journals = out / ".tsm-extract"
    while time.time() < deadline and sum(len(p.read_text().splitlines()) for p in journals.glob("journal-*")) < 2:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sum(len(p.read_text().splitlines()) for p in journals.glob("journal-*"))
    assert 2 <= done < 8, "the kill came too late to test a resumed run"
    rerun = tsm_extract(listed, "--data-root", videos / "toy/videos", "--ckpt", videos / "toy.pth", "--out", out,
                        "--mode", "frames", "--dtype", "float16")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - done} extracted, {done} already done" in rerun.stdout
    assert [e["file"] for e in _index(out)] == [e["file"] for e in _index(clean)]
    for entry in _index(clean):
        ours, theirs = np.load(out / entry["file"]), np.load(clean / entry["file"])
        assert ours.dtype == np.float16 and ours.shape == (1, 8, 512) and np.array_equal(ours, theirs)
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    changed = tsm_extract(listed, "--data-root", videos / "toy/videos", "--ckpt", videos / "toy.pth", "--out", out)
    assert changed.returncode == 2 and "other settings (mode 'frames' -> 'video'" in changed.stderr


@pytest.mark.slow
@pytest.mark.distributed
def test_shards_split_the_inputs_and_dense_mode_writes_window_times(videos, tmp_path):
    out = tmp_path / "out"
    for shard, processes in (("1/2", 2), ("2/2", 1)):  # shard 1 split between two processes (Gloo)
        run = tsm_extract(videos / "toy/videos/moving_left", "--ckpt", videos / "toy.pth", "--out", out,
                          "--mode", "dense", "--every", "1", "--stride", "4", "--shard", shard, "--gpus", processes)
        assert run.returncode == 0, run.stderr
    assert len(list((out / ".tsm-extract").glob("journal-1of2-rank*.jsonl"))) == 2
    first, second = ([json.loads(x) for x in (out / f"index-{i}-of-2.jsonl").read_text().splitlines()] for i in (1, 2))
    assert len(first) == 2 and len(second) == 1 and not {e["path"] for e in first} & {e["path"] for e in second}
    entry = first[0]
    assert entry["stride"] == 4 and entry["every"] == 1 and entry["frames"][1] == list(range(4, 12))
    assert entry["shape"] == [len(entry["windows"]), 512] and entry["windows"][1] == [round(4 / 12, 4), 1.0]
    nothing = tsm_extract(tmp_path, "--ckpt", videos / "toy.pth", "--out", tmp_path / "none")
    assert nothing.returncode == 2 and "no videos" in nothing.stderr


@pytest.mark.slow
def test_an_exported_model_gives_the_checkpoints_features(videos, tmp_path):
    pytest.importorskip("onnxruntime")
    from tsmcli.export.whole import export_model
    from tsmcli.runtime.exported import open_exported

    model = tsmcli.load_model(videos / "toy.pth")
    export_model(model, tmp_path / "toy.onnx", 56, 56)
    exported = open_exported(tmp_path / "toy.onnx")
    for mode in ("video", "dense"):
        theirs = extract_features(exported, VIDEO, mode=mode, every=4)
        ours = extract_features(model, VIDEO, mode=mode, every=4)
        assert theirs.array.shape == ours.array.shape and np.allclose(theirs.array, ours.array, atol=1e-4)
    with pytest.raises(tsmcli.UserError, match="holds the last stage's features only"):
        extract_features(exported, VIDEO, layer="layer3")
    run = tsm_extract(VIDEO, "--ckpt", tmp_path / "toy.onnx", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert np.allclose(np.load(tmp_path / "out/test.npy"), extract_features(model, VIDEO).array, atol=1e-4)


def test_a_wrong_layer_is_the_commands_error_not_each_videos(videos, tmp_path):
    from tsmcli.features.job import gather_inputs, run_extraction

    model = tsmcli.load_model(videos / "toy.pth")
    settings = {"checkpoint": "toy.pth", "preset": None, "mode": "dense", "layer": "layer9", "scheme": "preset",
                "stride": None, "every": None, "dtype": "float32"}
    with pytest.raises(tsmcli.UserError, match="layer 'layer9': this backbone has no such part") as error:
        run_extraction(Predictor(model), gather_inputs([videos / "toy/videos/growing"]), tmp_path / "out", settings)
    assert not (tmp_path / "out").exists()
    assert error.value.for_command_line().startswith("--layer layer9: this backbone has no such part")


def test_videos_of_one_name_in_two_containers_keep_their_extensions(tmp_path):
    from tsmcli.features.job import gather_inputs

    for name in ("clip.mp4", "clip.avi", "other.mp4"):
        shutil.copy(SHARED / "fixtures/videos/test.mp4", tmp_path / name)
    keys = {Path(item.path).name: item.key for item in gather_inputs([tmp_path, tmp_path / "other.mp4"])}
    assert keys == {"clip.avi": "clip.avi", "clip.mp4": "clip.mp4", "other.mp4": "other"}  # given twice: once
    (tmp_path / "sub").mkdir()
    shutil.copy(SHARED / "fixtures/videos/test.mp4", tmp_path / "sub/clip.mp4")
    with pytest.raises(UserError, match="would both be written to clip.mp4.npy"):
        gather_inputs([tmp_path / "clip.mp4", tmp_path / "sub/clip.mp4", tmp_path / "clip.avi"])
