"""Presets: one YAML per model-zoo configuration, extending shared bases.

    load_preset("tsm_r50_1x1x8_50e_k400", overrides=["model.dropout=0.8"])  -> resolved dict

A name can be one of ours, a zoo config name (an alias, with or without `.py`), or a path to a user's
YAML file (which may `extends:` a preset by name or path). Every resolved preset is validated against
schema.SCHEMA; problems raise UserError naming the file and key.

    store.py             where presets live; name, alias or path -> file
    resolve.py           `extends` chains, user files' relative paths, validation
    overrides.py         --set KEY=VALUE
    dump.py              a preset as YAML
    listing.py           the catalogue of built-in presets
    checkpoint_names.py  checkpoint file name -> preset
    schema.py            every key, its type and allowed values
    mmaction.py, mmaction_py.py, importer.py   mmaction2 configs -> presets (`tsm presets import`)
"""
from .checkpoint_names import preset_for_checkpoint_name, preset_for_original_name, zoo_checkpoints
from .dump import dump_preset
from .listing import DATASET_ORDER, builtin_presets, list_presets
from .mmaction import REFERENCE_GPUS
from .overrides import apply_overrides, parse_override
from .resolve import base_defaults, deep_merge, load_preset, resolve_preset, validate_partial
from .store import find_preset_file, preset_names

SMALL_PRESET = "tsm_r18_video_1x1x8_25e_small"  # for a user's own videos on a laptop (`tsm prepare custom`)

__all__ = ["DATASET_ORDER", "REFERENCE_GPUS", "SMALL_PRESET", "apply_overrides", "base_defaults", "builtin_presets",
           "deep_merge", "dump_preset", "find_preset_file", "list_presets", "load_preset", "parse_override",
           "preset_for_checkpoint_name", "preset_for_original_name", "resolve_preset", "preset_names",
           "validate_partial", "zoo_checkpoints"]
