import subprocess
import sys

import pytest
import yaml

import tsmcli
from tsmcli.errors import UserError
from tsmcli.presets import find_preset_file, load_preset, preset_for_checkpoint_name, preset_names
from tsmcli.presets.mmaction import preset_from_mmaction

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "tools"))
from make_presets import OUTSIDE_THE_ZOO_TABLE  # noqa: E402

ZOO_COUNT = 36  # the 32 configurations of the zoo table and 4 more TSM configs mmaction2 0.x ships


def our_name(zoo_name):
    return zoo_name.removesuffix("_rgb").replace("kinetics400", "k400")


EXTRA_PRESETS = ["tsm_r18_1x1x8_toy", "tsm_r18_1x1x8_toy_multilabel", "tsm_r18_video_1x1x8_25e_small"]  # ours: the main job, multi-label toy, own videos


def test_one_preset_per_zoo_configuration(mmaction_configs):
    assert len(mmaction_configs) == ZOO_COUNT
    assert sorted(preset_names()) == sorted([our_name(n) for n in mmaction_configs] + EXTRA_PRESETS)


def test_presets_carry_mmactions_values(mmaction_configs):
    """Each resolved preset equals mmaction2 0.24.1's own resolved config, translated."""
    for zoo_name, cfg in mmaction_configs.items():
        preset = load_preset(our_name(zoo_name))
        expected = preset_from_mmaction(cfg)
        for section, values in expected.items():
            assert preset[section] == values, (zoo_name, section)
        assert preset["aliases"] == [zoo_name]
        assert bool(preset["reference"]) == (zoo_name not in OUTSIDE_THE_ZOO_TABLE), zoo_name


@pytest.mark.slow
def test_inference_only_configs_test_but_do_not_train():
    preset = load_preset("tsm_mobilenetv2_video_inference_dense_1x1x8_100e_kinetics400_rgb")
    assert preset["inference_only"] and preset["data"]["test"]["pipeline"][0]["type"] == "DenseSampleFrames"
    assert not load_preset("tsm_temporal_pool_r50_1x1x8_50e_k400")["inference_only"]
    proc = subprocess.run([sys.executable, "-m", "tsmcli.cli", "train", "-p", "tsm_r50_video_inference_1x1x8_100e_k400",
                           "--device", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 2 and "inference-only" in proc.stderr
    with pytest.raises(UserError, match=r"names no test list \(data.test.ann_file\)"):
        tsmcli.build_dataset("tsm_r50_video_inference_1x1x8_100e_k400", "test")


def test_every_checkpoint_of_the_metafile_picks_its_preset():
    from tsmcli.presets import zoo_checkpoints

    assert len(zoo_checkpoints()) == 34
    for name, entry in zoo_checkpoints().items():
        assert preset_for_checkpoint_name(name) == find_preset_file(entry["config"]).stem, name
    assert preset_for_checkpoint_name("tsm_r50_256p_1x1x8_50e_kinetics400_rgb_20200726-020785e2.pth") == \
        "tsm_r50_1x1x8_50e_k400"


def test_every_preset_resolves():
    for name in preset_names():
        assert load_preset(name)["name"] == name


@pytest.mark.slow
def test_parameter_counts_equal_mmactions(mmaction_configs):
    for zoo_name, cfg in mmaction_configs.items():
        model = tsmcli.build_model(our_name(zoo_name), pretrained=False)
        assert sum(p.numel() for p in model.parameters()) == cfg["num_params"], zoo_name


def test_zoo_typo_r101_is_a_resnet101():
    preset = load_preset("tsm_r101_1x1x8_50e_sthv1")
    assert preset["model"]["depth"] == 101
    assert preset["model"]["pretrained"] == "torchvision://resnet101"


def test_reference_rows_have_both_schemes():
    rows = load_preset("tsm_r50_1x1x8_50e_sthv2")["reference"]
    assert {(r["resolution"], r["scheme"]) for r in rows} == {
        ("height 240", "efficient"), ("height 240", "accurate"),
        ("height 256", "efficient"), ("height 256", "accurate")}
    assert [r["top1"] for r in rows if r["resolution"] == "height 240"] == [57.86, 61.12]


@pytest.mark.parametrize("alias", ["tsm_r50_dense_1x1x8_100e_kinetics400_rgb",
                                   "tsm_r50_dense_1x1x8_100e_kinetics400_rgb.py"])
def test_zoo_names_are_aliases(alias):
    assert load_preset(alias)["name"] == "tsm_r50_dense_1x1x8_100e_k400"


def test_checkpoint_file_name_picks_preset():
    assert preset_for_checkpoint_name("tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth") == \
        "tsm_r50_1x1x8_50e_k400"
    assert preset_for_checkpoint_name("tsm_r50_1x1x16_50e_kinetics400_rgb_20201011-2f27f229.pth") == \
        "tsm_r50_1x1x16_50e_k400"
    assert preset_for_checkpoint_name("resnet50-0676ba61.pth") is None


def test_overrides_apply_and_nest():
    cfg = load_preset("tsm_r50_1x1x8_50e_k400", ["model.dropout=0.8", "data.videos_per_gpu=4",
                                                 "model.pretrained=null"])
    assert cfg["model"]["dropout"] == 0.8
    assert cfg["data"]["videos_per_gpu"] == 4
    assert cfg["model"]["pretrained"] is None
    assert load_preset("tsm_r50_1x1x8_50e_k400", ["optimizer.grad_clip=1e-9"])["optimizer"]["grad_clip"] == 1e-9


@pytest.mark.parametrize("override, message", [
    ("model.dropot=0.1", "did you mean 'model.dropout'"),
    ("model.dropout=1.5", "model.dropout"),
    ("data.videos_per_gpu=abc", "must be int"),
    ("model.backbone=vgg", "must be one of"),
    ("optimizer.lr=-1", "must be > 0"),
    ("novalue", "KEY=VALUE"),
])
def test_bad_overrides_are_named(override, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        load_preset("tsm_r50_1x1x8_50e_k400", [override])


def test_user_yaml_extends_a_preset(tmp_path):
    path = tmp_path / "my_exp.yaml"
    path.write_text(yaml.safe_dump({"extends": "tsm_r50_1x1x8_50e_k400", "model": {"num_classes": 7}}))
    cfg = load_preset(str(path))
    assert cfg["name"] == "my_exp"
    assert cfg["model"]["num_classes"] == 7
    assert cfg["model"]["depth"] == 50
    assert cfg["aliases"] == []


def test_user_yaml_errors_name_file_key_and_neighbour(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: tsm_r50_1x1x8_50e_k400\nmodel:\n  num_segmets: 4\n")
    with pytest.raises(UserError) as err:
        load_preset(str(path))
    assert str(path) in str(err.value)
    assert "model.num_segmets" in str(err.value) and "model.num_segments" in str(err.value)


def test_unknown_pipeline_step_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: tsm_r50_1x1x8_50e_k400\ndata:\n  test:\n    pipeline:\n"
                    "    - {type: CentreCrop, crop_size: 224}\n")
    with pytest.raises(UserError, match="CenterCrop"):
        load_preset(str(path))


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  dropout: [0.5\n")
    with pytest.raises(UserError, match="line"):
        load_preset(str(path))


def test_unknown_preset_suggests():
    with pytest.raises(UserError, match="did you mean tsm_r50_1x1x8_50e_k400"):
        find_preset_file("tsm_r50_1x1x8_50e_k40")


def test_a_user_file_reads_its_paths_from_its_own_folder(tmp_path):
    from tsmcli.labels import class_names

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub/names.txt").write_text("a\nb\nc\n")
    (tmp_path / "sub/mine.yaml").write_text(
        "extends: tsm_r18_1x1x8_toy\nlabel_map: names.txt\nmodel: {num_classes: 3}\n"
        "data: {train: {ann_file: lists/train.txt, data_prefix: /abs/videos}}\n")
    cfg = load_preset(str(tmp_path / "sub/mine.yaml"))
    assert cfg["data"]["train"]["ann_file"] == str(tmp_path / "sub/lists/train.txt")
    assert cfg["data"]["train"]["data_prefix"] == "/abs/videos"
    assert cfg["data"]["val"]["ann_file"] == "data/toy/toy_val_list_videos.txt"  # the built-in preset's, as it was
    assert class_names(cfg) == ["a", "b", "c"]
    with pytest.raises(UserError, match="names 3 classes, the model has 4"):
        class_names(load_preset(str(tmp_path / "sub/mine.yaml"), ["model.num_classes=4"]))
    # extending the toy preset with other classes and no label map: no toy names for them
    assert class_names(load_preset("tsm_r18_1x1x8_toy", ["model.num_classes=3"])) is None
    assert class_names(load_preset("tsm_r18_1x1x8_toy"))[:2] == ["moving left", "moving right"]
