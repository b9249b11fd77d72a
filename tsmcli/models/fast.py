"""The inference fast path: BatchNorm folded into the convolution before it, channels-last memory and,
optionally, a bf16 backbone.

Folding and channels-last leave the arithmetic the same up to float rounding (measured on real video in
docs/benchmarks.md); folding removes one pass over every activation per BatchNorm. A bf16 backbone holds
its weights in bf16 once, where autocast would cast them at every call; the head stays in fp32. A
prepared model is for inference only: its BatchNorms are gone, so it must not be trained (load the
checkpoint again for that). Recognizer.prepare_for_inference applies it.
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
                assert bn.running_mean is not None and bn.running_var is not None  # track_running_stats
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1))
                conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                parent._modules[name] = nn.Identity()
                folded += 1
    return folded


def prepare_for_inference(model, fold_bn=True, channels_last=True, dtype=None):
    """model.prepare_for_inference(...): the model in eval mode on the fast path, in place."""
    return model.prepare_for_inference(fold_bn, channels_last, dtype)
