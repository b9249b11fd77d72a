"""Clip-level augmentations for the Something-Something presets, on torchvision's functional ops.

Every operation is applied identically to all frames of a clip (the frames are the leading dimension
of one uint8 tensor); all random choices come from the item's numpy Generator.

- Imgaug: mmaction2's `Imgaug(transforms='default')`, a RandAugment of 2 distinct ops out of 15 at
  magnitude 9/10 (shear 15.5 deg, translate 18 %, rotate 27 deg, posterize 3 bits, solarize 230,
  colour/contrast/brightness/sharpness x1.72, autocontrast, equalize, invert, cutout 18 %). As imgaug's
  SomeOf does, the two ops apply in list order, shear/translate/rotate fill with black (imgaug's cval 0)
  and cutout with grey (imgaug's Cutout cval 128). One difference, on purpose: mmaction2 draws each op's
  sign once when the pipeline is built (`random.choice` in its default_transforms), so a whole run
  shears one way only; we draw it per clip, as RandAugment intends.
- PytorchVideoRandAugment / PytorchVideoAugMix: pytorchvideo's RandAugment (gaussian magnitude around
  9, 2 ops each applied with p=0.5) and AugMix (3 chains of 1-3 ops at magnitude up to 3, Dirichlet and
  Beta mixing), with pytorchvideo's op lists and ranges; mmaction2 calls them with their defaults.
"""
import math

import numpy as np
import torch

from ..lazy import OnFirstUse

# imported at first use: the pipeline imports this file for every preset, only these presets' training needs them
F = OnFirstUse("torchvision.transforms.v2.functional")
TRANSFORMS = OnFirstUse("torchvision.transforms")

GREY = [128.0, 128.0, 128.0]  # pytorchvideo's fill (0.5 of the range)
BLACK = [0.0, 0.0, 0.0]  # imgaug's affine fill (cval=0)


def _affine(imgs, angle=0.0, translate=(0, 0), shear=(0.0, 0.0), fill=GREY):
    return F.affine(imgs, angle=angle, translate=list(translate), scale=1.0, shear=list(shear),
                    interpolation=TRANSFORMS.InterpolationMode.BILINEAR, fill=fill)


def shear_x(imgs, degrees, fill=GREY):
    return _affine(imgs, shear=(degrees, 0.0), fill=fill)


def shear_y(imgs, degrees, fill=GREY):
    return _affine(imgs, shear=(0.0, degrees), fill=fill)


def translate_x(imgs, fraction, fill=GREY):
    return _affine(imgs, translate=(int(round(fraction * imgs.shape[-1])), 0), fill=fill)


def translate_y(imgs, fraction, fill=GREY):
    return _affine(imgs, translate=(0, int(round(fraction * imgs.shape[-2]))), fill=fill)


def rotate(imgs, degrees, fill=GREY):
    return F.rotate(imgs, degrees, interpolation=TRANSFORMS.InterpolationMode.BILINEAR, fill=fill)


def cutout(imgs, fraction, rng):
    h, w = imgs.shape[-2:]
    side = max(1, int(round(fraction * min(h, w))))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = imgs.clone()
    out[..., y:y + side, x:x + side] = 128
    return out


def _signed(rng, value):
    return value if rng.random() < 0.5 else -value


# --- mmaction2's Imgaug 'default' ------------------------------------------------------------------
_LEVEL = 9 / 10


def _imgaug_ops():
    factor = 1.8 * _LEVEL + 0.1
    return [
        lambda x, r: shear_x(x, _signed(r, 17.19 * _LEVEL), BLACK),
        lambda x, r: shear_y(x, _signed(r, 17.19 * _LEVEL), BLACK),
        lambda x, r: translate_x(x, _signed(r, 0.2 * _LEVEL), BLACK),
        lambda x, r: translate_y(x, _signed(r, 0.2 * _LEVEL), BLACK),
        lambda x, r: rotate(x, _signed(r, 30 * _LEVEL), BLACK),
        lambda x, r: F.posterize(x, max(1, int(4 * _LEVEL))),
        lambda x, r: F.solarize(x, 256 * _LEVEL),
        lambda x, r: F.adjust_saturation(x, factor),
        lambda x, r: F.adjust_contrast(x, factor),
        lambda x, r: F.adjust_brightness(x, factor),
        lambda x, r: F.adjust_sharpness(x, factor),
        lambda x, r: F.autocontrast(x),
        lambda x, r: F.equalize(x),
        lambda x, r: F.invert(x),
        lambda x, r: cutout(x, 0.2 * _LEVEL, r),
    ]


class Imgaug:
    def __init__(self, transforms="default"):
        if transforms != "default":
            raise ValueError("only Imgaug(transforms='default') is supported")
        self.ops = _imgaug_ops()

    def __call__(self, clip, rng):
        for i in sorted(rng.choice(len(self.ops), size=2, replace=False)):  # SomeOf keeps list order
            clip.imgs = self.ops[i](clip.imgs, rng)
        return clip


# --- pytorchvideo's RandAugment and AugMix ------------------------------------------------------------
def _ptv_op(name, level, rng, ranges):
    """Apply one pytorchvideo-style op at `level` in [0, 10]."""
    t = level / 10.0
    if name in ("AutoContrast", "Equalize", "Invert"):
        return {"AutoContrast": F.autocontrast, "Equalize": F.equalize, "Invert": F.invert}[name]
    low, high = ranges[name]
    if name in ("AdjustBrightness", "AdjustContrast", "AdjustSaturation", "AdjustSharpness"):
        fn = {"AdjustBrightness": F.adjust_brightness, "AdjustContrast": F.adjust_contrast,
              "AdjustSaturation": F.adjust_saturation, "AdjustSharpness": F.adjust_sharpness}[name]
        if low == 1:  # RandAugment: 1 +/- t * 0.9
            factor = 1 + _signed(rng, t * high)
        else:  # AugMix: increasing from low to high
            factor = low + t * (high - low)
        return lambda x: fn(x, max(factor, 0.0))
    if name == "Rotate":
        return lambda x: rotate(x, _signed(rng, t * high))
    if name in ("ShearX", "ShearY"):
        degrees = math.degrees(math.atan(_signed(rng, t * high)))
        return lambda x: (shear_x if name == "ShearX" else shear_y)(x, degrees)
    if name in ("TranslateX", "TranslateY"):
        fraction = _signed(rng, t * high)
        return lambda x: (translate_x if name == "TranslateX" else translate_y)(x, fraction)
    if name == "Posterize":
        bits = max(1, int(round(8 - t * high)))
        return lambda x: F.posterize(x, bits)
    if name == "Solarize":
        threshold = 255.0 * (1.0 - t * high)
        return lambda x: F.solarize(x, max(threshold, 0.0))
    raise KeyError(name)


_RANDAUG_RANGES = {"AdjustBrightness": (1, 0.9), "AdjustContrast": (1, 0.9), "AdjustSaturation": (1, 0.9),
                   "AdjustSharpness": (1, 0.9), "AutoContrast": None, "Equalize": None, "Invert": None,
                   "Rotate": (0, 30), "Posterize": (0, 4), "Solarize": (0, 1), "ShearX": (0, 0.3),
                   "ShearY": (0, 0.3), "TranslateX": (0, 0.45), "TranslateY": (0, 0.45)}
_AUGMIX_RANGES = {"AutoContrast": None, "Equalize": None, "Rotate": (0, 30), "Posterize": (0, 4),
                  "Solarize": (0, 1), "ShearX": (0, 0.3), "ShearY": (0, 0.3), "TranslateX": (0, 1 / 3),
                  "TranslateY": (0, 1 / 3), "AdjustSaturation": (0.1, 1.8), "AdjustContrast": (0.1, 1.8),
                  "AdjustBrightness": (0.1, 1.8), "AdjustSharpness": (0.1, 1.8)}


class PytorchVideoRandAugment:
    def __init__(self, magnitude=9, num_layers=2, prob=0.5):
        self.magnitude, self.num_layers, self.prob = magnitude, num_layers, prob
        self.names = list(_RANDAUG_RANGES)

    def __call__(self, clip, rng):
        for i in rng.choice(len(self.names), size=self.num_layers, replace=False):
            if rng.random() < self.prob:
                level = float(np.clip(rng.normal(self.magnitude, 0.5), 0, 10))
                clip.imgs = _ptv_op(self.names[i], level, rng, _RANDAUG_RANGES)(clip.imgs)
        return clip


class PytorchVideoAugMix:
    def __init__(self, magnitude=3, alpha=1.0, width=3, depth=-1):
        self.magnitude, self.alpha, self.width, self.depth = magnitude, alpha, width, depth
        self.names = list(_AUGMIX_RANGES)

    def __call__(self, clip, rng):
        original = clip.imgs
        weights = rng.dirichlet([self.alpha] * self.width)
        m = rng.beta(self.alpha, self.alpha)
        mixed = torch.zeros(original.shape, dtype=torch.float32)
        for weight in weights:
            chain = original
            depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
            for i in rng.integers(len(self.names), size=depth):
                level = float(rng.uniform(0.1, self.magnitude))
                chain = _ptv_op(self.names[i], level, rng, _AUGMIX_RANGES)(chain)
            mixed += float(weight) * chain
        clip.imgs = (m * original + (1 - m) * mixed).to(torch.uint8)
        return clip


AUGMENTATIONS = {"Imgaug": Imgaug, "PytorchVideoRandAugment": PytorchVideoRandAugment,
                 "PytorchVideoAugMix": PytorchVideoAugMix}


def blend_batch(imgs, labels, num_classes, kind, alpha, rng=None):
    """Mixup or CutMix on a training batch: imgs (B, ..., H, W), integer labels (B,) or soft (B, K).

    Returns the mixed images and soft labels (B, K); lambda ~ Beta(alpha, alpha), partner = a random
    permutation of the batch; CutMix pastes a box of area (1 - lambda) and sets lambda to the pasted area.
    """
    rng = rng if rng is not None else np.random.default_rng()
    if labels.ndim == 1:
        labels = torch.nn.functional.one_hot(labels, num_classes).float()
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(imgs.shape[0]))
    if kind == "mixup":
        mixed = lam * imgs + (1 - lam) * imgs[perm]
    elif kind == "cutmix":
        h, w = imgs.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        mixed = imgs.clone()
        mixed[..., y1:y2, x1:x2] = imgs[..., y1:y2, x1:x2][perm]  # only the box, not the whole batch
        lam = 1 - (y2 - y1) * (x2 - x1) / (h * w)
    else:
        raise ValueError(f"blending must be mixup or cutmix, got {kind!r}")
    return mixed, lam * labels + (1 - lam) * labels[perm]
