import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tsmcli.cli import app

runner = CliRunner()


def tsm(*args):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *args], capture_output=True, text=True)


def test_help_lists_subcommands_with_examples():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "presets" in result.output and "Examples" in result.output
    sub = runner.invoke(app, ["presets", "show", "--help"])
    assert sub.exit_code == 0 and "--set" in sub.output and "tsm presets show" in sub.output


def test_presets_list_json():
    result = runner.invoke(app, ["presets", "list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert len([r for r in rows if r["alias"]]) == 36  # mmaction2's 36 TSM configs; plus our own (the toy preset)
    row = next(r for r in rows if r["name"] == "tsm_r50_1x1x8_50e_k400")
    assert (row["top1"], row["top5"], row["speed_video_s"], row["memory_mb"]) == (70.24, 89.56, 74.0, 7079)
    assert row["alias"] == "tsm_r50_1x1x8_50e_kinetics400_rgb"


def test_presets_list_table_filters_by_dataset():
    result = runner.invoke(app, ["presets", "list", "--dataset", "jester"])
    assert result.exit_code == 0
    assert "tsm_r50_1x1x8_50e_jester" in result.output and "k400" not in result.output


def test_show_with_several_overrides_one_flag_each():
    result = runner.invoke(app, ["presets", "show", "tsm_r50_1x1x8_50e_k400", "--set", "model.dropout=0.8",
                                 "--set", "data.videos_per_gpu=4"])
    assert result.exit_code == 0
    assert "dropout: 0.8" in result.output and "videos_per_gpu: 4" in result.output


def test_a_second_word_after_a_list_option_is_an_error_not_a_guess():
    """List options take one value per flag (Typer's own rule): a second word is never guessed into the
    list, it is refused as an extra argument."""
    result = tsm("presets", "show", "tsm_r50_1x1x8_50e_k400", "--set", "model.dropout=0.8", "data.videos_per_gpu=4")
    assert result.returncode == 2 and "data.videos_per_gpu=4" in result.stderr


@pytest.mark.slow
def test_list_valued_options_repeat_their_flag():
    timed = tsm("benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--batch", "1", "--batch", "2", "--iters", "2",
                "--json")
    assert timed.returncode == 0, timed.stderr
    assert [r["batch"] for r in json.loads(timed.stdout)] == [1, 2]


def test_bad_input_exits_2_without_traceback():
    result = tsm("presets", "show", "tsm_r50_1x1x8_50e_k400", "--set", "model.dropot=0.1")
    assert result.returncode == 2
    assert "model.dropout" in result.stderr and "Traceback" not in result.stderr
    result = tsm("presets", "show", "no_such_preset")
    assert result.returncode == 2 and "unknown preset" in result.stderr


def test_benchmark_data_reports_clips_per_second():
    from conftest import SHARED

    result = runner.invoke(app, ["benchmark", "data", "--preset", "tsm_r50_video_1x1x8_50e_k400",
                                 str(SHARED / "fixtures/videos/test.mp4"), "--clips", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    for split in ("train", "test"):
        assert out[split]["output_shape"] == [8, 3, 224, 224]
        per_clip_ms = out[split]["decode_ms_per_clip"] + out[split]["transform_ms_per_clip"]
        assert out[split]["clips"] == 2 and out[split]["clips_per_s"] == pytest.approx(1e3 / per_clip_ms, rel=1e-6)


def test_prepare_toy_command(tmp_path):
    result = runner.invoke(app, ["prepare", "toy", "--root", str(tmp_path), "--train-per-class", "1",
                                 "--val-per-class", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"] == 4
    assert (tmp_path / "toy_val_list_videos.txt").read_text().count("\n") == 4
    # videos kept from an earlier run are said only when there are some, with what they are
    again = runner.invoke(app, ["prepare", "toy", "--root", str(tmp_path), "--train-per-class", "1",
                                "--val-per-class", "1"]).output
    assert "kept:      8 (already written by an earlier run)" in again, again
    first = runner.invoke(app, ["prepare", "toy", "--root", str(tmp_path / "new"), "--train-per-class", "1",
                                "--val-per-class", "1"]).output
    assert "written:   8" in first and "kept" not in first, first


def _tsm(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--iters", "1", "--device", "cuda:7"],
    ["train", "-p", "tsm_r18_1x1x8_toy", "--device", "cuda"],
    ["test", "x.pth", "--device", "cuda:0"],
    ["predict", "x.mp4", "--ckpt", "x.pth", "--device", "gpu"],
])
def test_a_device_this_machine_lacks_is_one_line_and_exit_2(command):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc = _tsm(*command)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--device" in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.slow
def test_an_unknown_amp_is_refused_not_ignored():
    proc = _tsm("benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--iters", "1", "--amp", "bf32")
    assert proc.returncode == 2 and "--amp bf32:" in proc.stderr


@pytest.mark.slow
def test_an_empty_list_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "train.txt").write_text("")
    proc = _tsm("train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", tmp_path / "w",
                "--set", f"data.train.ann_file={tmp_path}/train.txt")
    assert proc.returncode == 2 and f"{tmp_path}/train.txt lists no videos" in proc.stderr


@pytest.mark.slow
def test_version_and_dataset_short_names():
    assert _tsm("--version").stdout.strip().startswith("tsm 0.")
    rows = json.loads(_tsm("presets", "list", "--dataset", "k400", "--json").stdout)
    assert rows and {r["dataset"] for r in rows} == {"kinetics400"}
    unknown = _tsm("presets", "list", "--dataset", "k700")
    assert unknown.returncode == 2 and "known: diving48" in unknown.stderr


@pytest.mark.slow
def test_resume_auto_without_a_checkpoint_says_it_starts_anew(tmp_path):
    proc = _tsm("train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", tmp_path / "w", "--resume", "auto",
                cwd=tmp_path)  # no toy data there: it stops right after saying so
    assert proc.returncode == 2 and "toy_train_list_videos.txt does not exist" in proc.stderr
    assert f"--resume auto: no checkpoint in {tmp_path / 'w'} yet, so this is a new run" in proc.stdout
    assert not (tmp_path / "w").exists()  # a run that never started leaves no work dir behind
    proc = _tsm("train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "work_dirs").exists()  # nor its parents


@pytest.mark.slow
def test_bad_inputs_are_one_line_naming_the_culprit(tmp_path):
    from conftest import SHARED

    videos = SHARED / "fixtures/videos"
    (tmp_path / "list.txt").write_text("test.mp4 0\ndemo.mp4 7\n")
    common = ["train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", tmp_path / "w",
              "--set", f"data.train.ann_file={tmp_path / 'list.txt'}", "--set", f"data.val.ann_file={tmp_path / 'list.txt'}",
              "--set", f"data.val.data_prefix={videos}"]
    beyond = _tsm(*common, "--set", f"data.train.data_prefix={videos}")
    assert beyond.returncode == 2 and f"{tmp_path / 'list.txt'}:2: label 7 is not a class of this model (4 classes" \
        in beyond.stderr and "Traceback" not in beyond.stderr
    misspelt = _tsm(*common, "--set", f"data.train.data_prefix={videos}x")
    assert misspelt.returncode == 2 and f"data prefix {videos}x (data.train.data_prefix" in misspelt.stderr
    (tmp_path / "label_map.txt").write_text("a\nb\n")
    not_a_checkpoint = _tsm("predict", videos / "test.mp4", "--ckpt", tmp_path / "label_map.txt")
    assert not_a_checkpoint.returncode == 2 and "is not a PyTorch checkpoint" in not_a_checkpoint.stderr


@pytest.mark.slow
def test_test_with_every_video_unreadable_is_an_error(tmp_path):
    import tsmcli

    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "list.txt").write_text("broken.mp4 1\n")
    proc = _tsm("test", tmp_path / "m.pth", "--list", tmp_path / "list.txt", "--data-root", tmp_path)
    assert proc.returncode == 2 and "none of the 1 videos could be read (the first" in proc.stderr


@pytest.mark.slow
def test_finetune_needs_a_checkpoint_to_start_from(tmp_path):
    proc = _tsm("finetune", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", tmp_path / "w", cwd=tmp_path)
    assert proc.returncode == 2 and "--from: which checkpoint to finetune from?" in proc.stderr


def test_help_keeps_brackets_and_flags_take_no_value():
    help_text = " ".join(_tsm("test", "--help").stdout.split())  # wrapped to the terminal's width
    assert "[default: the checkpoint's, or its zoo file name's]" in help_text
    assert "[default: the preset's data.workers_per_gpu]" in help_text
    assert "--json <bool>" not in _tsm("prepare", "custom", "--help").stdout


@pytest.mark.slow
def test_an_error_message_keeps_its_brackets(tmp_path):
    (tmp_path / "list.txt").write_text("clip.mp4\n")
    proc = _tsm("test", "x.pth", "--list", tmp_path / "list.txt")
    assert proc.returncode == 2
    proc = _tsm("train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", tmp_path / "w",
                "--set", f"data.train.ann_file={tmp_path / 'list.txt'}")
    assert proc.returncode == 2 and "expected 'path label [label ...]'" in proc.stderr


@pytest.mark.slow
def test_a_video_list_on_a_frames_preset_says_to_set_the_format(tmp_path):
    (tmp_path / "list.txt").write_text("cooking/a.mp4 0\n")
    proc = _tsm("train", "-p", "tsm_r50_1x1x8_50e_sthv1", "--device", "cpu", "--work-dir", tmp_path / "w",
                "--set", f"data.train.ann_file={tmp_path / 'list.txt'}", "--set", "model.pretrained=null")
    assert proc.returncode == 2 and "set data.format=videos" in proc.stderr


@pytest.mark.slow
def test_training_the_toy_preset_elsewhere_says_to_prepare_it(tmp_path):
    proc = _tsm("train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 2 and "run `tsm prepare toy` first" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("size, hint", [("256", "short256 for a short side of 256"), ("short-256", "sizes above 0")])
def test_a_frame_size_is_checked_before_any_video(tmp_path, size, hint):
    (tmp_path / "videos/a").mkdir(parents=True)
    proc = _tsm("prepare", "custom", "--root", tmp_path, "--frames", size)
    assert proc.returncode == 2 and hint in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_benchmark_data_reads_class_folders_and_model_uses_the_preset_size(tmp_path):
    import shutil

    from conftest import SHARED

    import tsmcli

    (tmp_path / "videos/a b").mkdir(parents=True)
    shutil.copy(SHARED / "fixtures/videos/test.mp4", tmp_path / "videos/a b/clip 1.mp4")
    proc = _tsm("benchmark", "data", "-p", "tsm_r18_1x1x8_toy", tmp_path / "videos", "--clips", "2", "--split", "test",
                "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["test"]["output_shape"] == [8, 3, 56, 56]
    model = _tsm("benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--iters", "1", "--json")
    timed = json.loads(model.stdout)[0]
    assert timed["input"] == [1, 8, 3, 56, 56]
    toy = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)  # parameters and FLOPs of one clip too
    assert timed["complexity"]["params"] == sum(p.numel() for p in toy.parameters())
    assert timed["complexity"]["clip"] == [8, 3, 56, 56] and timed["complexity"]["flops"] > 0


@pytest.mark.slow
def test_test_header_counts_views_in_words(tmp_path):
    import shutil

    from conftest import SHARED

    import tsmcli

    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    shutil.copy(SHARED / "fixtures/videos/test.mp4", tmp_path / "v.mp4")
    (tmp_path / "list.txt").write_text("v.mp4 1\n")
    for scheme, words in (("efficient", "(1 view per video)"), ("accurate", "(6 views per video)")):
        proc = _tsm("test", tmp_path / "m.pth", "--list", tmp_path / "list.txt", "--data-root", tmp_path,
                    "--scheme", scheme)
        assert proc.returncode == 0, proc.stderr
        assert words in " ".join(proc.stdout.split())  # the title may wrap to the table's width


@pytest.mark.slow
def test_presets_list_fits_the_terminal(tmp_path):
    """In a terminal of 100 columns the table keeps whole rows, dropping the least needed columns (and
    says which); piped, every column."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "presets", "list"], stdout=follower,
                            stderr=subprocess.PIPE, env={**os.environ, "TERM": "dumb"})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode())
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100
    assert any(line.startswith("│ tsm_r50_1x1x8_50e_k400 ") for line in lines)  # names whole, one row a line
    assert "not shown for want of width" in " ".join(text.split())
    piped = _tsm("presets", "list").stdout
    header = next(line for line in piped.splitlines() if "name" in line)
    assert all(column in header for column in ("top1", "frames", "backbone", "dataset", "top5", "video/s", "MB"))
