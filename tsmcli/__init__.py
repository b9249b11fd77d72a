"""tsm: Temporal Shift Module video recognition, compatible with mmaction2's TSM model zoo.

The names below are imported on first use, so that `tsm --help` and `tsm presets` start without
loading PyTorch.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "build_model": "tsmcli.api", "load_model": "tsmcli.api", "load_preset": "tsmcli.presets",
    "save_checkpoint": "tsmcli.checkpoint", "build_dataset": "tsmcli.data", "build_loader": "tsmcli.data",
    "UserError": "tsmcli.errors", "stream": "tsmcli.streaming",
    "extract_features": "tsmcli.features", "load_predictor": "tsmcli.inference", "Predictor": "tsmcli.inference",
    "configure_process": "tsmcli.process", "sample_video": "tsmcli.video",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in ("data", "models", "metrics", "presets", "train", "prepare", "checkpoint", "convert", "streaming", "viz",
                "features", "inference", "runtime", "export"):
        return importlib.import_module(f"tsmcli.{name}")
    raise AttributeError(f"module 'tsmcli' has no attribute {name!r}")
