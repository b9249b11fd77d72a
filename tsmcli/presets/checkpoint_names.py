"""Which preset a checkpoint file is, from its name: a model-zoo file, a name starting with a preset's,
or an original TSM checkpoint's name."""
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from . import store
from .listing import builtin_presets


@cache
def zoo_checkpoints():
    """The model zoo's published checkpoints: file name -> {"url", "config"} (from mmaction2's metafile,
    see tools/make_zoo_checkpoints.py)."""
    return json.loads(resources.files("tsmcli.presets").joinpath("zoo_checkpoints.json").read_text(encoding="utf-8"))


def preset_for_checkpoint_name(filename):
    """`tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth` (a file of the zoo, or a name that starts
    with a preset's), or an original TSM name (`TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth`,
    or `ckpt.pth.tar` in a folder so named) -> our preset name, or None."""
    stem = Path(filename).name
    published = zoo_checkpoints().get(stem)
    if published:
        return store.stem(store.find_preset_file(published["config"]))
    original = preset_for_original_name(filename)
    if original:
        return original
    best = None
    for key in store.index():
        if stem.startswith(key) and (best is None or len(key) > len(best)):
            rest = stem[len(key):]
            if rest == "" or rest[0] in "_.-":
                best = key
    return store.stem(store.index()[best]) if best else None


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

    candidates = [cfg for cfg in builtin_presets() if architecture(cfg)]
    return min(candidates, key=preference)["name"] if candidates else None
