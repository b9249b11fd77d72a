"""The recognizer: backbone + head, with the clip layout and the averaging of views."""
import torch
from torch import nn

from .choices import AVERAGE_CLIPS


class Recognizer(nn.Module):
    """forward(x) with x of shape (N, V*T, 3, H, W): V views (clips x crops) of T frames each.

    Training mode returns logits (N*V, K). Eval mode averages the V views of each video as
    `average_clips` says: 'prob' = probabilities then mean, 'score' = mean of logits, None = (N, V, K)
    logits. Probabilities are a softmax, or for a multi-label model (data.multi_label) a sigmoid per class.
    Inputs may be uint8 when `normalize` (mean, std in 0..255 units) is set: normalisation then happens
    here, on the model's device (the gpu_normalize presets).
    """

    exported = False  # runs in PyTorch (inference.ClipModel: runtime.exported's files say True)
    kind = "whole"

    def __init__(self, backbone, head, num_segments, average_clips="prob", normalize=None, multi_label=False,
                 preset=None, labels=None):
        super().__init__()
        if average_clips not in AVERAGE_CLIPS:
            raise ValueError(f"average_clips must be one of {AVERAGE_CLIPS}, got {average_clips!r}")
        self.backbone = backbone
        self.head = head
        self.num_segments = num_segments
        self.average_clips = average_clips
        self.multi_label = multi_label  # sigmoid per class (the preset's data.multi_label) instead of softmax
        self.preset = preset  # the resolved preset the model was built from
        self.labels = labels  # its class names, where known
        self.checkpoint_format = None  # set by api.load_model: "ours", "mmaction" or "original"
        # the inference fast path (prepare_for_inference)
        self.fast_path = ""  # what it did, e.g. "53 BatchNorms folded, channels-last"; "" on the plain path
        self.channels_last = False
        self.compute_dtype = None  # the backbone's dtype when it was made bf16 or fp16
        if normalize is not None:
            self.register_buffer("mean", torch.tensor(normalize["mean"]).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(normalize["std"]).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    @property
    def num_classes(self):
        return self.head.fc.out_features

    @property
    def device(self):
        return next(self.parameters()).device

    def describe(self):
        name = (self.preset or {}).get("name") or "model"
        return f"{name} (PyTorch{', ' + self.fast_path if self.fast_path else ''})"

    def prepare_for_inference(self, fold_bn=True, channels_last=True, dtype=None):
        """This model in eval mode on the inference fast path, in place (models/fast.py); fast_path says
        what was done. A prepared model is for inference only: its BatchNorms are gone."""
        from .fast import fold_batchnorm

        self.eval()
        done = []
        if fold_bn:
            done.append(f"{fold_batchnorm(self)} BatchNorms folded")
        if channels_last:
            for module in self.modules():  # the 2D convolutions (non-local blocks hold 3D ones)
                if isinstance(module, nn.Conv2d):
                    module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
            self.channels_last = True
            done.append("channels-last")
        if dtype is not None and dtype != torch.float32:
            self.backbone.to(dtype)
            self.compute_dtype = dtype
            done.append(f"{str(dtype).replace('torch.', '')} backbone")
        self.fast_path = ", ".join(done)
        return self

    def logits(self, x):
        """(N, V*T, 3, H, W) -> per-view logits (N, V, K)."""
        scores = self.head(self.features(self.backbone_input(x)))
        return scores.view(x.shape[0], -1, scores.shape[-1])

    def forward_features(self, x):
        """(N, V*T, 3, H, W) -> the spatially pooled features the classifier reads, per view and frame:
        (N, V, T', C), T' = T (T/2 with the temporal pool). The head's fc of their mean over T' is a view's
        logits (dropout is off in eval mode)."""
        return pool_frames(self.features(self.backbone_input(x)), x.shape[0], x.shape[1] // self.num_segments)

    def classify_features(self, per_frame):
        """forward_features' (N, V, T', C) -> per-view logits (N, V, K): the head's fc on each view's mean
        over its frames, which equals the head on the feature maps in eval mode (no dropout; fc is linear)."""
        return self.head.fc(per_frame.mean(dim=2))

    def backbone_input(self, x):
        """(N, V*T, 3, H, W) -> (N*V*T, 3, H, W), normalised here when the model normalises."""
        n, vt = x.shape[:2]
        if vt % self.num_segments:
            raise ValueError(f"input has {vt} frames per video, not a multiple of num_segments="
                             f"{self.num_segments}")
        x = x.reshape((n * vt,) + x.shape[2:])
        if self.mean is not None:
            x = (x.float() - self.mean) / self.std
        if self.channels_last:  # on the fast path
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def features(self, frames):
        """Backbone features of normalised frames (N*T, 3, H, W), in fp32 whatever reduced precision the
        backbone computes in (a float64 model stays float64: the reference exports are verified against)."""
        if self.compute_dtype is not None:
            frames = frames.to(self.compute_dtype)
        return at_least_fp32(self.backbone(frames))

    def forward(self, x):
        scores = self.logits(x)
        if self.training:
            return scores.flatten(0, 1)
        if self.average_clips == "prob":
            return probabilities(scores, self.multi_label).mean(dim=1)
        if self.average_clips == "score":
            return scores.mean(dim=1)
        return scores


def at_least_fp32(tensor):
    return tensor if tensor.dtype in (torch.float32, torch.float64) else tensor.float()


def pool_frames(feature_maps, videos, views):
    """(N*V*T', C, h, w) feature maps -> their spatial means as (N, V, T', C), in fp32."""
    pooled = at_least_fp32(feature_maps).mean(dim=(2, 3))
    return pooled.view(videos, views, -1, pooled.shape[-1])


def probabilities(logits, multi_label=False):
    """Class probabilities of logits (..., K): softmax over the classes, or each class's own sigmoid
    for multi-label models."""
    return logits.sigmoid() if multi_label else logits.softmax(dim=-1)


def top_classes(probs, top=5, threshold=None):
    """Class indices, most probable first: the `top` best, or with a threshold (multi-label models)
    every class at or above it."""
    order = probs.argsort(descending=True).tolist()
    if threshold is None:
        return order[:top]
    return [i for i in order if float(probs[i]) >= threshold]
