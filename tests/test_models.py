import pytest
import torch

import tsmcli
from tsmcli.models.non_local import BlockWithNonLocal
from tsmcli.models.shift import ShiftedBlock, ShiftedConv2d


def tiny(preset="tsm_r50_1x1x8_50e_k400", **overrides):
    overrides = {"model__depth": 18, "model__num_classes": 5, **overrides}
    return tsmcli.build_model(preset, pretrained=False, **overrides).eval()


def test_views_are_averaged_as_probabilities():
    model = tiny(model__num_segments=4)
    x = torch.randn(2, 3 * 4, 3, 32, 32)
    with torch.no_grad():
        per_view = model.logits(x)
        out = model(x)
    assert per_view.shape == (2, 3, 5)
    assert torch.allclose(out, per_view.softmax(-1).mean(1))
    assert torch.allclose(out.sum(-1), torch.ones(2))


def test_score_averaging_and_training_output():
    model = tiny(model__num_segments=4, model__average_clips="score")
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), model.logits(x).mean(1))
    assert model.train()(x).shape == (2, 5)


def test_frames_must_be_a_multiple_of_segments():
    with pytest.raises(ValueError, match="num_segments"):
        tiny(model__num_segments=4)(torch.randn(1, 6, 3, 32, 32))


def test_r101_shifts_every_other_block_and_r50_every_block():
    r50 = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False).backbone
    r101 = tsmcli.build_model("tsm_r101_1x1x8_50e_sthv1", pretrained=False).backbone
    assert all(isinstance(b.conv1, ShiftedConv2d) for s in (r50.layer1, r50.layer3) for b in s)
    shifted = [isinstance(b.conv1, ShiftedConv2d) for b in r101.layer3]
    assert shifted == [i % 2 == 0 for i in range(23)]


def test_block_placement_and_no_shift():
    block = tiny(model__shift_place="block").backbone
    assert all(isinstance(b, ShiftedBlock) for b in block.layer2)
    plain = tiny(model__shift=False).backbone
    assert not any(isinstance(m, (ShiftedConv2d, ShiftedBlock)) for m in plain.modules())


def test_non_local_stages():
    model = tsmcli.build_model("tsm_nl_dot_product_r50_1x1x8_50e_k400", pretrained=False)
    marks = [[isinstance(b, BlockWithNonLocal) for b in s] for s in
             (model.backbone.layer1, model.backbone.layer2, model.backbone.layer3, model.backbone.layer4)]
    assert marks == [[0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0, 1, 0], [0, 0, 0]]


def test_mobilenet_shifts_only_residual_blocks_with_expansion():
    model = tsmcli.build_model("tsm_mobilenetv2_dense_1x1x8_100e_k400", pretrained=False,
                               model__width_mult=0.25)
    shifted = [i for i, b in enumerate(model.backbone.features)
               if any(isinstance(m, ShiftedConv2d) for m in b.modules())]
    assert shifted == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]  # blocks with stride 1 and in == out channels
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 8, 3, 32, 32)).shape == (1, 400)


def test_temporal_pool_model_output():
    model = tiny(model__temporal_pool=True)
    assert model.head.num_segments == 4
    with torch.no_grad():
        assert model(torch.randn(2, 8, 3, 32, 32)).shape == (2, 5)


def test_uint8_input_normalised_inside_model():
    cfg_model = tiny("tsm_r50_gpu_normalize_1x1x8_50e_k400", model__num_segments=2)
    plain = tiny(model__num_segments=2)
    plain.load_state_dict(cfg_model.state_dict())
    frames = torch.randint(0, 256, (1, 2, 3, 32, 32), dtype=torch.uint8)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(cfg_model(frames), plain((frames.float() - mean) / std), atol=1e-6)


def test_norm_eval_freezes_batchnorm_statistics():
    model = tiny(model__norm_eval=True, model__num_segments=2).train()
    assert not model.backbone.bn1.training
    assert model.head.training


def test_head_init():
    fc = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False).head.fc
    assert abs(fc.weight.std().item() - 0.001) < 1e-4
    assert fc.bias.abs().max().item() == 0


@pytest.mark.slow
def test_graph_capture_for_export():
    """torch.export captures the whole model (no data-dependent Python control flow), the route to ONNX."""
    model = tiny(model__num_segments=4)
    x = torch.randn(1, 4, 3, 32, 32)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), model(x), atol=1e-6)


@pytest.mark.slow
def test_every_value_the_schema_allows_builds_a_model():
    """The choices are declared once (presets/schema.py); the builders take each of them."""
    from tsmcli.presets.schema import AVERAGE_CLIPS, BACKBONES, NON_LOCAL_MODES, SHIFT_MODES, SHIFT_PLACES

    x = torch.randn(1, 4, 3, 32, 32)
    builds = [{"model__backbone": b, "model__width_mult": 0.25} for b in BACKBONES]
    builds += [{"model__shift_place": p, "model__shift_mode": m} for p in SHIFT_PLACES for m in SHIFT_MODES]
    builds += [{"model__non_local": {"mode": m, "stages": [[0, 0], [1, 0], [0], [0, 0]], "sub_sample": True,
                                     "use_scale": False}} for m in NON_LOCAL_MODES]
    builds += [{"model__average_clips": a} for a in AVERAGE_CLIPS]
    for overrides in builds:
        with torch.no_grad():
            assert tiny(model__num_segments=4, **overrides)(x).shape[-1] == 5, overrides


def test_a_checkpoint_written_before_newer_keys_existed_loads_with_the_base_defaults(tmp_path):
    """Code reads preset keys without restating defaults: a preset missing keys (an older tsm's
    checkpoint) is completed from _base/tsm.yaml when loaded."""
    from tsmcli.checkpoint import save_checkpoint

    model = tiny(model__num_segments=4, model__shift_mode="bidirectional")
    old = {**model.preset, "model": {k: v for k, v in model.preset["model"].items()
                                     if k not in ("shift_mode", "average_clips", "normalize")},
           "data": {k: v for k, v in model.preset["data"].items() if k != "multi_label"}}
    del old["label_map"]
    path = save_checkpoint(tmp_path / "old.pth", model, old)
    loaded = tsmcli.load_model(path)
    assert loaded.preset["model"]["shift_mode"] == "bidirectional" and loaded.average_clips == "prob"
    x = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_a_checkpoint_whose_preset_says_multi_class_loads_as_multi_label(tmp_path, caplog):
    """The preset key's old name (mmaction2's, and tsm's before it was renamed) in a checkpoint, a user's
    file and a --set line: the model is multi-label all the same, and a warning names the new key."""
    from tsmcli.checkpoint import save_checkpoint
    from tsmcli.presets import load_preset

    model = tiny(model__num_segments=4)
    data = {k: v for k, v in model.preset["data"].items() if k != "multi_label"}
    path = save_checkpoint(tmp_path / "old.pth", model, {**model.preset, "data": {**data, "multi_class": True}})
    with caplog.at_level("WARNING", logger="tsmcli"):
        assert tsmcli.load_model(path).multi_label is True
    assert "data.multi_class is now data.multi_label" in caplog.text
    (tmp_path / "mine.yaml").write_text("extends: tsm_r18_1x1x8_toy\ndata:\n  multi_class: true\n")
    assert load_preset(str(tmp_path / "mine.yaml"))["data"]["multi_label"] is True
    assert load_preset("tsm_r18_1x1x8_toy", ["data.multi_class=true"])["data"]["multi_label"] is True
    assert "multi_class" not in load_preset("tsm_r18_1x1x8_toy", ["data.multi_class=true"])["data"]


@pytest.mark.parametrize("depth", [18, 50, 101])
def test_our_resnet_is_torchvisions_weight_for_weight(depth):
    """models/resnet.py builds ResNet itself (importing torchvision costs seconds of every command's
    start): the same keys in the same order, the same random weights from a seed, the same outputs."""
    import torchvision

    from tsmcli.models.resnet import ResNet

    _same_network(lambda: ResNet(depth), getattr(torchvision.models, f"resnet{depth}"))


@pytest.mark.parametrize("width_mult", [1.0, 0.5])
def test_our_mobilenetv2_is_torchvisions_weight_for_weight(width_mult):
    import torchvision

    from tsmcli.models.mobilenetv2 import MobileNetV2

    _same_network(lambda: MobileNetV2(width_mult=width_mult),
                  lambda: torchvision.models.mobilenet_v2(width_mult=width_mult))


def _same_network(ours, theirs):
    torch.manual_seed(5)
    a = ours().eval()
    torch.manual_seed(5)
    b = theirs().eval()
    mine, reference = a.state_dict(), b.state_dict()
    assert list(mine) == list(reference)
    assert all(torch.equal(mine[key], reference[key]) for key in mine)
    clip = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        expected = b(clip)
        assert torch.allclose(a(clip), expected, atol=1e-6 * float(expected.abs().max()), rtol=0)


def test_a_command_that_runs_a_model_does_not_import_torchvision(tmp_path):
    """tsm predict as users run it: torchvision's import (its ops load torch._dynamo) took 2.5 of its
    8 s on a short video (docs/benchmarks.md, "Start-up")."""
    import subprocess
    import sys

    from conftest import SHARED

    model = tsmcli.build_model("tsm_mobilenetv2_dense_1x1x8_100e_k400", pretrained=False, model__num_classes=3)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    script = ("import sys\nfrom tsmcli.cli import main\n"
              f"sys.argv = ['tsm', 'predict', {str(SHARED / 'fixtures/videos/test.mp4')!r}, '--ckpt', "
              f"{str(tmp_path / 'm.pth')!r}]\n"
              "try:\n    main()\nfinally:\n    print('torchvision loaded:', 'torchvision' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "torchvision loaded: False"
