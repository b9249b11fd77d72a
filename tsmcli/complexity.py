"""Parameters and FLOPs of one clip, counted as mmaction2 0.x's tools/analysis/get_flops.py counts them.

get_flops.py reports mmcv's counter: multiply-adds of convolutions (plus their bias) and linear layers,
one operation per element of each activation and pooling input, two per element of an affine norm.
Here torch.utils.flop_counter sees the same operations at the ATen level, with those formulas; the
one deliberate difference is that matrix products outside modules (the non-local blocks' attention)
are counted, where mmcv's module hooks miss them.
"""
import copy
import math

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, mm_flop

aten = torch.ops.aten


def _conv(x_shape, w_shape, bias, _stride, _padding, _dilation, transposed, *args, out_shape=None, **kwargs):
    macs = conv_flop_count(x_shape, w_shape, out_shape, transposed=transposed) // 2  # torch counts 2 per MAC
    return macs + (math.prod(out_shape) if bias is not None else 0)


def _addmm(_bias, a_shape, b_shape, *args, **kwargs):  # mmcv's Linear hook leaves the bias out
    return mm_flop(a_shape, b_shape) // 2


def _matmul(a_shape, b_shape, *args, **kwargs):
    return mm_flop(a_shape, b_shape) // 2


def _bmm(a_shape, b_shape, *args, **kwargs):
    return math.prod(a_shape) * b_shape[-1]


def _per_output_element(*args, out_shape=None, **kwargs):
    return math.prod(out_shape)


def _per_input_element(x_shape, *args, **kwargs):
    return math.prod(x_shape)


def _spatial_mean(x_shape, dim, *args, **kwargs):  # the head's average pool; not the segment consensus
    spatial = len(x_shape) == 4 and sorted(d % 4 for d in dim) == [2, 3]
    return math.prod(x_shape) if spatial else 0


def _norm(x_shape, weight, *args, **kwargs):
    return math.prod(x_shape) * (2 if weight is not None else 1)


MMCV_FORMULAS = {
    aten.convolution: _conv, aten.addmm: _addmm, aten.mm: _matmul, aten.bmm: _bmm,
    aten.relu: _per_output_element, aten.relu_: _per_output_element,
    aten.hardtanh: _per_output_element, aten.hardtanh_: _per_output_element,  # ReLU6
    aten.max_pool2d_with_indices: _per_input_element, aten.max_pool2d: _per_input_element,
    aten.avg_pool2d: _per_input_element, aten._adaptive_avg_pool2d: _per_input_element, aten.mean: _spatial_mean,
    aten._native_batch_norm_legit_no_training: _norm, aten.native_batch_norm: _norm,
    aten._native_batch_norm_legit: _norm,
}


def count_complexity(model, frames, height, width):
    """{"params", "flops"} of one clip of `frames` frames at height x width through the recognizer in
    eval mode (flops: multiply-adds, mmaction2's "GFLOPs"). Count the model as built: the fast path's
    folded BatchNorm would count fewer."""
    parameters = sum(p.numel() for p in model.parameters())
    shapes_only = copy.deepcopy(model).to("meta").eval()  # counting needs shapes, not arithmetic
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=MMCV_FORMULAS) as counter:
        shapes_only(torch.zeros(1, frames, 3, height, width, device="meta"))
    return {"params": parameters, "flops": counter.get_total_flops(), "clip": [frames, 3, height, width]}


def preset_complexity(preset, overrides=()):
    """count_complexity of a preset's model on one clip as its test pipeline gives it."""
    from .api import build_model
    from .data.pipeline import output_size

    model = build_model(preset, pretrained=False, **dict(overrides))
    height, width = output_size(model.preset["data"]["test"]["pipeline"])
    return count_complexity(model, model.preset["model"]["num_segments"], height, width)


def describe(complexity):
    frames, _, height, width = complexity["clip"]
    return (f"{complexity['params'] / 1e6:.2f} M parameters, {complexity['flops'] / 1e9:.2f} GFLOPs per clip of "
            f"{frames}x{height}x{width} (multiply-adds, as mmaction2's get_flops.py counts them)")
