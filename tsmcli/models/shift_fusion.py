"""Inference fast path through ResNet blocks with a shifted conv1 ('blockres' placement).

Between two such blocks, the output x = relu(out + identity) is needed twice by the next block:
shifted, as its conv1 input, and as it is, as its identity. Writing x and then a shifted copy of it
costs a full extra pass over memory per block (a copy into a new tensor costs about twice an in-place
pass). Here the block keeps the 2*fold channels that the shift moves in a new quarter-size tensor Q and
shifts them within its own output: S. S's other channels are x's, so the next identity add reads those
and Q; a downsampling identity gets x back by copying Q into S once conv1 has read it. The arithmetic is
the same, so outputs equal the module path's exactly (tests/test_shift.py).

Only without autograd: it overwrites tensors that autograd would keep for the backward pass.
"""
import torch

from .resnet import BasicBlock, Bottleneck
from .shift import ShiftedConv2d, temporal_shift


def has_hooks(module):
    from torch.nn.modules import module as torch_module

    return bool(module._forward_hooks or module._forward_pre_hooks or torch_module._global_forward_hooks
                or torch_module._global_forward_pre_hooks)


def _fusable(block):
    """The fused path calls conv1's convolution directly, so hooks on the block or its shifted conv
    (Grad-CAM, feature extraction) need the module path."""
    return (type(block) in (Bottleneck, BasicBlock) and type(block.conv1) is ShiftedConv2d
            and not has_hooks(block) and not has_hooks(block.conv1))


def _residual_branch(block, shifted):
    conv1 = block.conv1
    out = block.relu(block.bn1(conv1._conv_forward(shifted, conv1.weight, conv1.bias)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        return block.bn3(block.conv3(out))
    return block.bn2(block.conv2(out))


def _relu_into_shifted(out, num_segments, fold):
    """relu(out) shifted in time, written over `out` itself (S), and relu(out)'s first 2*fold channels
    unshifted (Q). Writing into a fresh tensor would cost what the separate shift costs."""
    nt, c, h, w = out.shape
    o = out.view(nt // num_segments, num_segments, c, h, w)
    q = torch.clamp_min(o[:, :, :2 * fold], 0)  # relu; ATen's relu is clamp_min(0)
    o[:, :, 2 * fold:].relu_()
    o[:, :-1, :fold] = q[:, 1:, :fold]
    o[:, -1, :fold] = 0
    o[:, 1:, fold:2 * fold] = q[:, :-1, fold:]
    o[:, 0, fold:2 * fold] = 0
    return out, q.view(nt, 2 * fold, h, w)


def run_blocks(blocks, x):
    """Run residual blocks one after another (x -> block(x)), sharing each shift with the previous
    block's output wherever two fusable blocks follow each other."""
    pending = None  # (S, Q) for the next block, in place of x
    for i, block in enumerate(blocks):
        if pending is None and not _fusable(block):
            x = block(x)
            continue
        conv1 = block.conv1
        fold = conv1.in_channels // conv1.shift_div
        if pending is None:
            shifted = temporal_shift(x, conv1.num_segments, conv1.shift_div)
        else:
            shifted, quarter = pending
        out = _residual_branch(block, shifted)
        if pending is None:
            out += x if block.downsample is None else block.downsample(x)
        elif block.downsample is None:  # identity = x: its unshifted channels are S's, the shifted ones Q
            out[:, 2 * fold:] += shifted[:, 2 * fold:]
            out[:, :2 * fold] += quarter
        else:  # conv1 has read S: put Q back, and S is x again for the downsampling conv
            shifted[:, :2 * fold] = quarter
            out += block.downsample(shifted)
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if following is not None and _fusable(following):
            nxt = following.conv1
            pending = _relu_into_shifted(out, nxt.num_segments, nxt.in_channels // nxt.shift_div)
        else:
            pending, x = None, out.relu_()
    return x
