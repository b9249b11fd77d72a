"""TSM's optimizer recipe: SGD with mmaction2 0.x's TSM parameter groups, and the linear scaling rule."""
from typing import List

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ..presets import REFERENCE_GPUS


def param_groups(model, lr, weight_decay, fc_lr5=True):
    """First conv weight x1 (bias x2, no decay); other conv/linear weights x1, their biases x2 without
    decay; norm parameters x1 without decay; the classifier (last Linear) weight x5 and bias x10 (no
    decay) when fc_lr5. Each group carries `lr_mult` so schedules can rescale it."""
    first_w: List[torch.Tensor] = []
    first_b: List[torch.Tensor] = []
    weights: List[torch.Tensor] = []
    biases: List[torch.Tensor] = []
    norms: List[torch.Tensor] = []
    convs = 0
    for m in model.modules():
        params = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if isinstance(m, _ConvNd):
            convs += 1
            target_w, target_b = (first_w, first_b) if convs == 1 else (weights, biases)
            target_w.append(m.weight)
            if m.bias is not None:
                target_b.append(m.bias)
        elif isinstance(m, nn.Linear):
            weights.append(m.weight)
            if m.bias is not None:
                biases.append(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm, nn.LayerNorm)):
            norms.extend(params)
        elif params:
            raise ValueError(f"no learning-rate rule for parameters of {type(m).__name__}")
    fc_w, fc_b = weights.pop(), biases.pop()  # the classifier is the last Linear of the model
    groups = [("first_conv_weight", first_w, 1, weight_decay), ("first_conv_bias", first_b, 2, 0.0),
              ("weight", weights, 1, weight_decay), ("bias", biases, 2, 0.0), ("norm", norms, 1, 0.0),
              ("fc_weight", [fc_w], 5 if fc_lr5 else 1, weight_decay),
              ("fc_bias", [fc_b], 10 if fc_lr5 else 2, 0.0)]
    return [{"name": name, "params": params, "lr": lr * mult, "lr_mult": mult, "weight_decay": wd}
            for name, params, mult, wd in groups if params]


def scaled_lr(optimizer_cfg, videos_per_gpu, world_size, accumulation=1, autoscale=True):
    """The linear scaling rule: the preset's lr is for its reference batch (optimizer.lr_batch_size,
    which load_preset fills from the preset's own videos_per_gpu); scale it to the batch actually used."""
    reference = optimizer_cfg.get("lr_batch_size") or REFERENCE_GPUS * videos_per_gpu
    actual = videos_per_gpu * world_size * accumulation
    lr = optimizer_cfg["lr"] * (actual / reference if autoscale else 1.0)
    return lr, reference, actual


def build_optimizer(model, optimizer_cfg, lr):
    return torch.optim.SGD(param_groups(model, lr, optimizer_cfg["weight_decay"], optimizer_cfg["fc_lr5"]),
                           lr=lr, momentum=optimizer_cfg["momentum"], weight_decay=optimizer_cfg["weight_decay"])
