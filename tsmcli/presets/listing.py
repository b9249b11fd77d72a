"""The catalogue of built-in presets (`tsm presets list`)."""
import copy
from functools import cache

from .resolve import load_preset
from .store import preset_names, preset_root

DATASET_ORDER = ["kinetics400", "diving48", "sthv1", "sthv2", "jester", "hmdb51", "ucf101"]


@cache
def _builtin_presets(root):
    return tuple(load_preset(name) for name in preset_names())


def builtin_presets():
    """Every built-in preset, resolved (once per preset folder: the catalogue and the checkpoint-name
    lookup read them all)."""
    return copy.deepcopy(list(_builtin_presets(str(preset_root()))))


def list_presets():
    """The built-in presets, resolved, by dataset then name."""
    presets = builtin_presets()
    order = {d: i for i, d in enumerate(DATASET_ORDER)}
    return sorted(presets, key=lambda p: (order.get(p.get("dataset"), len(order)), p["name"]))
