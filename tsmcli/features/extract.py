"""Pooled features of a model's backbone (or of one of its stages), in three modes (video.py: one video).

video:  the mean over the views of the chosen scheme and their frames of the spatially pooled features,
        as mmaction2's feature-extraction test mode computes them for TSM; its classifier's fc of one
        view's features gives that view's logits.
frames: the per-frame features of each view, (views, T', C); T' = T, or T/2 after a temporal pool.
dense:  one vector per window of T frames, a window every `stride` source frames (dense.py).
"""
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

from ..errors import OptionError, UserError
from ..models.recognizer import pool_frames

MODES = ("video", "dense", "frames")


@dataclass
class Features:
    array: np.ndarray                 # video (C,), frames (views, T', C), dense (windows, C); float32
    mode: str
    fps: Optional[float] = None       # the source's frame rate (None for frame folders read by a list)
    views: Optional[int] = None       # video and frames modes: the scheme's views
    windows: List[List[float]] = field(default_factory=list)  # dense: [start, end] of each window, seconds
    frames: List[List[int]] = field(default_factory=list)     # dense: the source frames of each window
    every: Optional[int] = None       # dense: source frames between a window's frames
    stride: Optional[int] = None      # dense: source frames between window starts


def layer_names(model):
    """The stage names --layer takes for this model's backbone (any submodule name works as well)."""
    backbone = model.backbone
    if hasattr(backbone, "layer4"):
        return ["layer1", "layer2", "layer3", "layer4"]
    return [f"features.{i}" for i in range(len(backbone.features))]


def check_layer(model, layer):
    """The backbone module `layer` names; a UserError listing the stages when there is none (or the
    model is an exported graph, which holds the last stage only)."""
    if model.exported:
        raise OptionError("layer", layer, f"{model.describe()} holds the last stage's features only; extract another "
                        "layer from the checkpoint")
    try:
        return model.backbone.get_submodule(layer)
    except AttributeError:
        raise OptionError("layer", layer, "this backbone has no such part; its stages are "
                        f"{', '.join(layer_names(model))} (a block inside one, such as "
                        f"{layer_names(model)[-1]}.0, works too)") from None


class _Captured(Exception):
    """Raised by the hook once the wanted layer has run, so the rest of the backbone is not computed."""


@torch.no_grad()
def clip_features(model, clips, layer=None):
    """clips (N, V*T, 3, H, W), as the model takes them -> spatially pooled features (N, V, T', C) of the
    backbone's output, or of `layer` (a backbone submodule name, e.g. layer3)."""
    if model.kind == "stream_step":
        raise UserError(f"{model.describe()} is a streaming step, which gives no features: extract from the "
                        "checkpoint or a whole-model export")
    if layer is None:
        return model.forward_features(clips)
    captured = {}

    def grab(module, inputs, output):
        captured["maps"] = output
        raise _Captured

    handle = check_layer(model, layer).register_forward_hook(grab)
    try:
        model.features(model.backbone_input(clips))
    except _Captured:
        pass
    finally:
        handle.remove()
    return pool_frames(captured["maps"], clips.shape[0], clips.shape[1] // model.num_segments)


def features_of(per_frame, mode, meta):
    """A Features from one video's (V, T', C) per-frame features."""
    array = per_frame.mean(dim=(0, 1)) if mode == "video" else per_frame
    return Features(array.cpu().numpy().astype(np.float32), mode, fps=meta.get("fps"), views=per_frame.shape[0])

