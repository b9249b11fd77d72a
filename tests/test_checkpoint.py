import os
import pickle

import pytest
import torch
import torchvision
from reference_weights import fill_state_dict

import tsmcli
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
        f.write(b"partial")
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


@pytest.mark.slow
def test_wrong_class_count_is_explained(tmp_path, mmaction_outputs):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": fill_state_dict(mmaction_outputs["r101"]["keys"])}, path)
    with pytest.raises(UserError, match="174 classes"):
        tsmcli.load_model(path, preset="tsm_r101_1x1x8_50e_sthv1", model__num_classes=10)


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
