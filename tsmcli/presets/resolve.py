"""A preset resolved: its `extends` chain merged onto the base, user files' paths read from their folder,
`--set` overrides applied, and the result validated against schema.SCHEMA."""
import copy
import os
from pathlib import Path

from ..errors import UserError
from .mmaction import REFERENCE_GPUS
from .overrides import apply_overrides
from .renamed import upgrade
from .schema import SCHEMA, validate
from .store import base_defaults, find_preset_file, identity, is_builtin, read_yaml, stem


def deep_merge(base, update):
    """Mappings merge key by key; anything else (lists included) replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_chain(path, seen=()):
    if identity(path) in seen:
        raise UserError(f"{path}: 'extends' forms a cycle")
    raw = upgrade(read_yaml(path), str(path))
    if not is_builtin(path):
        raw = _paths_relative_to(raw, Path(path).resolve().parent)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise UserError(f"{path}: key 'extends' must be a preset name or a relative path")
    parent_path = path.parent / parent
    if not parent_path.is_file():
        parent_path = find_preset_file(parent)
    base = _load_chain(parent_path, seen + (identity(path),))
    merged = deep_merge(base, raw)
    _fix_reference_batch(merged, raw)
    return merged


def _paths_relative_to(raw, folder):
    """A user's preset file names its lists, folders and label map relative to itself, so that it works
    from any directory (the built-in presets read data/ from the current directory, as mmaction2's do).
    A checkpoint or weights file is taken relative to the file when it exists there (else it may be a
    zoo file name or a URL)."""
    def resolve(value, must_exist=False):
        if not isinstance(value, str) or os.path.isabs(value) or "://" in value:
            return value
        joined = os.path.normpath(folder / os.path.expanduser(value))
        return joined if not must_exist or os.path.exists(joined) else value

    raw = copy.deepcopy(raw)
    if "label_map" in raw:
        raw["label_map"] = resolve(raw["label_map"])
    if "load_from" in raw:
        raw["load_from"] = resolve(raw["load_from"], must_exist=True)
    if isinstance(raw.get("model"), dict) and "pretrained" in raw["model"]:
        raw["model"]["pretrained"] = resolve(raw["model"]["pretrained"], must_exist=True)
    for split in (raw.get("data") or {}).values() if isinstance(raw.get("data"), dict) else ():
        if isinstance(split, dict):
            for key in ("ann_file", "data_prefix"):
                if key in split:
                    split[key] = resolve(split[key])
    return raw


def _fix_reference_batch(cfg, raw):
    """optimizer.lr_batch_size: the total batch the learning rate was set for. The presets state it; a
    file that sets its own lr without it sets it for 8 GPUs x its videos_per_gpu (the zoo's rule).
    Overriding videos_per_gpu later (--set, or a file that keeps the lr) scales the lr instead."""
    raw_opt = raw.get("optimizer") or {}
    opt = cfg.get("optimizer") or {}
    if "lr_batch_size" in raw_opt or not cfg.get("data", {}).get("videos_per_gpu"):
        return
    if "lr" in raw_opt or opt.get("lr_batch_size") is None:
        opt["lr_batch_size"] = REFERENCE_GPUS * cfg["data"]["videos_per_gpu"]


def load_preset(name, overrides=()):
    """Resolve a preset (name, alias or YAML path) with `key=value` overrides applied, validated."""
    path = find_preset_file(name)
    raw = upgrade(read_yaml(path), str(path))
    validate_partial(raw, str(path))
    cfg = _load_chain(path)
    # A user file extending a preset is not that preset: its name and aliases are its own.
    cfg = {**cfg, "name": raw.get("name") or stem(path), "aliases": raw.get("aliases", [])}
    cfg = {"name": cfg.pop("name"), **cfg}
    validate(cfg, str(path))
    if overrides:
        cfg = apply_overrides(cfg, overrides)
        validate(cfg, f"--set (on {path.name})")
    return cfg


def resolve_preset(preset, overrides=()):
    """A preset given as a name, alias, YAML path or an already resolved dict, with overrides applied."""
    if isinstance(preset, dict):  # e.g. a checkpoint's: keys added since it was written take the base's default
        return apply_overrides(deep_merge(base_defaults(), upgrade(preset, "a preset written before")), overrides)
    return load_preset(preset, overrides)


def validate_partial(raw, source):
    """Check the keys a single file sets (before merging), so errors name the file that has them."""
    SCHEMA.validate(raw, "", source)
