"""`tsm presets import`: mmaction2 0.24.1's own TSM configs (tests/data/mmaction/py_configs/, unmodified)
read without running them, into exactly our built-in presets; a user's config into a preset that extends
the nearest one."""
import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO

import tsmcli
from tsmcli.errors import UserError
from tsmcli.presets import load_preset
from tsmcli.presets.importer import RECIPE_KEYS, import_config, preset_from_config_file
from tsmcli.presets.mmaction import preset_from_mmaction

CONFIGS = REPO / "tests/data/mmaction/py_configs/configs"
TSM = CONFIGS / "recognition/tsm"
RESOLVED = json.loads((REPO / "tests/data/mmaction/configs.json").read_text())["configs"]  # mmcv's own reading


def our_name(zoo_name):
    return zoo_name.removesuffix("_rgb").replace("kinetics400", "k400")


def recipe(preset):
    return {k: load_preset(preset).get(k) for k in RECIPE_KEYS}


@pytest.mark.slow
def test_every_tsm_config_of_mmaction2_round_trips(tmp_path):
    files = sorted(TSM.glob("*.py"))
    assert len(files) == len(RESOLVED) == 36
    for config in files:
        # the file read by ast gives what mmcv's Config.fromfile gave mmaction2 itself
        values, _, _ = preset_from_config_file(config)
        values.pop("log", None)  # log_config, which configs.json leaves out
        assert values == preset_from_mmaction(RESOLVED[config.stem]), config.name
        out = tmp_path / f"{config.stem}.yaml"
        base, body, _ = import_config(config, out)
        assert base == our_name(config.stem) and body == {}, config.name
        assert recipe(str(out)) == recipe(base), config.name


@pytest.mark.slow
def test_a_users_config_extends_the_nearest_preset_with_what_differs(tmp_path):
    tree = tmp_path / "mmaction2"
    shutil.copytree(CONFIGS, tree / "configs")
    mine = tree / "configs/recognition/tsm/my_tsm_ucf.py"
    mine.write_text("""_base_ = ['./tsm_r50_video_1x1x8_50e_kinetics400_rgb.py']
model = dict(cls_head=dict(num_classes=10, dropout_ratio=0.5))
videos = 'data/mine/videos'
ann_file_train = f'data/mine/{"train"}.txt'
data = dict(videos_per_gpu=4, train=dict(ann_file=ann_file_train, data_prefix=videos))
optimizer = dict(lr=0.01 * 2 / 8)
checkpoint_config = dict(interval=1, max_keep_ckpts=3)
total_epochs = 10
custom_imports = dict(imports=['my_module'])
""")
    (tmp_path / "work").mkdir()
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "presets", "import", str(mine), "--from-dir", str(tree)],
                         cwd=tmp_path / "work", capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "extends tsm_r50_video_1x1x8_50e_k400" in run.stdout and "not read (tsm has no such setting): custom_imports" in run.stdout
    written = yaml.safe_load((tmp_path / "work/my_tsm_ucf.yaml").read_text())
    assert written["extends"] == "tsm_r50_video_1x1x8_50e_k400"
    cfg = load_preset(str(tmp_path / "work/my_tsm_ucf.yaml"))
    assert cfg["model"]["num_classes"] == 10 and cfg["model"]["dropout"] == 0.5
    assert cfg["optimizer"]["lr"] == 0.0025 and cfg["optimizer"]["lr_batch_size"] == 32  # 8 GPUs x 4, the zoo's rule
    assert cfg["data"]["videos_per_gpu"] == 4 and cfg["schedule"]["epochs"] == 10
    assert cfg["checkpoint"] == {"interval": 1, "max_keep": 3}
    # the paths it set are read where mmaction2 ran; those it inherits stay the built-in's (data/ from the current folder)
    assert cfg["data"]["train"]["ann_file"] == str(tree / "data/mine/train.txt")
    assert cfg["data"]["train"]["data_prefix"] == str(tree / "data/mine/videos")
    assert cfg["data"]["val"]["ann_file"] == load_preset("tsm_r50_video_1x1x8_50e_k400")["data"]["val"]["ann_file"]
    again = subprocess.run([sys.executable, "-m", "tsmcli.cli", "presets", "import", str(mine)], cwd=tmp_path / "work",
                           capture_output=True, text=True)
    assert again.returncode == 2 and "exists; give another --out, or --force" in again.stderr


@pytest.mark.parametrize("line, says", [
    ("import os\n", "line 2: import statements need Python to run"),
    ("model = dict(backbone=dict(depth=int('50')))\n", "line 2: \"int('50')\" needs Python to evaluate"),
    ("steps = [i * 10 for i in range(3)]\n", "line 2: '[i * 10 for i in range(3)]' needs Python"),
    ("lr = base_lr * 2\n", "line 2: the name 'base_lr' is not assigned earlier in this file"),
    ("if True:\n    x = 1\n", "line 2: if statements need Python to run"),
])
def test_code_in_a_config_is_refused_naming_the_line_and_never_run(tmp_path, line, says):
    config = tmp_path / "bad.py"
    witness = tmp_path / "ran"
    config.write_text(f"_base_ = []\n{line}open({str(witness)!r}, 'w')\n")
    with pytest.raises(UserError, match=re.escape(f"bad.py {says}")) as error:
        import_config(config, tmp_path / "bad.yaml")
    assert str(config) in str(error.value) and not witness.exists() and not (tmp_path / "bad.yaml").exists()


def test_a_python_config_given_as_a_preset_says_to_import_it(tmp_path):
    (tmp_path / "mine.py").write_text("model = dict()\n")
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "presets", "show", str(tmp_path / "mine.py")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and f"tsm presets import {tmp_path / 'mine.py'}" in run.stderr


def _nested(path, key, value):
    """'model.backbone', 'frozen_stages', 2 -> "model = dict(backbone=dict(frozen_stages=2))" (mmcv merges it
    into the base config's dicts)."""
    parts = path.split(".")
    text = f"dict({key}={value!r})"
    for part in reversed(parts[1:]):
        text = f"dict({part}={text})"
    return f"{parts[0]} = {text}\n"


def _other(value):
    """A value unlike mmaction2's default."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return value + [9]
    if isinstance(value, str):
        return value + "_other"
    return {"type": "Other"}


def _import_with(tmp_path, path, key, value, base="tsm_r50_1x1x8_50e_kinetics400_rgb.py"):
    tree = tmp_path / "configs/recognition/tsm"
    if not tree.exists():
        shutil.copytree(CONFIGS, tmp_path / "configs")
    config = tree / "mine.py"
    config.write_text(f"_base_ = ['./{base}']\n" + _nested(path, key, value))
    return import_config(config, tmp_path / "mine.yaml")


def _fixed_cases():
    from tsmcli.presets.mmaction import _FIXED

    for table, keys in _FIXED.items():
        section, _, kind = table.partition(":")
        if kind == "MobileNetV2TSM" or section == "data.split":
            continue  # the same keys as ResNetTSM's; the splits are checked through data.train
        for key, value in keys.items():
            yield pytest.param(section, key, _other(value), id=f"{section}.{key}")
    yield pytest.param("data.train", "modality", "Flow", id="data.train.modality")
    yield pytest.param("model.backbone", "zero_init_residual", False, id="a key tsm has not heard of")
    yield pytest.param("data", "train_dataloader", {"videos_per_gpu": 2}, id="data.train_dataloader")
    yield pytest.param("model.cls_head.loss_cls", "class_weight", [1.0, 2.0], id="model.cls_head.loss_cls.class_weight")
    yield pytest.param("lr_config", "warmup", "exp", id="lr_config.warmup")


@pytest.mark.parametrize("section, key, value", list(_fixed_cases()))
def test_a_value_tsm_would_not_carry_is_refused_naming_its_key(tmp_path, section, key, value):
    """`tsm presets import` never drops a value silently: one it has no setting for, or computes only at
    mmaction2's default, is refused, naming it."""
    with pytest.raises(UserError, match=re.escape(f"{section}.{key}")):
        _import_with(tmp_path, section, key, value)
    assert not (tmp_path / "mine.yaml").exists()


@pytest.mark.slow
def test_frozen_stages_is_carried_and_a_key_without_effect_is_reported(tmp_path):
    base, body, ignored = _import_with(tmp_path, "model.backbone", "frozen_stages", 2)
    assert base == "tsm_r50_1x1x8_50e_k400" and body["model"] == {"frozen_stages": 2}
    model = tsmcli.build_model(str(tmp_path / "mine.yaml"), pretrained=False).train()
    backbone = model.backbone
    assert not any(p.requires_grad for m in (backbone.conv1, backbone.bn1, backbone.layer1, backbone.layer2)
                   for p in m.parameters())
    assert all(p.requires_grad for p in backbone.layer3.parameters())
    assert not backbone.layer2[0].bn1.training and backbone.layer3[0].bn1.training  # frozen statistics too
    _, _, ignored = _import_with(tmp_path, "model.test_cfg", "max_testing_views", 4)
    assert "model.test_cfg.max_testing_views" in ignored


def test_non_local_blocks_without_a_norm_cfg_are_refused(tmp_path):
    """mmcv's non-local block has no BatchNorm unless non_local_cfg names one; tsm's always has: a config
    whose blocks leave it out (mmaction2's default) is refused, not imported as a different model."""
    tree = tmp_path / "configs/recognition/tsm"
    shutil.copytree(CONFIGS, tmp_path / "configs")
    (tree / "mine.py").write_text("_base_ = ['./tsm_nl_embedded_gaussian_r50_1x1x8_50e_kinetics400_rgb.py']\n"
                                  "model = dict(backbone=dict(non_local_cfg=dict(_delete_=True, sub_sample=True, "
                                  "use_scale=False, mode='embedded_gaussian')))\n")
    with pytest.raises(UserError, match=re.escape("model.backbone.non_local_cfg.norm_cfg = None") + ".*set that$"):
        import_config(tree / "mine.py", tmp_path / "mine.yaml")
