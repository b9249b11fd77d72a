"""Where the presets live and how a name finds its file: the built-in ones are package data
(tsmcli/presets/configs/), read through importlib.resources so that they are found in every installation (a
wheel, an sdist, an editable checkout, a zip on sys.path), or the folder TSM_PRESETS_DIR names; a name can
also be an alias, a zoo config name (with or without `.py`) or a path to a user's YAML file.

Files are handled as importlib.resources Traversables (a pathlib.Path in most installations, a
zipfile.Path in a zip): code here uses only what both have (`/`, name, read_text, iterdir, is_file).
"""
import copy
import difflib
import os
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

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


@cache
def _base_defaults():
    return read_yaml(resources.files("tsmcli.presets") / "configs" / "_base" / "tsm.yaml")


def base_defaults():
    """Every key a preset can set, at its default (_base/tsm.yaml)."""
    return copy.deepcopy(_base_defaults())


def read_yaml(path):
    """A preset file's mapping; UserError naming the file (and line) when it is not one."""
    try:
        data = yaml.safe_load((path if hasattr(path, "read_text") else Path(path)).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"preset file {path} does not exist") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a preset must be a YAML mapping, got {type(data).__name__}")
    return data


@cache
def index():
    """name or alias -> preset file, for the built-in presets."""
    names = {}
    for name, path in sorted(require_presets().items()):
        raw = read_yaml(path)
        for key in [name] + list(raw.get("aliases", [])):
            names[key] = path
    return names


def preset_names():
    """The built-in presets' names; an error (UserError) when there are none."""
    return sorted(require_presets())


def find_preset_file(name):
    """A preset name, alias, or YAML path -> the file it refers to."""
    name = str(name)
    if name.endswith(".py") and (os.sep in name or os.path.isfile(name)):
        raise UserError(_python_config(name))
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        if not os.path.isfile(name):
            raise UserError(f"preset file {name} does not exist")
        return Path(name)
    known = index()
    key = name[:-3] if name.endswith(".py") else name
    if key in known:
        return known[key]
    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"unknown preset {name!r}{hint} (see `tsm presets list`)")


def _python_config(path):
    return (f"{path} is a Python config (mmaction2's format); presets are YAML files. Convert it with `tsm presets "
            f"import {path}` (it writes a preset that extends the nearest built-in one and sets what differs), "
            "then pass that .yaml")
