import os
import pickle

import pytest
import torch
import torchvision

import tsmcli
from reference_weights import fill_state_dict, input_clip
from tsmcli.checkpoint import read_checkpoint, save_checkpoint
from tsmcli.errors import UserError


def tiny_model():
    return tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False, model__depth=18,
                              model__num_classes=3, model__num_segments=2)


def test_our_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "ckpt.pth", model, model.preset, labels=["a", "b", "c"], epoch=3)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pth"]  # no temp file left behind
    loaded = tsmcli.load_model(path)  # the preset comes from the file
    assert loaded.labels == ["a", "b", "c"]
    assert not loaded.training
    assert read_checkpoint(path)["epoch"] == 3
    x = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "ckpt.pth", model, model.preset, epoch=1)
    before = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, model, model.preset, epoch=2)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pth"]


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/tsm_pwned",))


def test_hostile_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Exploit()}, f)
    if os.path.exists("/tmp/tsm_pwned"):
        os.unlink("/tmp/tsm_pwned")
    with pytest.raises(UserError, match="weights_only"):
        read_checkpoint(path)
    assert not os.path.exists("/tmp/tsm_pwned")


def test_mmaction_meta_with_numpy_scalars_loads(tmp_path, mmaction_outputs):
    import numpy as np

    case = mmaction_outputs["r50_16seg"]
    path = tmp_path / "tsm_r50_1x1x16_50e_kinetics400_rgb_20201011-2f27f229.pth"
    torch.save({"meta": {"epoch": 50, "hook_msgs": {"best_score": np.float64(0.72)}},
                "state_dict": fill_state_dict(case["keys"])}, path)
    model = tsmcli.load_model(path)  # preset picked from the zoo file name
    assert model.preset["name"] == "tsm_r50_1x1x16_50e_k400"
    assert model.labels[6] == "arm wrestling"


def test_checkpoint_without_a_preset_asks_for_one(tmp_path, mmaction_outputs):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": fill_state_dict(mmaction_outputs["r50_16seg"]["keys"])}, path)
    with pytest.raises(UserError, match="preset"):
        tsmcli.load_model(path)


def test_wrong_class_count_is_explained(tmp_path, mmaction_outputs):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": fill_state_dict(mmaction_outputs["r101"]["keys"])}, path)
    with pytest.raises(UserError, match="174 classes"):
        tsmcli.load_model(path, preset="tsm_r101_1x1x8_50e_sthv1", model__num_classes=10)


def original_resnet_keys(depth, num_classes):
    """Key names and shapes of mit-han-lab's TSN(resnet, is_shift, blockres) under DataParallel."""
    base = getattr(torchvision.models, f"resnet{depth}")()
    every = 2 if len(base.layer3) >= 23 else 1
    keys = []
    for key, value in base.state_dict().items():
        if key.startswith("fc."):
            continue
        parts = key.split(".")
        if parts[0].startswith("layer") and parts[2] == "conv1" and int(parts[1]) % every == 0:
            key = ".".join(parts[:3] + ["net"] + parts[3:])
        keys.append(("module.base_model." + key, list(value.shape)))
    fc_in = base.fc.in_features
    return keys + [("module.new_fc.weight", [num_classes, fc_in]), ("module.new_fc.bias", [num_classes])]


def original_mobilenet_keys(num_classes):
    tv = torchvision.models.mobilenet_v2()
    keys = []
    for key, value in tv.features.state_dict().items():
        parts = key.split(".")
        block = int(parts[0])
        if 1 <= block <= 17 and parts[1] == "conv":
            expands = block != 1
            nested = ".".join(parts[2:-1])
            flat = ({"0.0": 0, "0.1": 1, "1.0": 3, "1.1": 4, "2": 6, "3": 7} if expands
                    else {"0.0": 0, "0.1": 1, "1": 3, "2": 4})[nested]
            res = tv.features[block].use_res_connect
            shift = ".net" if expands and res and flat == 0 else ""
            key = f"{block}.conv.{flat}{shift}.{parts[-1]}"
        keys.append(("module.base_model.features." + key, list(value.shape)))
    return keys + [("module.new_fc.weight", [num_classes, 1280]), ("module.new_fc.bias", [num_classes])]


RESNET_SHIFTED = ("backbone.layer1.0.conv1.weight", "module.base_model.layer1.0.conv1.net.weight")
MOBILENET_SHIFTED = ("backbone.features.3.conv.0.0.weight", "module.base_model.features.3.conv.0.net.weight")


@pytest.mark.parametrize("preset, keys, shifted", [
    ("tsm_r50_1x1x8_50e_k400", original_resnet_keys(50, 400), RESNET_SHIFTED),
    ("tsm_r101_1x1x8_50e_sthv2", original_resnet_keys(101, 174), RESNET_SHIFTED),
    ("tsm_mobilenetv2_dense_1x1x8_100e_k400", original_mobilenet_keys(400), MOBILENET_SHIFTED),
])
def test_original_tsm_checkpoints_load(tmp_path, preset, keys, shifted):
    path = tmp_path / "TSM_original.pth.tar"
    state = fill_state_dict(keys)
    torch.save({"epoch": 50, "arch": "resnet50", "state_dict": state, "best_prec1": 74.1}, path)
    model = tsmcli.load_model(path, preset=preset)
    assert model.checkpoint_format == "original"
    ours = model.state_dict()
    assert torch.equal(ours["head.fc.weight"], state["module.new_fc.weight"])
    ours_key, original_key = shifted  # a shifted conv keeps its weight
    assert torch.equal(ours[ours_key], state[original_key])
    with torch.no_grad():
        assert torch.isfinite(model(input_clip((1, 8, 3, 32, 32)))).all()


def test_imagenet_weights_load_from_local_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), folder / "resnet18-f37072fd.pth")
    model = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", model__depth=18,
                               model__pretrained="torchvision://resnet18")
    assert torch.equal(model.backbone.layer2[0].conv1.weight, reference.layer2[0].conv1.weight)
    assert torch.equal(model.backbone.bn1.running_var, reference.bn1.running_var)


def test_mmcls_mobilenet_weights_load(tmp_path, monkeypatch, mmaction_outputs):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    keys = [(k, s) for k, s in mmaction_outputs["mobilenetv2"]["keys"] if k.startswith("backbone.")]
    keys = [(k.replace(".net.", "."), s) for k, s in keys]  # an ImageNet model has no shift wrapper
    state = fill_state_dict(keys)
    torch.save({"meta": {}, "state_dict": state}, folder / "mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth")
    model = tsmcli.build_model("tsm_mobilenetv2_dense_1x1x8_100e_k400")
    assert torch.equal(model.backbone.features[18][0].weight, state["backbone.conv2.conv.weight"])
    assert torch.equal(model.backbone.features[3].conv[0][0].weight, state["backbone.layer2.1.conv.0.conv.weight"])


def test_imagenet_weights_of_another_architecture_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    folder = tmp_path / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(torchvision.models.resnet18().state_dict(), folder / "resnet50-0676ba61.pth")  # wrong file
    with pytest.raises(UserError, match="do not fit this backbone"):
        tsmcli.build_model("tsm_r50_1x1x8_50e_k400")
