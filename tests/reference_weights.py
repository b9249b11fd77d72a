"""Deterministic, platform-independent tensors for parity fixtures.

The mmaction2 reference generator (tools/mmaction_reference/generate.py) and our tests fill the same
state dict from the same key names with these values, so a fixture only needs key names and the
reference outputs, never hundreds of megabytes of weights. Integer hashing keeps the values identical
on every machine and torch version (no RNG involved).
"""
import json
import math
import zlib
from pathlib import Path

import torch

_MOD = 1 << 32


def hashed_uniform(shape, seed, low=-1.0, high=1.0):
    n = math.prod(shape)
    h = (torch.arange(n, dtype=torch.int64) * 2654435761 + (seed % _MOD) * 40503 + 12345) % _MOD
    h = ((h ^ (h >> 15)) * 2246822519) % _MOD
    h = ((h ^ (h >> 13)) * 3266489917) % _MOD
    h = h ^ (h >> 16)
    u = h.to(torch.float64) / _MOD
    return (low + (high - low) * u).to(torch.float32).reshape(shape)


NORM_SCALE = (0.5, 1.0)


def fill_value(key, shape, norm_scale=NORM_SCALE, non_local_scale=0.1):
    """The tensor a parameter or buffer named `key` gets; ranges keep deep random nets well-conditioned.
    norm_scale: the range of norm-layer scales. The default shrinks the signal a little at every norm
    layer, which keeps ResNets finite; MobileNetV2 (no identity path in most blocks) then ends up with an
    output that hardly depends on its input, so its fixtures use (1.0, 1.5). non_local_scale: the
    non-local blocks' convolutions relative to the others' (1.0: as input-sensitive as a trained model's)."""
    seed = zlib.crc32(key.encode())
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        return hashed_uniform(shape, seed, 0.5, 1.5)
    if key.endswith("running_mean") or key.endswith("bias"):
        return hashed_uniform(shape, seed, -0.1, 0.1)
    if len(shape) == 1:  # norm-layer scale
        return hashed_uniform(shape, seed, *norm_scale)
    fan_in = math.prod(shape[1:])
    bound = math.sqrt(3.0 / fan_in)
    if "non_local" in key:  # the dot-product mode is cubic in its input: 0.1 keeps it from overflowing
        bound *= non_local_scale
    return hashed_uniform(shape, seed, -bound, bound)


def fill_state_dict(key_shapes, norm_scale=NORM_SCALE, non_local_scale=0.1):
    """key_shapes: iterable of (key, shape) -> state dict of deterministic tensors."""
    return {key: fill_value(key, tuple(shape), tuple(norm_scale), non_local_scale) for key, shape in key_shapes}


def input_clip(shape, seed=7):
    return hashed_uniform(tuple(shape), seed, -2.0, 2.0)


def to_mmaction_keys(state_dict):
    """Our ResNet-TSM keys -> mmaction2 0.x's (the inverse of tsmcli.convert, for blockres shift)."""
    import re

    out = {}
    for key, value in state_dict.items():
        k = key.replace("head.fc.", "cls_head.fc_cls.")
        k = re.sub(r"^backbone\.conv1\.", "backbone.conv1.conv.", k)
        k = re.sub(r"^backbone\.bn1\.", "backbone.conv1.bn.", k)
        k = re.sub(r"(layer\d\.\d+)\.conv1\.", r"\1.conv1.conv.net.", k)
        k = re.sub(r"(layer\d\.\d+)\.conv([23])\.", r"\1.conv\2.conv.", k)
        k = re.sub(r"(layer\d\.\d+)\.bn(\d)\.", r"\1.conv\2.bn.", k)
        k = k.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.", ".downsample.bn.")
        out[k] = value
    return out


def non_local_cases():
    """tests/data/mmaction/non_local.json's cases, by mode: the key names and weight scales of mmaction2's
    non-local R50 as generate.py filled it, and mmaction2's probabilities on the real clip."""
    return json.loads((Path(__file__).parent / "data/mmaction/non_local.json").read_text())["cases"]


def non_local_checkpoint(mode, path):
    """mmaction2's non-local R50 of `mode` with weights as input-sensitive as a trained model's (the
    fixture's key names and scales), saved as mmaction2's checkpoints are; -> path."""
    spec = non_local_cases()[mode]
    state = fill_state_dict(spec["keys"], spec["norm_scale"], spec["non_local_scale"])
    for key in ("cls_head.fc_cls.weight", "cls_head.fc_cls.bias"):
        state[key] = state[key] * spec["fc_scale"]
    torch.save({"meta": {}, "state_dict": state}, path)
    return path
