"""Features for downstream models (temporal localization, captioning, retrieval): what the classifier
reads, per video, per frame, or per window of a long video.

    predictor = tsmcli.load_predictor("best.pth")
    tsmcli.extract_features(predictor, "clip.mp4").array          # (C,): the pooled features of the video
    tsmcli.extract_features(predictor, "long.mp4", mode="dense")  # (windows, C), with each window's times

`tsm extract` runs this over many videos into .npy files (job.py).
"""
from .extract import MODES, Features, clip_features, layer_names
from .video import extract_features

__all__ = ["MODES", "Features", "clip_features", "extract_features", "layer_names"]
