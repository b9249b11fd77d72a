"""Packages whose names load on first use: importing one of them (for a light module inside it, such as
the presets' schema reading models/choices.py) must not import PyTorch."""
import importlib


def lazy_names(package, homes):
    """A module __getattr__ for `package` (its __name__): name -> the module (relative) it lives in."""

    def __getattr__(name):
        if name in homes:
            return getattr(importlib.import_module(homes[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


class OnFirstUse:
    """A module imported when one of its attributes is first read: for heavy imports (torchvision costs
    seconds of start-up, models/resnet.py) that only some paths use."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self.name), attribute)
