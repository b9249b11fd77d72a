"""Spatial transforms on a clip: a uint8 tensor (N, 3, H, W), N = views x frames, view-major.

The same crop/flip/augmentation applies to every frame of a clip; randomness comes from the numpy
Generator handed in, so an item's (seed, epoch, index) fixes it. Geometry follows mmaction2 0.x.
"""
import math
import platform

import numpy as np
import torch

from ..errors import UserError


class Clip:
    """What flows through the transforms: frames, label and what was done to them."""

    def __init__(self, imgs, label, meta):
        self.imgs, self.label, self.meta = imgs, label, meta

    @property
    def hw(self):
        return tuple(self.imgs.shape[-2:])


def _pair(size):
    return (size, size) if isinstance(size, int) else tuple(size)


class Resize:
    """scale (w, h); with keep_ratio, (-1, S) or (S, -1) means short side S, as mmcv.rescale_size does."""

    def __init__(self, scale, keep_ratio=True, interpolation="bilinear"):
        self.scale, self.keep_ratio, self.interpolation = tuple(scale), keep_ratio, interpolation

    def target_size(self, h, w):
        if not self.keep_ratio:
            return int(self.scale[1]), int(self.scale[0])
        long_edge, short_edge = max(self.scale), min(self.scale)
        if short_edge == -1:
            long_edge, short_edge = math.inf, long_edge
        factor = min(long_edge / max(h, w), short_edge / min(h, w))
        return int(h * factor + 0.5), int(w * factor + 0.5)

    def __call__(self, clip, rng):
        size = self.target_size(*clip.hw)
        if size == clip.hw:
            return clip
        clip.imgs = resize(clip.imgs, size, self.interpolation)
        return clip


def resize(imgs, size, mode="bilinear"):
    """(N, C, H, W) frames, uint8 or float, to `size` (h, w), without antialiasing, as torchvision's
    transforms.v2.functional.resize(antialias=False) gives them (tests/test_transforms.py compares);
    "area": pixel-area averaging, as cv2.INTER_AREA (exact at integer factors)."""
    dtype = imgs.dtype
    if mode == "area":
        out = torch.nn.functional.interpolate(imgs.float(), size=list(size), mode="area")
        return out.round_().clamp_(0, 255).to(dtype) if dtype == torch.uint8 else out
    # PyTorch resizes uint8 natively (and rounds as a float resize would not) for bicubic, and for bilinear
    # where its vectorised kernel exists; elsewhere the frames go through float32 and are rounded back
    native = dtype.is_floating_point or mode == "nearest" or (imgs.device.type == "cpu" and (
        mode == "bicubic" or torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")
        or platform.machine() in ("aarch64", "arm64")))
    out = torch.nn.functional.interpolate(imgs if native else imgs.float(), size=list(size), mode=mode,
                                          align_corners=None if mode == "nearest" else False)
    if native:
        return out
    if mode == "bicubic":
        out = out.clamp_(0, 255)
    return out.round_().to(dtype)


def _crop(clip, x, y, w, h):
    clip.imgs = clip.imgs[..., y:y + h, x:x + w]
    clip.meta.setdefault("crops", []).append((int(x), int(y), int(w), int(h)))
    return clip


class MultiScaleCrop:
    """TSN's corner cropping: a crop side from scales x short side, aspect limited by max_wh_scale_gap,
    at one of 5 or 13 fixed positions (or anywhere with random_crop)."""

    def __init__(self, input_size, scales=(1,), max_wh_scale_gap=1, random_crop=False, num_fixed_crops=5):
        self.input_size = _pair(input_size)
        self.scales, self.max_wh_scale_gap = tuple(scales), max_wh_scale_gap
        self.random_crop, self.num_fixed_crops = random_crop, num_fixed_crops

    def __call__(self, clip, rng):
        img_h, img_w = clip.hw
        sizes = [int(min(img_h, img_w) * s) for s in self.scales]
        candidates = [[w, h] for i, h in enumerate(sizes) for j, w in enumerate(sizes)
                      if abs(i - j) <= self.max_wh_scale_gap]
        crop = candidates[rng.integers(len(candidates))]
        for i in range(2):
            if abs(crop[i] - self.input_size[i]) < 3:
                crop[i] = self.input_size[i]
        crop_w, crop_h = crop
        if self.random_crop:
            x, y = rng.integers(0, img_w - crop_w + 1), rng.integers(0, img_h - crop_h + 1)
        else:
            ws, hs = (img_w - crop_w) // 4, (img_h - crop_h) // 4
            offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
            if self.num_fixed_crops == 13:
                offsets += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                            (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
            x, y = offsets[rng.integers(len(offsets))]
        return _crop(clip, x, y, crop_w, crop_h)


class RandomResizedCrop:
    """Inception-style crop box (area and log-uniform aspect ratio, 10 tries, else the centre square)."""

    def __init__(self, area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3)):
        self.area_range, self.aspect_ratio_range = tuple(area_range), tuple(aspect_ratio_range)

    def __call__(self, clip, rng):
        img_h, img_w = clip.hw
        ratios = np.exp(rng.uniform(np.log(self.aspect_ratio_range[0]), np.log(self.aspect_ratio_range[1]),
                                    size=10))
        areas = rng.uniform(*self.area_range, size=10) * img_h * img_w
        widths = np.round(np.sqrt(areas * ratios)).astype(np.int64)
        heights = np.round(np.sqrt(areas / ratios)).astype(np.int64)
        for w, h in zip(widths, heights):
            if h <= img_h and w <= img_w:
                return _crop(clip, rng.integers(0, img_w - w + 1), rng.integers(0, img_h - h + 1), w, h)
        side = min(img_h, img_w)
        return _crop(clip, (img_w - side) // 2, (img_h - side) // 2, side, side)


class CenterCrop:
    def __init__(self, crop_size):
        self.crop_w, self.crop_h = _pair(crop_size)

    def __call__(self, clip, rng):
        img_h, img_w = clip.hw
        return _crop(clip, (img_w - self.crop_w) // 2, (img_h - self.crop_h) // 2, self.crop_w, self.crop_h)


class ThreeCrop:
    """Three crops along the long side (left/top, right/bottom, middle); each becomes a view."""

    def __init__(self, crop_size):
        self.crop_w, self.crop_h = _pair(crop_size)

    def __call__(self, clip, rng):
        img_h, img_w = clip.hw
        cw, ch = min(self.crop_w, img_w), min(self.crop_h, img_h)
        if ch != img_h and cw != img_w:  # mmaction2 asserts this: the crops slide along one side only
            raise UserError(f"ThreeCrop {self.crop_w}x{self.crop_h} needs frames whose width or height equals "
                            f"the crop; got {img_w}x{img_h}: resize the short side to the crop size first")
        if ch == img_h:
            step = (img_w - cw) // 2
            offsets = [(0, 0), (2 * step, 0), (step, 0)]
        else:
            step = (img_h - ch) // 2
            offsets = [(0, 0), (0, 2 * step), (0, step)]
        clip.imgs = torch.cat([clip.imgs[..., y:y + ch, x:x + cw] for x, y in offsets])
        clip.meta["views"] = clip.meta.get("views", 1) * 3
        return clip


class TenCrop:
    """Four corners and the centre, each also flipped horizontally: ten views."""

    def __init__(self, crop_size):
        self.crop_w, self.crop_h = _pair(crop_size)

    def __call__(self, clip, rng):
        img_h, img_w = clip.hw
        cw, ch = self.crop_w, self.crop_h
        ws, hs = (img_w - cw) // 4, (img_h - ch) // 4
        crops = []
        for x, y in [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]:
            crop = clip.imgs[..., y:y + ch, x:x + cw]
            crops += [crop, crop.flip(-1)]
        clip.imgs = torch.cat(crops)
        clip.meta["views"] = clip.meta.get("views", 1) * 10
        return clip


class Flip:
    """Flip the whole clip with probability flip_ratio; flip_label_map swaps direction-bearing classes
    (e.g. 'pushing left to right' <-> 'pushing right to left')."""

    def __init__(self, flip_ratio=0.5, direction="horizontal", flip_label_map=None):
        self.flip_ratio, self.direction = flip_ratio, direction
        self.flip_label_map = {int(k): int(v) for k, v in (flip_label_map or {}).items()}

    def __call__(self, clip, rng):
        flip = rng.random() < self.flip_ratio
        clip.meta["flip"] = bool(flip)
        if flip:
            clip.imgs = clip.imgs.flip(-1 if self.direction == "horizontal" else -2)
            if self.flip_label_map and isinstance(clip.label, int):
                clip.label = self.flip_label_map.get(clip.label, clip.label)
        return clip


class Normalize:
    """uint8 -> contiguous float32 (x - mean) * (1 / std), mean and std in 0..255 units (as mmcv does)."""

    def __init__(self, mean, std, to_bgr=False):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.inv_std = 1.0 / torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1).float()
        self.to_bgr = to_bgr

    def __call__(self, clip, rng):
        imgs = clip.imgs.flip(1) if self.to_bgr else clip.imgs
        out = torch.empty(imgs.shape, dtype=torch.float32)  # one pass: layout, dtype, then in place
        out.copy_(imgs)
        clip.imgs = out.sub_(self.mean).mul_(self.inv_std)
        return clip


TRANSFORMS = {"Resize": Resize, "MultiScaleCrop": MultiScaleCrop, "RandomResizedCrop": RandomResizedCrop,
              "CenterCrop": CenterCrop, "ThreeCrop": ThreeCrop, "TenCrop": TenCrop, "Flip": Flip,
              "Normalize": Normalize}
