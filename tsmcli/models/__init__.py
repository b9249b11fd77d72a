"""TSM models built from a resolved preset's `model` section.

The names below are imported on first use: the presets' schema reads choices.py, which must not load
PyTorch (`tsm prepare` and `tsm presets` start without it).
"""
from ..lazy import lazy_names

_EXPORTS = {
    "build_recognizer": ".build", "Recognizer": ".recognizer", "ResNetTSM": ".resnet_tsm",
    "MobileNetV2TSM": ".mobilenetv2_tsm", "TSMHead": ".head", "TemporalShift": ".shift", "ShiftedConv2d": ".shift",
    "temporal_shift": ".shift",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_names(__name__, _EXPORTS)
