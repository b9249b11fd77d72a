"""tsm as users install it: the wheel built from this checkout, installed without -e into a folder of its
own (torch and the other dependencies reused from this environment), run from a folder outside the
checkout, with decord made unimportable (the default install has none)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
SKIP_IN_COPY = shutil.ignore_patterns(".git", ".venv", "work_dirs", "data", "build", "*.egg-info", "__pycache__",
                                      ".pytest_cache", ".whl")
NO_DECORD = "raise ModuleNotFoundError(\"No module named 'decord'\", name='decord')\n"


@pytest.fixture(scope="module")
def installed(module_dir):
    """(environment, working folder) where `python -m tsmcli` and bin/tsm are the installed wheel."""
    tmp = module_dir("installed")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=SKIP_IN_COPY)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
                    "-w", str(tmp / "wheel")], check=True, capture_output=True)
    wheel = next((tmp / "wheel").glob("tsm-*.whl"))
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    blocker = tmp / "no_decord"
    (blocker / "decord").mkdir(parents=True)
    (blocker / "decord" / "__init__.py").write_text(NO_DECORD)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TSM_PRESETS_DIR")}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(target)])
    work = tmp / "elsewhere"
    work.mkdir()
    return env, work, target


def tsm(installed, *args, check=True):
    env, work, target = installed
    result = subprocess.run([str(target / "bin" / "tsm"), *args], cwd=work, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"tsm {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.mark.slow
def test_the_installed_package_is_the_one_imported_and_decord_is_absent(installed):
    env, work, target = installed
    probe = subprocess.run([sys.executable, "-c", "import tsmcli, tsmcli.video as v; print(tsmcli.__file__); "
                                                  "print(v.available_decoders())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    where, decoders = probe.stdout.splitlines()
    assert Path(where).is_relative_to(target)
    assert "decord" not in decoders and "pyav" in decoders


@pytest.mark.slow
def test_every_preset_label_map_and_zoo_name_is_installed(installed):
    rows = json.loads(tsm(installed, "presets", "list", "--json").stdout)
    shipped = sorted(p.stem for p in (ROOT / "tsmcli/presets/configs").glob("*.yaml"))
    assert sorted(r["name"] for r in rows) == shipped and len(shipped) == 39
    shown = tsm(installed, "presets", "show", "tsm_r50_1x1x8_50e_kinetics400_rgb").stdout
    assert "name: tsm_r50_1x1x8_50e_k400" in shown and "decoder: auto" in shown
    env, work, _ = installed
    check = ("import tsmcli\nfrom tsmcli.labels import label_map\nfrom tsmcli.presets import zoo_checkpoints, "
             "preset_for_checkpoint_name\n"
             "print(len(label_map('kinetics400')), len(label_map('sthv2')), len(zoo_checkpoints()))\n"
             "print(preset_for_checkpoint_name('tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth'))\n"
             "m = tsmcli.build_model('tsm_r50_1x1x8_50e_k400', pretrained=False); print(len(m.labels))\n")
    out = subprocess.run([sys.executable, "-c", check], cwd=work, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["400", "174", "34", "tsm_r50_1x1x8_50e_k400", "400"]


@pytest.mark.slow
def test_python_dash_m_is_the_command(installed):
    env, work, _ = installed
    result = subprocess.run([sys.executable, "-m", "tsmcli", "--version"], cwd=work, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout.strip()


@pytest.mark.slow
def test_toy_data_one_epoch_of_training_and_predict_from_the_wheel(installed):
    env, work, _ = installed
    tsm(installed, "prepare", "toy", "--root", "data/toy", "--train-per-class", "4", "--val-per-class", "2")
    tsm(installed, "train", "-p", "tsm_r18_1x1x8_toy", "--device", "cpu", "--work-dir", "work_dirs/toy",
        "--set", "schedule.epochs=1")
    checkpoint = work / "work_dirs/toy/latest.pth"
    assert checkpoint.is_file()
    assert "sample.mp4" in tsm(installed, "sample-video").stdout  # the clip inside the wheel, copied here
    result = json.loads(tsm(installed, "predict", "sample.mp4", "--ckpt", str(checkpoint), "--json").stdout)
    classes = (work / "data/toy/label_map.txt").read_text().split("\n")
    assert result["top"][0]["label"] in classes and len(result["scores"]) == 4
    refused = tsm(installed, "predict", str(SHARED / "fixtures/videos/test.mp4"), "--ckpt", str(checkpoint),
                  "--decoder", "decord", check=False)
    assert refused.returncode == 2 and "tsm[decord]" in refused.stderr


def test_no_presets_is_an_error_not_an_empty_table(installed, tmp_path):
    env, work, target = installed
    result = subprocess.run([str(target / "bin" / "tsm"), "presets", "list"], cwd=work,
                            env={**env, "TSM_PRESETS_DIR": str(tmp_path)}, capture_output=True, text=True)
    assert result.returncode == 2 and "no presets found" in result.stderr and str(tmp_path) in result.stderr


def test_presets_load_from_a_zipped_package(installed, tmp_path):
    """importlib.resources, not paths next to __file__: the package imported from a zip file finds them."""
    env, work, target = installed
    archive = shutil.make_archive(str(tmp_path / "tsm"), "zip", root_dir=target, base_dir="tsmcli")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import tsmcli, tsmcli.presets as p\n"
            "assert tsmcli.__file__.startswith(sys.argv[1]), tsmcli.__file__\n"
            "print(len(p.preset_names()), p.load_preset('tsm_r18_1x1x8_toy')['model']['depth'])\n")
    out = subprocess.run([sys.executable, "-c", code, archive], cwd=work, env={**env, "PYTHONPATH": ""},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["39", "18"]


def test_a_presets_dir_of_ones_own_replaces_the_built_in_ones(installed, tmp_path):
    env, work, target = installed
    own = tmp_path / "presets"
    shutil.copytree(ROOT / "tsmcli/presets/configs", own)
    (own / "tsm_r18_1x1x8_toy_multilabel.yaml").rename(own / "my_toy.yaml")  # a leaf: no preset extends it
    result = subprocess.run([str(target / "bin" / "tsm"), "presets", "list", "--json"], cwd=work,
                            env={**env, "TSM_PRESETS_DIR": str(own)}, capture_output=True, text=True, check=True)
    names = {row["name"] for row in json.loads(result.stdout)}
    assert "my_toy" in names and "tsm_r18_1x1x8_toy_multilabel" not in names and len(names) == 39
