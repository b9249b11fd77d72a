"""The recognizer: backbone + head, with the clip layout and the averaging of views."""
import torch
from torch import nn

from ..presets.schema import AVERAGE_CLIPS


class Recognizer(nn.Module):
    """forward(x) with x of shape (N, V*T, 3, H, W): V views (clips x crops) of T frames each.

    Training mode returns logits (N*V, K). Eval mode averages the V views of each video as
    `average_clips` says: 'prob' = probabilities then mean, 'score' = mean of logits, None = (N, V, K)
    logits. Probabilities are a softmax, or for a multi-label model (data.multi_class) a sigmoid per class.
    Inputs may be uint8 when `normalize` (mean, std in 0..255 units) is set: normalisation then happens
    here, on the model's device (the gpu_normalize presets).
    """

    def __init__(self, backbone, head, num_segments, average_clips="prob", normalize=None, multi_label=False):
        super().__init__()
        if average_clips not in AVERAGE_CLIPS:
            raise ValueError(f"average_clips must be one of {AVERAGE_CLIPS}, got {average_clips!r}")
        self.backbone = backbone
        self.head = head
        self.num_segments = num_segments
        self.average_clips = average_clips
        self.multi_label = multi_label
        # What loading and the fast path tell the commands (set by tsmcli.api and models.fast.prepare_for_inference)
        self.preset = None  # the resolved preset the model was built from
        self.labels = None  # its class names, where known
        self.checkpoint_format = None  # the format of the file its weights came from: "ours", "mmaction", "original"
        self.fast = ""  # what the fast path did, e.g. "53 BatchNorms folded, channels-last"; "" on the plain path
        self.channels_last = False
        self.compute_dtype = None  # the backbone's dtype when models.fast made it bf16
        if normalize is not None:
            self.register_buffer("mean", torch.tensor(normalize["mean"]).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(normalize["std"]).view(1, 3, 1, 1), persistent=False)
        else:
            self.mean = self.std = None

    @property
    def num_classes(self):
        return self.head.fc.out_features

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
        if self.channels_last:  # set by models.fast.prepare_for_inference
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def features(self, frames):
        """Backbone features of normalised frames (N*T, 3, H, W), in fp32 whatever the backbone computes in."""
        if self.compute_dtype is not None:
            frames = frames.to(self.compute_dtype)
        return self.backbone(frames).float()

    def forward(self, x):
        scores = self.logits(x)
        if self.training:
            return scores.flatten(0, 1)
        if self.average_clips == "prob":
            return probabilities(scores, self.multi_label).mean(dim=1)
        if self.average_clips == "score":
            return scores.mean(dim=1)
        return scores


def pool_frames(feature_maps, videos, views):
    """(N*V*T', C, h, w) feature maps -> their spatial means as (N, V, T', C), in fp32."""
    pooled = feature_maps.float().mean(dim=(2, 3))
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
