"""Random-weight models that behave like trained ones where a test or benchmark compares outputs."""
import torch

import tsmcli


def calibrated(preset, clip=None, seed=0, **overrides):
    """A random model (eval mode) whose BatchNorm statistics come from `clip` (default: random frames) and
    whose classifier gives logits of order 1. A freshly initialised one collapses activations towards 0 or
    saturates the softmax, so every input gives the same output and no comparison would mean anything."""
    torch.manual_seed(seed)
    model = tsmcli.build_model(preset, pretrained=False, **overrides)
    torch.nn.init.normal_(model.head.fc.weight, std=2 / model.head.fc.in_features ** 0.5)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: the statistics of this one batch
    model.train()
    with torch.no_grad():
        model(clip if clip is not None else torch.randn(2, model.num_segments, 3, 64, 64))
    return model.eval()
