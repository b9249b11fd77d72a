"""Presets: one YAML per model-zoo configuration, extending shared bases.

    load_preset("tsm_r50_1x1x8_50e_k400", overrides=["model.dropout=0.8"])  -> resolved dict

A name can be one of ours, a zoo config name (an alias, with or without `.py`), or a path to a user's
YAML file (which may `extends:` a preset by name or path). Every resolved preset is validated against
schema.SCHEMA; problems raise UserError naming the file and key.
"""
import copy
import difflib
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from ..errors import UserError
from . import store
from .mmaction import REFERENCE_GPUS
from .schema import validate

SMALL_PRESET = "tsm_r18_video_1x1x8_25e_small"  # for a user's own videos on a laptop (`tsm prepare custom`)


def _read_yaml(path):
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


@lru_cache(maxsize=None)
def _index():
    """name or alias -> preset file, for the built-in presets."""
    index = {}
    for name, path in sorted(store.require_presets().items()):
        raw = _read_yaml(path)
        for key in [name] + list(raw.get("aliases", [])):
            index[key] = path
    return index


def preset_names():
    """The built-in presets' names; an error (UserError) when there are none."""
    return sorted(store.require_presets())


def find_preset_file(name):
    """A preset name, alias, or YAML path -> the file it refers to."""
    name = str(name)
    if name.endswith(".py") and (os.sep in name or os.path.isfile(name)):
        raise UserError(_python_config(name))
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        if not os.path.isfile(name):
            raise UserError(f"preset file {name} does not exist")
        return Path(name)
    index = _index()
    key = name[:-3] if name.endswith(".py") else name
    if key in index:
        return index[key]
    close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UserError(f"unknown preset {name!r}{hint} (see `tsm presets list`)")


def _python_config(path):
    return (f"{path} is a Python config (mmaction2's format); presets are YAML files. Convert it with `tsm presets "
            f"import {path}` (it writes a preset that extends the nearest built-in one and sets what differs), "
            "then pass that .yaml")


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
    if store.identity(path) in seen:
        raise UserError(f"{path}: 'extends' forms a cycle")
    raw = _read_yaml(path)
    if not store.is_builtin(path):
        raw = _paths_relative_to(raw, Path(path).resolve().parent)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise UserError(f"{path}: key 'extends' must be a preset name or a relative path")
    parent_path = path.parent / parent
    if not parent_path.is_file():
        parent_path = find_preset_file(parent)
    base = _load_chain(parent_path, seen + (store.identity(path),))
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
    raw = _read_yaml(path)
    validate_partial(raw, str(path))
    cfg = _load_chain(path)
    # A user file extending a preset is not that preset: its name and aliases are its own.
    cfg = {**cfg, "name": raw.get("name") or store.stem(path), "aliases": raw.get("aliases", [])}
    cfg = {"name": cfg.pop("name"), **cfg}
    validate(cfg, str(path))
    if overrides:
        cfg = apply_overrides(cfg, overrides)
        validate(cfg, f"--set (on {path.name})")
    return cfg


def resolve_preset(preset, overrides=()):
    """A preset given as a name, alias, YAML path or an already resolved dict, with overrides applied."""
    if isinstance(preset, dict):  # e.g. a checkpoint's: keys added since it was written take the base's default
        return apply_overrides(deep_merge(base_defaults(), preset), overrides)
    return load_preset(preset, overrides)


@lru_cache(maxsize=None)
def _base_defaults():
    return _read_yaml(resources.files("tsmcli.presets") / "configs" / "_base" / "tsm.yaml")


def base_defaults():
    """Every key a preset can set, at its default (_base/tsm.yaml)."""
    return copy.deepcopy(_base_defaults())


def validate_partial(raw, source):
    """Check the keys a single file sets (before merging), so errors name the file that has them."""
    from .schema import SCHEMA

    SCHEMA.validate(raw, "", source)


_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_override(text):
    if "=" not in text:
        raise UserError(f"--set {text!r}: expected KEY=VALUE, e.g. model.dropout=0.8")
    key, value = text.split("=", 1)
    try:
        parsed = yaml.safe_load(value) if value != "" else None
    except yaml.YAMLError:
        parsed = value
    if isinstance(parsed, str) and _FLOAT.fullmatch(parsed):  # YAML 1.1 reads 1e-9 as a string
        parsed = float(parsed)
    return key.strip(), parsed


def apply_overrides(cfg, overrides):
    from .schema import SCHEMA, Section

    cfg = copy.deepcopy(cfg)
    for text in overrides or ():
        key, value = parse_override(text) if isinstance(text, str) else text
        node, schema = cfg, SCHEMA
        parts = key.split(".")
        for i, part in enumerate(parts):
            path = ".".join(parts[: i + 1])
            if not isinstance(schema, Section) or part not in schema.fields:
                from .schema import _suggest
                options = schema.fields if isinstance(schema, Section) else {}
                raise UserError(f"--set {text}: unknown key '{path}'"
                                f"{_suggest(part, options, '.'.join(parts[:i]) or None)}")
            schema = schema.fields[part]
            if i == len(parts) - 1:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
    return cfg


class PresetDumper(yaml.SafeDumper):
    """Mappings in block style; lists of plain values (and of such lists) on one line."""


def _represent_list(dumper, data):
    flow = all(not isinstance(x, (dict, list)) for x in data) or all(isinstance(x, list) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper, data):
    flow = bool(data) and all(isinstance(k, int) and isinstance(v, int) for k, v in data.items())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


PresetDumper.add_representer(list, _represent_list)
PresetDumper.add_representer(dict, _represent_dict)


def dump_preset(cfg):
    return yaml.dump(cfg, Dumper=PresetDumper, sort_keys=False, width=110, allow_unicode=True)


DATASET_ORDER = ["kinetics400", "diving48", "sthv1", "sthv2", "jester", "hmdb51", "ucf101"]


def list_presets():
    presets = [load_preset(name) for name in preset_names()]
    order = {d: i for i, d in enumerate(DATASET_ORDER)}
    return sorted(presets, key=lambda p: (order.get(p.get("dataset"), len(order)), p["name"]))


@lru_cache(maxsize=None)
def zoo_checkpoints():
    """The model zoo's published checkpoints: file name -> {"url", "config"} (from mmaction2's metafile,
    see tools/make_zoo_checkpoints.py)."""
    import json

    return json.loads(resources.files("tsmcli.presets").joinpath("zoo_checkpoints.json").read_text(encoding="utf-8"))


def preset_for_checkpoint_name(filename):
    """`tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth` (a file of the zoo, or a name that starts
    with a preset's), or an original TSM name (`TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth`,
    or `ckpt.pth.tar` in a folder so named) -> our preset name, or None."""
    stem = Path(filename).name
    published = zoo_checkpoints().get(stem)
    if published:
        return store.stem(find_preset_file(published["config"]))
    original = preset_for_original_name(filename)
    if original:
        return original
    best = None
    for key in _index():
        if stem.startswith(key) and (best is None or len(key) > len(best)):
            rest = stem[len(key):]
            if rest == "" or rest[0] in "_.-":
                best = key
    return store.stem(_index()[best]) if best else None


_ORIGINAL_DATASETS = {"kinetics": "kinetics400", "something": "sthv1", "somethingv2": "sthv2", "jester": "jester",
                      "ucf101": "ucf101", "hmdb51": "hmdb51"}
_ORIGINAL_NAME = re.compile(r"TSM_(?P<dataset>[a-z0-9]+)_RGB_(?P<arch>resnet\d+|mobilenetv2)_shift(?P<div>\d+)_"
                            r"(?P<place>blockres|block)(?P<tpool>_tpool)?_avg_segment(?P<segments>\d+)_e(?P<epochs>\d+)"
                            r"(?P<extra>(_[a-z0-9]+)*)$")


def preset_for_original_name(path):
    """The preset whose architecture an original TSM checkpoint has, read from its name as the original's
    test_models.py reads it (dataset, arch, shift, segments, `_dense`, `_nl`, `_tpool`; main.py's
    checkpoint is `ckpt.pth.tar` in a folder of that name). Among presets of that architecture, those
    reading frames as the original does come first, then the sampling (`_dense`), the epochs and the
    plainest name; None when no preset has the architecture (Flow, TSN without shift)."""
    path = Path(path)
    stem = path.parent.name if path.name.startswith("ckpt") else path.name
    stem = re.sub(r"(\.best)?(\.pth)?(\.tar)?$", "", stem)
    m = _ORIGINAL_NAME.match(stem)
    if not m or m["dataset"] not in _ORIGINAL_DATASETS:
        return None
    extras = set(m["extra"].split("_")[1:])
    depth = None if m["arch"] == "mobilenetv2" else int(m["arch"][len("resnet"):])

    def architecture(cfg):
        model = cfg["model"]
        return (cfg.get("dataset") == _ORIGINAL_DATASETS[m["dataset"]] and model["depth"] == depth
                and model["backbone"] == ("mobilenetv2" if depth is None else "resnet")
                and model["num_segments"] == int(m["segments"]) and model["shift_div"] == int(m["div"])
                and model["shift_place"] == m["place"] and model["temporal_pool"] == bool(m["tpool"])
                and bool(model["non_local"]) == ("nl" in extras)
                and (not model["non_local"] or model["non_local"]["mode"] == "embedded_gaussian"))

    def preference(cfg):
        dense = cfg["data"]["train"]["pipeline"][0]["type"] == "DenseSampleFrames"
        return (cfg["data"]["format"] != "rawframes", dense != ("dense" in extras),
                cfg["schedule"]["epochs"] != int(m["epochs"]), len(cfg["name"]))

    candidates = [cfg for cfg in (load_preset(name) for name in preset_names()) if architecture(cfg)]
    return min(candidates, key=preference)["name"] if candidates else None
