"""Original TSM checkpoints (mit-han-lab/temporal-shift-module): built by the original code itself
(tools/original_reference/generate.py: its ops/models.py TSN under DataParallel, saved with the fields its
main.py saves, named as its README names the files); the weights are regenerated here from the key names."""
import pytest
import torch
from reference_weights import fill_state_dict, input_clip

import tsmcli
from tsmcli.labels import label_map

CASES = ["resnet50", "resnet50_16seg", "resnet101_sthv1", "mobilenetv2", "non_local"]
PRESETS = {"resnet50": "tsm_r50_1x1x8_50e_k400", "resnet50_16seg": "tsm_r50_1x1x16_50e_sthv2",
           "resnet101_sthv1": "tsm_r101_1x1x8_50e_sthv1", "mobilenetv2": "tsm_mobilenetv2_dense_1x1x8_100e_k400",
           "non_local": "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400"}


@pytest.fixture(scope="module")
def original_outputs():
    import json

    from conftest import TESTS

    return json.loads((TESTS / "data/original/outputs.json").read_text())["cases"]


def save_as_main_py_does(case, folder):
    """What main.py's save_checkpoint writes, under the file name the original README publishes."""
    state = fill_state_dict(case["keys"], case["norm_scale"])
    fields = {"epoch": 50, "arch": case["file_name"].split("_")[3], "state_dict": state,
              "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0, 1]}]},
              "best_prec1": 71.2}
    assert sorted(fields) == sorted(case["saved_fields"])
    path = folder / case["file_name"]
    torch.save(fields, path)
    return path, state


def _in_original_class_order(scores, dataset):
    """Our classes -> the original's category order for `dataset` (sorted for sthv1 and Jester)."""
    labels = label_map(dataset)
    if dataset not in ("sthv1", "jester"):
        return scores
    ours = {name: i for i, name in enumerate(labels)}
    return scores[..., [ours[name] for name in sorted(labels)]]


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_same_scores_as_the_original_code(name, original_outputs, tmp_path):
    case = original_outputs[name]
    path, _ = save_as_main_py_does(case, tmp_path)
    model = tsmcli.load_model(path)  # the preset comes from the original file name
    assert model.preset["name"] == PRESETS[name] and model.checkpoint_format == "original"
    x = input_clip(case["input_shape"])
    with torch.no_grad():
        logits = model.logits(x)[:, 0]
        probs = model(x)
    dataset = model.preset["dataset"]
    expected = torch.tensor(case["consensus"])
    assert expected.std() > 0.05  # an informative fixture
    assert torch.allclose(_in_original_class_order(logits, dataset), expected, atol=1e-4, rtol=0)
    assert torch.allclose(_in_original_class_order(probs, dataset), expected.softmax(-1), atol=1e-5, rtol=0)
    with torch.no_grad():  # the output follows the input: time reversed is a different clip
        reversed_time = model.logits(x.flip(1))[:, 0]
    assert (reversed_time - logits).abs().max() > 20 * 1e-4  # a reversed shift would not pass


@pytest.mark.slow
def test_sthv1_classes_are_reordered_class_by_class(original_outputs, tmp_path):
    """The original numbers Something-Something V1 classes in sorted order; ours follow the labels CSV."""
    case = original_outputs["resnet101_sthv1"]
    path, state = save_as_main_py_does(case, tmp_path)
    model = tsmcli.load_model(path)
    original_order = sorted(label_map("sthv1"))
    assert original_order != label_map("sthv1")
    for ours, name in enumerate(model.labels):
        row = original_order.index(name)
        assert torch.equal(model.head.fc.weight[ours], state["module.new_fc.weight"][row]), name
        assert torch.equal(model.head.fc.bias[ours], state["module.new_fc.bias"][row]), name


def test_main_py_run_folder_names_the_preset(original_outputs, tmp_path):
    case = original_outputs["resnet50"]
    run = tmp_path / case["file_name"][:-len(".pth")]
    run.mkdir()
    path, _ = save_as_main_py_does(case, run)
    path.rename(run / "ckpt.best.pth.tar")
    assert tsmcli.load_model(run / "ckpt.best.pth.tar").preset["name"] == "tsm_r50_1x1x8_50e_k400"


@pytest.mark.parametrize("file_name, preset", [
    ("TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment16_e50.pth", "tsm_r50_1x1x16_50e_k400"),
    ("TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense.pth", "tsm_r50_dense_1x1x8_100e_k400"),
    ("TSM_somethingv2_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth", "tsm_r101_1x1x8_50e_sthv2"),
    ("TSM_kinetics_Flow_resnet50_shift8_blockres_avg_segment8_e50.pth", None),  # no flow presets
    ("TSM_kinetics_RGB_resnet50_avg_segment5_e50.pth", None),  # TSN, no shift
])
def test_original_file_names_pick_the_preset(file_name, preset):
    from tsmcli.presets import preset_for_checkpoint_name

    assert preset_for_checkpoint_name(file_name) == preset
