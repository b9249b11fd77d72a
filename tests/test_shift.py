import pytest
import torch

from tsmcli.models.shift import ShiftedConv2d, temporal_max_pool, temporal_shift


def reference_shift(x, num_segments, shift_div):
    """Frame by frame, channel block by channel block: the definition, with no cleverness."""
    nt, c, h, w = x.shape
    fold = c // shift_div
    out = torch.zeros_like(x)
    for clip in range(nt // num_segments):
        for t in range(num_segments):
            i = clip * num_segments + t
            if t + 1 < num_segments:
                out[i, :fold] = x[i + 1, :fold]
            if t - 1 >= 0:
                out[i, fold:2 * fold] = x[i - 1, fold:2 * fold]
            out[i, 2 * fold:] = x[i, 2 * fold:]
    return out


@pytest.mark.parametrize("n, t, c, h, w, div", [
    (2, 8, 64, 5, 7, 8), (1, 3, 17, 3, 3, 8), (3, 5, 9, 1, 2, 4), (1, 1, 16, 2, 2, 8), (2, 4, 7, 3, 3, 8),
])
def test_shift_matches_reference_forward_and_backward(n, t, c, h, w, div):
    torch.manual_seed(0)
    x = torch.randn(n * t, c, h, w, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    out, ref = temporal_shift(x, t, div), reference_shift(x_ref, t, div)
    assert torch.equal(out, ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    assert torch.equal(x.grad, x_ref.grad)


def test_shift_directions():
    x = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 8, 1, 1).contiguous()  # frame t holds value t
    out = temporal_shift(x, 3, 8)[:, :, 0, 0]
    assert out[:, 0].tolist() == [1, 2, 0]  # first fold: from frame t+1, zero at the end
    assert out[:, 1].tolist() == [0, 0, 1]  # second fold: from frame t-1, zero at the start
    assert out[:, 2].tolist() == [0, 1, 2]


def test_shift_preserves_channels_last():
    x = torch.randn(8, 16, 4, 4).to(memory_format=torch.channels_last)
    out = temporal_shift(x, 8, 8)
    assert torch.equal(out, reference_shift(x.contiguous(), 8, 8))


def test_shifted_conv_keeps_parameters_and_keys():
    conv = torch.nn.Conv2d(16, 4, 3, padding=1, bias=False)
    shifted = ShiftedConv2d(conv, num_segments=4, shift_div=8)
    assert shifted.weight is conv.weight
    assert list(shifted.state_dict()) == ["weight"]
    x = torch.randn(8, 16, 5, 5)
    assert torch.allclose(shifted(x), conv(reference_shift(x, 4, 8)))


def test_temporal_pool_halves_segments_with_max():
    x = torch.arange(8.0).view(8, 1, 1, 1)  # one clip, frames 0..7
    out = temporal_max_pool(x, 8)
    assert out.flatten().tolist() == [1, 3, 5, 7]  # window 3, stride 2, padding 1


@pytest.mark.parametrize("overrides, channels_last", [
    ({"model__depth": 50}, False),
    ({"model__depth": 50}, True),
    ({"model__depth": 18}, False),
    ({"model__depth": 50, "model__temporal_pool": True}, False),
    ({"model__depth": 50, "model__non_local": {"mode": "dot_product", "sub_sample": True, "use_scale": False,
                                               "stages": [[0, 0, 0], [1, 0, 1, 0], [0] * 6, [0, 0, 0]]}}, False),
    ({"model__depth": 101}, False),  # every other block shifted
])
def test_fused_inference_path_equals_the_module_path(overrides, channels_last):
    """Without autograd ResNetTSM writes each shift together with the previous block's output
    (tsmcli/models/shift_fusion.py); with fuse_shift off, or with autograd, it runs the modules one by
    one. Same numbers, bit for bit."""
    import tsmcli

    torch.manual_seed(0)
    model = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False, **overrides).backbone.eval()
    for m in model.modules():  # non-trivial BN statistics, so that each channel group matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
    from tsmcli.models.shift_fusion import _fusable

    assert any(_fusable(block) for stage in model.stages()[1:] for block in stage)  # the fused path applies
    x = torch.randn(16, 3, 64, 64)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    with torch.no_grad():
        fused = model(x)
        model.fuse_shift = False
        unfused = model(x)
    assert torch.equal(fused, unfused)
    if overrides == {"model__depth": 18}:
        model.fuse_shift = True
        assert torch.equal(fused, model(x).detach())  # autograd on: the module path


def test_forward_hooks_on_a_shifted_conv_fire_at_inference():
    import tsmcli

    model = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False, model__depth=18).eval()
    seen = []
    handle = model.backbone.layer2[1].conv1.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    x = torch.randn(1, 8, 3, 64, 64)
    with torch.no_grad():
        hooked = model(x)
    handle.remove()
    with torch.no_grad():
        assert torch.equal(hooked, model(x))
    assert seen == [torch.Size([8, 128, 8, 8])]
