import numpy as np
import pytest
import torch

from tsmcli.data.augment import AUGMENTATIONS, blend_batch
from tsmcli.data.transforms import (
    CenterCrop,
    Clip,
    Flip,
    MultiScaleCrop,
    Normalize,
    RandomResizedCrop,
    Resize,
    TenCrop,
    ThreeCrop,
)


def clip_of(frames=4, h=64, w=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    # every frame shares one random image plus a per-frame offset, so spatial ops must act identically
    base = torch.randint(0, 200, (1, 3, h, w), generator=g, dtype=torch.uint8)
    return Clip(base + torch.arange(frames, dtype=torch.uint8).view(-1, 1, 1, 1) * 10, 3, {})


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("scale, keep_ratio, hw, expected", [
    ((-1, 256), True, (240, 320), (256, 341)),     # short side 256, long side rounded like mmcv
    ((-1, 256), True, (256, 340), (256, 340)),
    ((340, 256), False, (100, 100), (256, 340)),   # fixed (w, h)
    ((-1, 100), True, (480, 854), (100, 178)),
])
def test_resize_sizes(scale, keep_ratio, hw, expected):
    assert Resize(scale, keep_ratio).target_size(*hw) == expected


def test_multiscale_crop_positions_and_sizes():
    crop = MultiScaleCrop(224, scales=(1, 0.875, 0.75, 0.66), max_wh_scale_gap=1, num_fixed_crops=13)
    seen_sizes, seen_offsets = set(), set()
    for seed in range(400):
        c = crop(Clip(torch.zeros(2, 3, 256, 340, dtype=torch.uint8), 0, {}), rng(seed))
        x, y, w, h = c.meta["crops"][0]
        seen_sizes.add((w, h))
        seen_offsets.add((x, y, w, h))
        assert c.imgs.shape[-2:] == (h, w) and x + w <= 340 and y + h <= 256
    sizes = [256, 224, 192, 168]  # int(256 * s), with 224 snapped from within 3 pixels
    assert seen_sizes == {(sizes[j], sizes[i]) for i in range(4) for j in range(4) if abs(i - j) <= 1}
    assert len({(x, y) for x, y, w, h in seen_offsets if (w, h) == (224, 224)}) == 13


def test_random_resized_crop_bounds_and_fallback():
    for seed in range(50):
        c = RandomResizedCrop()(clip_of(h=60, w=90), rng(seed))
        x, y, w, h = c.meta["crops"][0]
        assert 0 <= x and x + w <= 90 and 0 <= y and y + h <= 60
    c = RandomResizedCrop(area_range=(1.0, 1.0), aspect_ratio_range=(3.0, 3.0))(clip_of(h=60, w=90), rng())
    assert c.meta["crops"][0] == (15, 0, 60, 60)  # no box fits: the centre square


def test_center_three_and_ten_crop_layout():
    c = clip_of(frames=2, h=64, w=80)
    assert CenterCrop(48)(Clip(c.imgs, 0, {}), rng()).imgs.equal(c.imgs[..., 8:56, 16:64])
    three = ThreeCrop(64)(Clip(c.imgs, 0, {}), rng())
    assert three.imgs.shape == (6, 3, 64, 64) and three.meta["views"] == 3
    assert three.imgs[:2].equal(c.imgs[..., :, 0:64]) and three.imgs[2:4].equal(c.imgs[..., :, 16:80])
    assert three.imgs[4:].equal(c.imgs[..., :, 8:72])  # left, right, middle; crop-major
    ten = TenCrop(32)(Clip(c.imgs, 0, {}), rng())
    assert ten.imgs.shape == (20, 3, 32, 32) and ten.meta["views"] == 10
    assert ten.imgs[2:4].equal(ten.imgs[0:2].flip(-1))  # each crop followed by its mirror


def test_flip_applies_to_all_frames_and_maps_labels():
    flips = 0
    for seed in range(100):
        c = clip_of()
        out = Flip(0.5, flip_label_map={3: 4, 4: 3})(Clip(c.imgs.clone(), 3, {}), rng(seed))
        if out.meta["flip"]:
            flips += 1
            assert out.imgs.equal(c.imgs.flip(-1)) and out.label == 4
        else:
            assert out.imgs.equal(c.imgs) and out.label == 3
    assert 30 < flips < 70


def test_normalize():
    c = Normalize([10.0, 20.0, 30.0], [2.0, 4.0, 5.0])(Clip(torch.full((1, 3, 2, 2), 50, dtype=torch.uint8), 0, {}), rng())
    assert c.imgs[0, :, 0, 0].tolist() == [20.0, 7.5, 4.0]


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentations_same_for_every_frame_different_across_clips_reproducible(name):
    aug = AUGMENTATIONS[name]()
    frame = torch.randint(0, 256, (1, 3, 48, 48), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    clip = frame.repeat(4, 1, 1, 1)
    outs = [aug(Clip(clip.clone(), 0, {}), rng(seed)).imgs for seed in range(12)]
    for out in outs:
        assert out.dtype == torch.uint8 and out.shape == clip.shape
        assert all(out[t].equal(out[0]) for t in range(4))  # identical frames stay identical
    assert len({out.numpy().tobytes() for out in outs}) > 6  # clips differ
    again = aug(Clip(clip.clone(), 0, {}), rng(3)).imgs
    assert again.equal(outs[3])


def test_mixup_and_cutmix_soft_labels():
    imgs = torch.stack([torch.full((2, 3, 8, 8), float(i)) for i in range(4)])
    labels = torch.tensor([0, 1, 2, 3])
    mixed, soft = blend_batch(imgs, labels, 5, "mixup", 0.2, rng(0))
    assert torch.allclose(soft.sum(1), torch.ones(4))
    lam = soft[torch.arange(4), labels]  # each video keeps lam of its own label...
    partners = [int(row.argmax()) if own < 1 else b for b, (row, own) in
                enumerate(zip(soft.scatter(1, labels[:, None], 0.0), lam))]  # ...and gives 1 - lam to its partner's
    assert len(set(lam.tolist()) - {1.0}) == 1 and sorted(partners) == [0, 1, 2, 3]
    for b, partner in enumerate(partners):  # lam * a + (1 - lam) * b, pixel by pixel (video i is all i)
        expected = lam[b] * imgs[b] + (1 - lam[b]) * imgs[partner]
        assert torch.allclose(mixed[b], expected, atol=1e-6), b
    mixed, soft = blend_batch(imgs, labels, 5, "cutmix", 0.2, rng(1))
    own = soft[torch.arange(4), labels]
    changed = (mixed != imgs).flatten(1).float().mean(1)  # fraction of pixels pasted from the partner
    assert torch.allclose(own, 1 - changed, atol=1e-6)


def test_flip_label_maps_swap_left_and_right_in_our_class_order():
    import tsmcli
    from tsmcli.labels import label_map

    checked = 0
    for name in ("tsm_r50_flip_1x1x8_50e_sthv1", "tsm_r50_flip_randaugment_1x1x8_50e_sthv1",
                 "tsm_r50_1x1x8_50e_jester"):
        preset = tsmcli.load_preset(name)
        names = label_map(preset["dataset"])
        flip = next(s for s in preset["data"]["train"]["pipeline"] if s["type"] == "Flip")
        for a, b in flip["flip_label_map"].items():
            mirrored = names[a].lower().replace("left", "<>").replace("right", "left").replace("<>", "right")
            assert mirrored == names[b].lower(), (name, names[a], names[b])
            checked += 1
    assert checked == 16


def test_three_crop_refuses_a_frame_it_cannot_slide_along():
    from tsmcli.data.transforms import Clip, ThreeCrop

    clip = Clip(torch.zeros(2, 3, 300, 400, dtype=torch.uint8), 0, {})
    from tsmcli.errors import UserError

    with pytest.raises(UserError, match="ThreeCrop 256x256 needs frames whose width or height equals"):
        ThreeCrop(256)(clip, None)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("hw", [(37, 50), (96, 128)])
@pytest.mark.parametrize("vector_unit", ["this CPU's", "none"])
@pytest.mark.parametrize("frames", [4, 1])
def test_resize_gives_torchvisions_pixels(mode, dtype, hw, vector_unit, frames, monkeypatch):
    """data/transforms.py resizes without torchvision (its import costs seconds of start-up); mmaction2
    parity was measured on torchvision's resize without antialiasing, which this must equal exactly, on
    CPUs with PyTorch's vectorised uint8 kernels and on those without (where both round a float resize)."""
    import platform

    import torchvision.transforms.v2.functional as F
    from torchvision.transforms import InterpolationMode

    if vector_unit == "none":
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
        monkeypatch.setattr(platform, "machine", lambda: "x86_64")

    # (N, H, W, 3) storage seen as (N, 3, H, W), as the readers give frames (and a streamed one, N = 1)
    imgs = clip_of(frames, h=64, w=80).imgs.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).to(dtype)
    ours = Resize((hw[1], hw[0]), keep_ratio=False, interpolation=mode)(Clip(imgs.clone(), 0, {}), None).imgs
    theirs = F.resize(imgs, list(hw), interpolation=InterpolationMode(mode), antialias=False)
    assert ours.dtype == theirs.dtype and torch.equal(ours, theirs)


def test_area_interpolation_averages_pixel_areas():
    from tsmcli.data.transforms import Clip, Resize

    imgs = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).expand(1, 3, 4, 4).contiguous()
    out = Resize((2, 2), keep_ratio=False, interpolation="area")(Clip(imgs, 0, {}), None).imgs
    assert out[0, 0].tolist() == [[2, 4], [10, 12]]  # means of 2x2 blocks (2.5 -> 2, 4.5 -> 4 round half even)


def test_imgaug_applies_two_ops_in_list_order_with_imgaugs_fills():
    from tsmcli.data.augment import Imgaug

    aug = Imgaug()
    translate_x, cutout = aug.ops[2], aug.ops[14]
    calls = []
    aug.ops = [lambda x, r, i=i: calls.append(i) or x for i in range(15)]
    for seed in range(30):
        calls.clear()
        aug(Clip(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0, {}), rng(seed))
        assert len(calls) == 2 and calls[0] < calls[1]  # imgaug's SomeOf keeps its children's order
    frames = torch.full((2, 3, 20, 20), 200, dtype=torch.uint8)
    shifted = translate_x(frames, rng(0))
    assert shifted.min() == 0 and set(shifted.unique().tolist()) <= {0, 200}  # imgaug's cval=0
    assert set(cutout(frames, rng(0)).unique().tolist()) == {128, 200}  # imgaug's Cutout cval=128
