"""The inference fast path: BatchNorm folded into the convolution before it, channels-last memory and,
optionally, a bf16 backbone.

Folding and channels-last leave the arithmetic the same up to float rounding (measured on real video in
docs/benchmarks.md); folding removes one pass over every activation per BatchNorm. A bf16 backbone holds
its weights in bf16 once, where autocast would cast them at every call; the head stays in fp32. A
prepared model is for inference only: its BatchNorms are gone, so it must not be trained (load the
checkpoint again for that).
"""
import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(module):
    """Fold every BatchNorm2d into the Conv2d registered just before it in the same parent (the order
    torchvision's ResNet and MobileNetV2 blocks apply them in) and replace it with Identity.
    Returns the number folded."""
    folded = 0
    for parent in list(module.modules()):
        names = list(parent._modules)
        for previous, name in zip(names, names[1:]):
            conv, bn = parent._modules[previous], parent._modules[name]
            if (isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d) and bn.track_running_stats
                    and conv.out_channels == bn.num_features):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
                conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                parent._modules[name] = nn.Identity()
                folded += 1
    return folded


def prepare_for_inference(model, fold_bn=True, channels_last=True, dtype=None):
    """The model in eval mode on the fast path, in place; model.fast says what was done.
    dtype=torch.bfloat16: the backbone computes in bf16 (its input is cast, its features cast back)."""
    model.eval()
    done = []
    if fold_bn:
        done.append(f"{fold_batchnorm(model)} BatchNorms folded")
    if channels_last:
        for module in model.modules():  # the 2D convolutions (non-local blocks hold 3D ones)
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        model.channels_last = True
        done.append("channels-last")
    if dtype is not None and dtype != torch.float32:
        model.backbone.to(dtype)
        model.compute_dtype = dtype
        done.append(f"{str(dtype).replace('torch.', '')} backbone")
    model.fast = ", ".join(done)
    return model
