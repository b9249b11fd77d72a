import json
import subprocess
import sys

from typer.testing import CliRunner

from tsmcli.cli import app, expand_set_args

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
    assert len([r for r in rows if r["alias"]]) == 32  # the zoo's; plus our own (the toy preset)
    row = next(r for r in rows if r["name"] == "tsm_r50_1x1x8_50e_k400")
    assert (row["top1"], row["top5"], row["speed_video_s"], row["memory_mb"]) == (70.24, 89.56, 74.0, 7079)
    assert row["alias"] == "tsm_r50_1x1x8_50e_kinetics400_rgb"


def test_presets_list_table_filters_by_dataset():
    result = runner.invoke(app, ["presets", "list", "--dataset", "jester"])
    assert result.exit_code == 0
    assert "tsm_r50_1x1x8_50e_jester" in result.output and "k400" not in result.output


def test_show_with_several_overrides_after_one_set():
    args = expand_set_args(["presets", "show", "tsm_r50_1x1x8_50e_k400", "--set", "model.dropout=0.8",
                            "data.videos_per_gpu=4"])
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "dropout: 0.8" in result.output and "videos_per_gpu: 4" in result.output


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
        assert out[split]["clips_per_s"] > 0 and out[split]["output_shape"] == [8, 3, 224, 224]


def test_prepare_toy_command(tmp_path):
    result = runner.invoke(app, ["prepare", "toy", "--root", str(tmp_path), "--train-per-class", "1",
                                 "--val-per-class", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"] == 4
    assert (tmp_path / "toy_val_list_videos.txt").read_text().count("\n") == 4
