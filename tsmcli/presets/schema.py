"""What a preset may contain: every key, its type and its allowed values.

`validate(cfg, source)` raises UserError naming the key, the file and the nearest valid key.
"""
import difflib
import numbers

from ..errors import UserError
from ..models.choices import AVERAGE_CLIPS, BACKBONES, NON_LOCAL_MODES, RESNET_DEPTHS, SHIFT_MODES, SHIFT_PLACES
from ..video.reader import DECODERS


class Field:
    def __init__(self, *types, choices=None, check=None, hint=""):
        self.types = types
        self.choices = choices
        self.check = check
        self.hint = hint

    def validate(self, value, path, source):
        if value is None and type(None) in self.types:
            return
        if not _is_instance(value, self.types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in self.types)
            raise UserError(f"{source}: key '{path}' must be {names}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise UserError(f"{source}: key '{path}' must be one of {list(self.choices)}, got {value!r}")
        if self.check is not None and not self.check(value):
            raise UserError(f"{source}: key '{path}' has an impossible value {value!r}: {self.hint}")


def _is_instance(value, types):
    for t in types:
        if t is float and isinstance(value, numbers.Real) and not isinstance(value, bool):
            return True
        if t is int and isinstance(value, bool):
            continue
        if isinstance(value, t):
            return True
    return False


class Section:
    """A mapping with a fixed set of keys; `nullable` lets the whole section be null."""

    def __init__(self, fields, nullable=False):
        self.fields = fields
        self.nullable = nullable

    def validate(self, value, path, source):
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            raise UserError(f"{source}: key '{path or '<top level>'}' must be a mapping, got {value!r}")
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else str(key)
            if key not in self.fields:
                raise UserError(f"{source}: unknown key '{sub_path}'{suggest_key(key, self.fields, path)}")
            self.fields[key].validate(sub, sub_path, source)


class ListOf:
    def __init__(self, item, min_len=0):
        self.item = item
        self.min_len = min_len

    def validate(self, value, path, source):
        if not isinstance(value, list) or len(value) < self.min_len:
            raise UserError(f"{source}: key '{path}' must be a list of at least {self.min_len} items, got {value!r}")
        for i, item in enumerate(value):
            self.item.validate(item, f"{path}[{i}]", source)


class Pipeline:
    """A list of transform steps; each is {type: NAME, param: value, ...} with NAME from PIPELINE_STEPS."""

    def validate(self, value, path, source):
        if not isinstance(value, list):
            raise UserError(f"{source}: key '{path}' must be a list of transform steps")
        for i, step in enumerate(value):
            step_path = f"{path}[{i}]"
            if not isinstance(step, dict) or "type" not in step:
                raise UserError(f"{source}: {step_path} must be a mapping with a 'type' key")
            kind = step["type"]
            if kind not in PIPELINE_STEPS:
                raise UserError(f"{source}: {step_path}.type: unknown transform {kind!r}"
                                f"{suggest_key(kind, PIPELINE_STEPS, None, 'transform')}")
            params = {k: v for k, v in step.items() if k != "type"}
            Section(PIPELINE_STEPS[kind]).validate(params, f"{step_path}({kind})", source)


def suggest_key(key, options, path, what="key"):
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1, cutoff=0.5)
    if close:
        full = f"{path}.{close[0]}" if path else close[0]
        return f"; did you mean '{full}'?" if what == "key" else f"; did you mean {close[0]!r}?"
    return f"; valid {what}s here: {', '.join(sorted(map(str, options)))}"


def positive(v):
    return v > 0


def non_negative(v):
    return v >= 0


SINGLE_LABEL_METRICS = ("top_k_accuracy", "mean_class_accuracy")
MULTI_LABEL_METRICS = ("mean_average_precision", "mmit_mean_average_precision")
METRIC_NAMES = SINGLE_LABEL_METRICS + MULTI_LABEL_METRICS  # mmaction2's (evaluation.metrics, tsm test --metrics)
POS_INT = Field(int, check=positive, hint="must be > 0")
NON_NEG_INT = Field(int, check=non_negative, hint="must be >= 0")
POS_FLOAT = Field(float, check=positive, hint="must be > 0")
NON_NEG_FLOAT = Field(float, check=non_negative, hint="must be >= 0")
PROB = Field(float, check=lambda v: 0 <= v <= 1, hint="must be within [0, 1]")
BOOL = Field(bool)
STR = Field(str)
OPT_STR = Field(str, type(None))
NUM_LIST = ListOf(Field(float))
RGB = ListOf(Field(float), min_len=3)
CROP_SIZE = Field(int, list, check=lambda v: isinstance(v, int) and v > 0 or len(v) == 2,
                  hint="an int or [width, height]")

_SAMPLE = {"clip_len": POS_INT, "frame_interval": POS_INT, "num_clips": POS_INT, "test_mode": BOOL,
           "twice_sample": BOOL, "temporal_jitter": BOOL, "out_of_bound_opt": Field(str, choices=("loop", "repeat_last"))}

PIPELINE_STEPS = {
    "SampleFrames": _SAMPLE,
    "DenseSampleFrames": {**_SAMPLE, "sample_range": POS_INT, "num_sample_positions": POS_INT,
                          "centred": BOOL},
    "Resize": {"scale": ListOf(Field(int, float), min_len=2), "keep_ratio": BOOL,
               "interpolation": Field(str, choices=("bilinear", "nearest", "bicubic", "area"))},
    "MultiScaleCrop": {"input_size": CROP_SIZE, "scales": NUM_LIST, "max_wh_scale_gap": NON_NEG_INT,
                       "random_crop": BOOL, "num_fixed_crops": Field(int, choices=(5, 13))},
    "RandomResizedCrop": {"area_range": NUM_LIST, "aspect_ratio_range": NUM_LIST},
    "CenterCrop": {"crop_size": CROP_SIZE},
    "ThreeCrop": {"crop_size": CROP_SIZE},
    "TenCrop": {"crop_size": CROP_SIZE},
    "Flip": {"flip_ratio": PROB, "direction": Field(str, choices=("horizontal", "vertical")),
             "flip_label_map": Field(dict, type(None))},
    "Normalize": {"mean": RGB, "std": RGB, "to_bgr": BOOL},
    "Imgaug": {"transforms": Field(str, choices=("default",))},
    "PytorchVideoRandAugment": {"magnitude": POS_INT, "num_layers": POS_INT, "prob": PROB},
    "PytorchVideoAugMix": {"magnitude": POS_INT, "alpha": POS_FLOAT, "width": POS_INT, "depth": Field(int)},
}

_SPLIT = Section({"ann_file": OPT_STR, "data_prefix": OPT_STR, "pipeline": Pipeline()})

_REFERENCE_ROW = Section({
    "resolution": OPT_STR, "gpus": OPT_STR, "backbone": OPT_STR, "pretrain": OPT_STR,
    "scheme": Field(str, type(None), choices=("efficient", "accurate", None)),
    "top1": Field(float, type(None)), "top5": Field(float, type(None)),
    "ref_top1": Field(float, type(None)), "ref_top5": Field(float, type(None)),
    "top1_delta": Field(float, type(None)), "top5_delta": Field(float, type(None)),
    "speed_video_s": Field(float, type(None)), "speed_note": OPT_STR, "memory_mb": Field(int, type(None)),
})

SCHEMA = Section({
    "extends": STR,
    "name": OPT_STR,
    "aliases": ListOf(STR),
    "dataset": OPT_STR,
    "description": STR,
    "label_map": OPT_STR,
    "load_from": OPT_STR,
    "inference_only": BOOL,
    "model": Section({
        "backbone": Field(str, choices=BACKBONES),
        "depth": Field(int, type(None), choices=(*RESNET_DEPTHS, None)),
        "width_mult": POS_FLOAT,
        "pretrained": OPT_STR,
        "num_segments": POS_INT,
        "shift": BOOL,
        "shift_div": POS_INT,
        "shift_place": Field(str, choices=SHIFT_PLACES),
        "shift_mode": Field(str, choices=SHIFT_MODES),
        "temporal_pool": BOOL,
        "non_local": Section({
            "mode": Field(str, choices=NON_LOCAL_MODES),
            "stages": ListOf(ListOf(Field(int, choices=(0, 1))), min_len=4),
            "sub_sample": BOOL,
            "use_scale": BOOL,
        }, nullable=True),
        "norm_eval": BOOL,
        "frozen_stages": Field(int, check=lambda v: v >= -1, hint="-1 (none), 0 (the stem) or k (the stem and "
                                                                  "the first k stages)"),
        "num_classes": POS_INT,
        "dropout": Field(float, check=lambda v: 0 <= v < 1, hint="must be within [0, 1)"),
        "init_std": POS_FLOAT,
        "label_smooth_eps": Field(float, check=lambda v: 0 <= v < 1, hint="must be within [0, 1)"),
        "loss_weight": POS_FLOAT,
        "average_clips": Field(str, type(None), choices=AVERAGE_CLIPS),
        "normalize": Section({"mean": RGB, "std": RGB}, nullable=True),
    }),
    "data": Section({
        "format": Field(str, choices=("rawframes", "videos")),
        "decoder": Field(str, choices=DECODERS),
        "filename_tmpl": STR,
        "start_index": Field(int, type(None)),
        "with_offset": BOOL,
        "multi_label": BOOL,
        "videos_per_gpu": POS_INT,
        "workers_per_gpu": NON_NEG_INT,
        "val_videos_per_gpu": Field(int, type(None), check=lambda v: v is None or v > 0, hint="must be > 0"),
        "test_videos_per_gpu": POS_INT,
        "train": _SPLIT,
        "val": _SPLIT,
        "test": _SPLIT,
    }),
    "train": Section({
        "blending": Section({"type": Field(str, choices=("mixup", "cutmix")), "alpha": POS_FLOAT},
                            nullable=True),
    }),
    "optimizer": Section({
        "type": Field(str, choices=("sgd",)),
        "lr": POS_FLOAT,
        "momentum": NON_NEG_FLOAT,
        "weight_decay": NON_NEG_FLOAT,
        "fc_lr5": BOOL,
        "lr_batch_size": Field(int, type(None), check=lambda v: v is None or v > 0, hint="must be > 0 or null"),
        "grad_clip": Field(float, type(None), check=lambda v: v is None or v > 0, hint="must be > 0 or null"),
    }),
    "schedule": Section({
        "epochs": POS_INT,
        "policy": Field(str, choices=("step", "cosine")),
        "steps": ListOf(POS_INT),
        "gamma": POS_FLOAT,
        "min_lr": NON_NEG_FLOAT,
        "warmup_epochs": NON_NEG_FLOAT,
        "warmup_ratio": PROB,
    }),
    "evaluation": Section({
        "interval": POS_INT,
        "metrics": ListOf(Field(str, choices=METRIC_NAMES)),
    }),
    "checkpoint": Section({"interval": POS_INT, "max_keep": Field(int, type(None), check=positive,
                                                              hint="must be > 0, or null to keep every one")}),
    "log": Section({"interval": POS_INT}),
    "reference": ListOf(_REFERENCE_ROW),
})


def validate(cfg, source):
    SCHEMA.validate(cfg, "", source)
    _check_consistency(cfg, source)


def _check_consistency(cfg, source):
    """Rules across keys, on a resolved preset (every key present)."""
    model = cfg["model"]
    if model["backbone"] == "resnet" and model["depth"] is None:
        raise UserError(f"{source}: key 'model.depth' must be set for a resnet backbone")
    if model["temporal_pool"] and model["num_segments"] < 2:
        raise UserError(f"{source}: key 'model.temporal_pool' needs model.num_segments >= 2")
    if model["shift"] and model["shift_div"] < 2:
        raise UserError(f"{source}: key 'model.shift_div' must be >= 2 (it shifts 2 folds of C // shift_div)")
    if model["backbone"] == "mobilenetv2" and model["non_local"]:
        raise UserError(f"{source}: key 'model.non_local' is only supported with a resnet backbone")
