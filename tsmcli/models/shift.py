"""The temporal shift of TSM (Lin, Gan and Han, ICCV 2019).

Frames of a clip are stacked along the batch axis as (N*T, C, H, W). Of the C channels, the first
fold = C // shift_div take their values from the next frame (t+1), the second fold from the previous
frame (t-1), the rest stay; frames shifted in from outside the clip are zeros.

The online (causal) shift moves both folds from the previous frame: frame t then depends on frames
<= t only, so a stream can compute it one frame at a time (tsmcli/streaming/). It moves as many channels
as the bidirectional shift (on the toy data that is what it takes to match its accuracy; the paper's
online model moves one fold, which `shift_div=16` reproduces in channel count), and the second fold
moves as in the bidirectional shift, so a bidirectional checkpoint fine-tunes into an online model with
that half of its shift unchanged.
"""
from typing import Tuple, Union, cast

import torch
from torch import nn


def _move(out, x, channels, later):
    """out[:, t, channels] = x[:, t - 1] if later (from the past) else x[:, t + 1]; zeros at the edge."""
    if later:
        out[:, 1:, channels] = x[:, :-1, channels]
        out[:, :1, channels] = 0
    else:
        out[:, :-1, channels] = x[:, 1:, channels]
        out[:, -1:, channels] = 0


def _shift(x, num_segments, fold, backward=False, online=False):
    """One allocation, every element written once. backward=True shifts the other way (the adjoint)."""
    nt, c, h, w = x.shape
    x = x.view(nt // num_segments, num_segments, c, h, w)
    out = torch.empty_like(x)
    from_next, from_previous = slice(0, fold), slice(fold, 2 * fold)
    if online:
        _move(out, x, slice(0, 2 * fold), later=not backward)
    else:
        _move(out, x, from_next, later=backward)
        _move(out, x, from_previous, later=not backward)
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


class _ShiftFunction(torch.autograd.Function):
    # The gradient of a shift is simply the opposite shift: cheaper than autograd through the slice
    # assignments above (docs/benchmarks.md, "Temporal shift overhead").
    @staticmethod
    def forward(ctx, x, num_segments, fold, online):
        ctx.num_segments, ctx.fold, ctx.online = num_segments, fold, online
        return _shift(x, num_segments, fold, online=online)

    @staticmethod
    def backward(ctx, grad):
        if not (grad.is_contiguous() or grad.is_contiguous(memory_format=torch.channels_last)):
            grad = grad.contiguous()
        return _shift(grad, ctx.num_segments, ctx.fold, backward=True, online=ctx.online), None, None, None


def _shift_as_graph(x, num_segments, fold, online):
    """The same shift from slicing and concatenation only, for tracing and export: no writes into a
    tensor (which tracers freeze into constants) and the batch left free."""
    c, h, w = x.shape[1:]
    x = x.reshape(-1, num_segments, c, h, w)
    zeros = torch.zeros_like(x[:, :1, :fold])
    if online:
        past = torch.cat([torch.zeros_like(x[:, :1, :2 * fold]), x[:, :-1, :2 * fold]], dim=1)
        return torch.cat([past, x[:, :, 2 * fold:]], dim=2).flatten(0, 1)
    past = torch.cat([zeros, x[:, :-1, fold:2 * fold]], dim=1)
    first = torch.cat([x[:, 1:, :fold], zeros], dim=1)
    return torch.cat([first, past, x[:, :, 2 * fold:]], dim=2).flatten(0, 1)


def temporal_shift(x: torch.Tensor, num_segments: int, shift_div: int = 8, online: bool = False) -> torch.Tensor:
    fold = x.shape[1] // shift_div
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return _shift_as_graph(x, num_segments, fold, online)
    if torch.is_grad_enabled() and x.requires_grad:
        return _ShiftFunction.apply(x, num_segments, fold, online)
    return _shift(x, num_segments, fold, online=online)


class TemporalShift(nn.Module):
    def __init__(self, num_segments: int, shift_div: int = 8, online: bool = False):
        super().__init__()
        self.num_segments = num_segments
        self.shift_div = shift_div
        self.online = online

    def forward(self, x):
        return temporal_shift(x, self.num_segments, self.shift_div, self.online)

    def extra_repr(self):
        return f"num_segments={self.num_segments}, shift_div={self.shift_div}" + (", online" if self.online else "")


class ShiftedConv2d(nn.Conv2d):
    """A Conv2d that shifts its input first ('blockres' placement).

    It keeps the parameters and state-dict keys of the conv it replaces, so torchvision weights and our
    checkpoints load into a shifted network exactly as into a plain one.
    """

    def __init__(self, conv: nn.Conv2d, num_segments: int, shift_div: int = 8, online: bool = False):
        pair = cast(Tuple[int, int], conv.kernel_size)  # a Conv2d's sizes are pairs
        super().__init__(conv.in_channels, conv.out_channels, pair, stride=cast(Tuple[int, int], conv.stride),
                         padding=cast(Union[str, Tuple[int, int]], conv.padding),
                         dilation=cast(Tuple[int, int], conv.dilation), groups=conv.groups,
                         bias=conv.bias is not None, padding_mode=conv.padding_mode,
                         device=conv.weight.device, dtype=conv.weight.dtype)
        self.weight = conv.weight
        self.bias = conv.bias
        self.num_segments = num_segments
        self.shift_div = shift_div
        self.online = online

    def forward(self, x):
        return super().forward(temporal_shift(x, self.num_segments, self.shift_div, self.online))

    def extra_repr(self):
        return (f"{super().extra_repr()}, num_segments={self.num_segments}, shift_div={self.shift_div}"
                + (", online" if self.online else ""))


class ShiftedBlock(nn.Module):
    """Shifts the input of a whole residual block, identity path included ('block' placement)."""

    def __init__(self, net: nn.Module, num_segments: int, shift_div: int = 8, online: bool = False):
        super().__init__()
        self.shift = TemporalShift(num_segments, shift_div, online)
        self.net = net

    def forward(self, x):
        return self.net(self.shift(x))


def temporal_max_pool(x: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Max-pool 3x1x1 with stride 2 over time (TSM's temporal pool): halves the segments."""
    nt, c, h, w = x.shape
    x = x.view(-1, num_segments, c, h, w).transpose(1, 2)
    x = nn.functional.max_pool3d(x, kernel_size=(3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
    return x.transpose(1, 2).reshape(-1, c, h, w)
