"""Where the built-in presets live: package data (tsmcli/presets/configs/), read through importlib.resources
so that they are found in every installation (a wheel, an sdist, an editable checkout, a zip on sys.path),
or the folder TSM_PRESETS_DIR names.

Files are handled as importlib.resources Traversables (a pathlib.Path in most installations, a
zipfile.Path in a zip): code here uses only what both have (`/`, name, read_text, iterdir, is_file).
"""
import os
from importlib import resources
from pathlib import Path

from ..errors import UserError

ENV = "TSM_PRESETS_DIR"


def preset_root():
    """The folder of the built-in presets: $TSM_PRESETS_DIR, else the package's own."""
    custom = os.environ.get(ENV)
    if custom:
        return Path(custom)
    return resources.files("tsmcli.presets") / "configs"


def builtin_files():
    """{name: file} of the preset YAML files in the root folder (bases under _base/ are not presets)."""
    root = preset_root()
    if not root.is_dir():
        return {}
    return {stem(f): f for f in root.iterdir() if f.name.endswith(".yaml") and f.is_file()}


def require_presets():
    """builtin_files(), refusing an empty set: an empty table is never a correct answer."""
    files = builtin_files()
    if not files:
        root = preset_root()
        where = f"{ENV}={root}" if os.environ.get(ENV) else f"the package's preset folder {root}"
        raise UserError(f"no presets found in {where}: point {ENV} at a folder of preset YAML files, "
                        "or reinstall tsm (`pip install tsm`; from a checkout `pip install .`)")
    return files


def stem(file):
    return file.name[:-len(".yaml")] if file.name.endswith(".yaml") else file.name.rsplit(".", 1)[0]


def identity(file):
    """A key that is equal for the same file (cycle detection), for Paths and zip members alike."""
    return str(Path(file).resolve()) if isinstance(file, Path) else str(file)


def is_builtin(file):
    """Whether `file` is one of the built-in presets or bases (whose data paths are read from the current
    folder, as mmaction2's configs are) rather than a user's YAML (whose paths are read from its folder)."""
    root = preset_root()
    if isinstance(file, Path) and isinstance(root, Path):
        return Path(root).resolve() in Path(file).resolve().parents
    return str(file).startswith(str(root).rstrip("/") + "/")

