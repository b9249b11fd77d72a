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
