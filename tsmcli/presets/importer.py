"""`tsm presets import CONFIG.py`: a mmaction2 0.x TSM config as a preset YAML that extends the
built-in preset nearest to it and sets only what differs."""
import os
from functools import cache
from pathlib import Path

from ..atomic import write_text
from ..errors import UserError
from .mmaction import preset_from_mmaction, settings_without_effect
from .mmaction_py import read_config

# What preset_from_mmaction reads; the rest of a config is runtime detail or pipeline building blocks.
READ_KEYS = ("model", "data", "optimizer", "optimizer_config", "lr_config", "total_epochs", "evaluation",
             "checkpoint_config", "module_hooks", "load_from", "log_config")
RECIPE_KEYS = ("inference_only", "load_from", "model", "data", "train", "optimizer", "schedule", "evaluation",
               "checkpoint", "log")
_RUNTIME = {"work_dir", "dist_params", "log_level", "resume_from", "workflow", "opencv_num_threads",
            "mp_start_method"}  # where and how mmaction2's runner runs: tsm's commands take these as options


def changed_keys(full, base):
    """The part of `full` that differs from `base`: mappings compared key by key, anything else whole."""
    out = {}
    for key, value in full.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            sub = changed_keys(value, base[key])
            if sub:
                out[key] = sub
        elif key not in base or base[key] != value:
            out[key] = value
    return out


def _leaves(tree):
    return sum(_leaves(v) if isinstance(v, dict) else 1 for v in tree.values())


def preset_from_config_file(path):
    """The preset values of a mmaction2 config file (its bases merged), and the config's keys tsm ignores
    (those that change nothing it computes; one that would change something is refused)."""
    cfg, files, building_blocks = read_config(path)
    missing = [key for key in ("model", "data") if key not in cfg]
    if missing:
        raise UserError(f"{path}: no {' or '.join(missing)} in it or its _base_ files: not a recognizer config")
    try:
        preset = preset_from_mmaction(cfg)
    except KeyError as e:
        raise UserError(f"{path}: {e.args[0]!r} is missing, or has a value tsm does not know, in its "
                        "model, data, optimizer or lr_config") from None
    log = cfg.get("log_config") or {}
    if "interval" in log:
        preset["log"] = {"interval": log["interval"]}
    ignored = sorted(k for k in cfg if k not in READ_KEYS and k not in _RUNTIME and k not in building_blocks)
    return preset, ignored + settings_without_effect(cfg), files


@cache
def _builtin_recipes():
    from . import load_preset, preset_names

    return {name: {k: load_preset(name).get(k) for k in RECIPE_KEYS} for name in preset_names()}


def nearest_builtin(preset, files):
    """The built-in preset with the fewest differing values (ties: one named like a file of the config)."""
    from .store import index as preset_index

    stems = [Path(f).stem for f in files]
    index = preset_index()
    best = None
    for name, resolved in _builtin_recipes().items():
        differences = _leaves(changed_keys(preset, resolved))
        named = next((i for i, stem in enumerate(stems) if index.get(stem) == index[name]), len(stems))
        if best is None or (differences, named) < best[:2]:
            best = (differences, named, name, resolved)
    return best[2], best[3]


def _relative_paths(values, out_dir, from_dir):
    """Data paths a config sets itself are relative to where mmaction2 runs (from_dir); a preset file's
    are relative to the file."""
    for split in ("train", "val", "test"):
        for key in ("ann_file", "data_prefix"):
            value = ((values.get("data") or {}).get(split) or {}).get(key)
            if isinstance(value, str) and not os.path.isabs(value):
                values["data"][split][key] = os.path.relpath(Path(from_dir, value).resolve(), out_dir.resolve())


def import_config(path, out, base=None, from_dir="."):
    """Write `out`, a preset YAML extending `base` (default: the nearest built-in preset) with what the
    config sets differently. Returns (base name, the values written, the config keys ignored)."""
    from . import dump_preset, load_preset

    preset, ignored, files = preset_from_config_file(path)
    if base is None:
        base, resolved = nearest_builtin(preset, files)
    else:
        resolved = {k: load_preset(base).get(k) for k in RECIPE_KEYS}
    body = changed_keys(preset, resolved)
    _relative_paths(body, Path(out).parent, from_dir)
    content = {"extends": base, "description": f"mmaction2 config {Path(path).name}, imported", **body}
    header = (f"# Imported by `tsm presets import` from {Path(path).resolve()}"
              + (f" and its _base_ files ({', '.join(Path(f).name for f in files[1:])})" if files[1:] else "")
              + f";\n# it sets what differs from the built-in preset {base} (`tsm presets show` prints it whole).\n")
    write_text(out, header + dump_preset(content))
    try:
        load_preset(str(out))
    except UserError:
        os.unlink(out)
        raise
    return base, body, ignored
