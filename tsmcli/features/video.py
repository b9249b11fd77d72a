"""The features of one video file or frame folder, in any of the modes (extract.py)."""
from ..errors import OptionError
from ..inference import Predictor
from .extract import MODES, clip_features, features_of


def extract_features(predictor, video, mode="video", layer=None, scheme="preset", stride=None, every=None,
                     batch_size=8):
    """Features of one video file or frame folder (see the module's docstring for the modes).
    predictor: an inference.Predictor (tsmcli.load_predictor), or a model, run as it is. scheme: the views
    of video and frames modes (`tsm test`'s schemes); stride and every: dense mode's source frames between
    windows and between a window's frames (default: every from the preset as `tsm stream` spaces frames,
    stride = T x every, windows side by side)."""
    if mode not in MODES:
        raise OptionError("mode", mode, f"use one of {', '.join(MODES)}")
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    if mode == "dense":
        from .dense import dense_features

        return dense_features(predictor, video, stride=stride, every=every, layer=layer, batch_size=batch_size)
    clip = predictor.transform(video, scheme)
    per_frame = clip_features(predictor.model, clip.imgs[None].to(predictor.device), layer)[0]
    return features_of(per_frame, mode, clip.meta)
