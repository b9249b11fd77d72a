"""Features for downstream models (temporal localization, captioning, retrieval): what the classifier
reads, per video, per frame, or per window of a long video.

    model = tsmcli.load_model("best.pth", fast=True)
    tsmcli.extract_features(model, "clip.mp4").array          # (C,): the pooled features of the video
    tsmcli.extract_features(model, "long.mp4", mode="dense")  # (windows, C), with each window's times

`tsm extract` runs this over many videos into .npy files (job.py).
"""
from .extract import MODES, Features, clip_features, extract_features, layer_names

__all__ = ["MODES", "Features", "clip_features", "extract_features", "layer_names"]
