"""tsm: Temporal Shift Module video recognition, compatible with mmaction2's TSM model zoo."""
from .api import build_model, load_model
from .checkpoint import save_checkpoint
from .data import build_dataset, build_loader
from .errors import UserError
from .presets import load_preset

__version__ = "0.1.0"
__all__ = ["build_model", "load_model", "build_dataset", "build_loader", "load_preset", "save_checkpoint", "UserError", "__version__"]
