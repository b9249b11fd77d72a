"""Translate a resolved mmaction2 0.x TSM config (as a plain dict) into our preset layout.

Used by `tsm presets import` (importer.py), to write presets/ from mmaction2's own configs
(tools/make_presets.py), and by the tests that check every preset still carries mmaction2's values. Steps that only shape tensors (decode, FormatShape,
Collect, ToTensor) are implicit in our pipelines.
"""
from ..errors import UserError
from .store import base_defaults

REFERENCE_GPUS = 8  # the zoo's learning rates are for 8 GPUs x the config's videos_per_gpu

_IMPLICIT_STEPS = {"RawFrameDecode", "DecordInit", "DecordDecode", "FormatShape", "Collect", "ToTensor"}
_RENAMED_STEPS = {"pytorchvideo.RandAugment": "PytorchVideoRandAugment",
                  "pytorchvideo.AugMix": "PytorchVideoAugMix"}
# pytorchvideo's defaults, which mmaction2's configs use by giving no arguments.
_STEP_DEFAULTS = {
    "SampleFrames": {"clip_len": 1, "frame_interval": 1, "test_mode": False, "twice_sample": False},
    "DenseSampleFrames": {"clip_len": 1, "frame_interval": 1, "test_mode": False, "twice_sample": False,
                          "sample_range": 64, "num_sample_positions": 10},
    "Resize": {"keep_ratio": True, "interpolation": "bilinear"},
    "MultiScaleCrop": {"scales": [1, 0.875, 0.75, 0.66], "max_wh_scale_gap": 1, "random_crop": False,
                       "num_fixed_crops": 5},
    "RandomResizedCrop": {"area_range": [0.08, 1.0], "aspect_ratio_range": [0.75, 4 / 3]},
    "Flip": {"flip_ratio": 0.5, "direction": "horizontal", "flip_label_map": None},
    "Normalize": {"to_bgr": False},
    "PytorchVideoRandAugment": {"magnitude": 9, "num_layers": 2, "prob": 0.5},
    "PytorchVideoAugMix": {"magnitude": 3, "alpha": 1.0, "width": 3, "depth": -1},
}


def pipeline_from_mmaction(steps):
    out = []
    for step in steps:
        kind = step["type"]
        if kind in _IMPLICIT_STEPS:
            continue
        kind = _RENAMED_STEPS.get(kind, kind)
        params = {k: v for k, v in step.items() if k != "type"}
        if kind == "Flip" and params.get("flip_label_map"):
            params["flip_label_map"] = {int(k): int(v) for k, v in
                                        sorted(params["flip_label_map"].items(), key=lambda kv: int(kv[0]))}
        defaults = {k: v for k, v in _STEP_DEFAULTS.get(kind, {}).items() if k not in params}
        out.append({"type": kind, **params, **defaults})
    return out


def _max_keep(checkpoint_config):
    """mmcv's max_keep_ckpts where the config sets it (-1 keeps every one); where it does not, tsm's
    default: mmcv keeps every epoch, which for a long schedule fills a disk."""
    if "max_keep_ckpts" not in checkpoint_config:
        return base_defaults()["checkpoint"]["max_keep"]
    keep = checkpoint_config["max_keep_ckpts"]
    return keep if keep > 0 else None


def preset_from_mmaction(cfg):
    """Our preset's values of a resolved mmaction2 config. A value it does not carry is refused, naming
    its key (see `settings_without_effect`), never dropped."""
    settings_without_effect(cfg)
    model, backbone, head = cfg["model"], cfg["model"]["backbone"], cfg["model"]["cls_head"]
    kind = backbone["type"]
    nl = backbone.get("non_local_cfg") or {} if any(map(any, backbone.get("non_local") or [])) else None
    segments = backbone.get("num_segments", 8)
    if head.get("num_segments", 8) != segments:
        raise UserError("mmaction2 config has different num_segments in backbone and head")
    out_model = {
        "backbone": "resnet" if kind == "ResNetTSM" else "mobilenetv2",
        "depth": backbone.get("depth") if kind == "ResNetTSM" else None,
        "width_mult": backbone.get("widen_factor", 1.0),
        "pretrained": backbone.get("pretrained"),
        "num_segments": segments,
        "shift": backbone.get("is_shift", True),
        "shift_div": backbone.get("shift_div", 8),
        "shift_place": backbone.get("shift_place", "blockres"),
        "shift_mode": "bidirectional",  # mmaction2's shift; ours also has the paper's online one
        "temporal_pool": backbone.get("temporal_pool", False),
        "non_local": None if not nl else {
            "mode": nl.get("mode", "embedded_gaussian"),
            "stages": [list(s) for s in backbone["non_local"]],
            "sub_sample": nl.get("sub_sample", False),
            "use_scale": nl.get("use_scale", True),
        },
        "norm_eval": backbone.get("norm_eval", False),
        "frozen_stages": backbone.get("frozen_stages", -1),
        "num_classes": head["num_classes"],
        "dropout": head.get("dropout_ratio", 0.8),
        "init_std": head.get("init_std", 0.001),
        "label_smooth_eps": head.get("label_smooth_eps", 0.0),  # multi-label targets only, as in mmaction2
        "loss_weight": (head.get("loss_cls") or {}).get("loss_weight", 1.0),
        "average_clips": (model.get("test_cfg") or {}).get("average_clips"),
        "normalize": None,
    }
    for hook in cfg.get("module_hooks") or []:
        if hook["type"] == "GPUNormalize":
            out_model["normalize"] = {"mean": hook["mean"], "std": hook["std"]}
    data = dict(cfg["data"])
    inference_only = "train" not in data  # mmaction2's *_inference_* configs describe a test set only
    if inference_only:
        data["train"] = data["val"] = data["test"]
    train = data["train"]
    is_video = train["type"] == "VideoDataset"
    out_data = {
        "format": "videos" if is_video else "rawframes",
        "decoder": "auto",  # mmaction2 decodes with decord; ours picks the fastest installed decoder
        "filename_tmpl": train.get("filename_tmpl", "img_{:05}.jpg"),
        "start_index": train.get("start_index"),
        "with_offset": train.get("with_offset", False),
        "multi_label": train.get("multi_class", False),
        "videos_per_gpu": data["videos_per_gpu"],
        "workers_per_gpu": data["workers_per_gpu"],
        "val_videos_per_gpu": (data.get("val_dataloader") or {}).get("videos_per_gpu"),
        "test_videos_per_gpu": (data.get("test_dataloader") or {}).get("videos_per_gpu", 1),
    }
    for split in ("train", "val", "test"):
        out_data[split] = {"ann_file": data[split]["ann_file"], "data_prefix": data[split]["data_prefix"],
                           "pipeline": pipeline_from_mmaction(data[split]["pipeline"])}
    if inference_only:  # the recipe sections stay the base's; training such a preset is refused
        return {"inference_only": True, "load_from": cfg.get("load_from"), "model": out_model, "data": out_data}
    blending = (model.get("train_cfg") or {}).get("blending")
    optimizer, lr = cfg["optimizer"], cfg["lr_config"]
    clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
    return {
        "inference_only": False,
        "load_from": cfg.get("load_from"),
        "model": out_model,
        "data": out_data,
        "train": {"blending": None if not blending else {
            "type": {"MixupBlending": "mixup", "CutmixBlending": "cutmix"}[blending["type"]],
            "alpha": blending["alpha"]}},
        "optimizer": {
            "type": optimizer["type"].lower(),
            "lr": optimizer["lr"],
            "momentum": optimizer.get("momentum", 0.0),
            "weight_decay": optimizer.get("weight_decay", 0.0),
            "fc_lr5": (optimizer.get("paramwise_cfg") or {}).get("fc_lr5", False),
            "lr_batch_size": REFERENCE_GPUS * data["videos_per_gpu"],  # the zoo's lr is for 8 GPUs
            "grad_clip": clip["max_norm"] if clip else None,
        },
        "schedule": {
            "epochs": cfg["total_epochs"],
            "policy": {"step": "step", "CosineAnnealing": "cosine"}[lr["policy"]],
            "steps": list(lr.get("step", [])),
            "gamma": lr.get("gamma", 0.1),
            "min_lr": lr.get("min_lr", 0.0),
            "warmup_epochs": lr.get("warmup_iters", 0) if lr.get("warmup") else 0,
            "warmup_ratio": lr.get("warmup_ratio", 0.1),
        },
        "evaluation": {"interval": cfg["evaluation"]["interval"], "metrics": list(cfg["evaluation"]["metrics"])},
        "checkpoint": {"interval": cfg["checkpoint_config"]["interval"],
                       "max_keep": _max_keep(cfg["checkpoint_config"])},
    }


# Every key of the parts of a config that preset_from_mmaction translates: CARRIED into the preset, or FIXED
# (mmaction2's default, the one value tsm computes the same as: a config may set it to that value only),
# or WITHOUT_EFFECT on what is trained or computed (reported as not read). Anything else is refused.
_CARRIED = {
    "model": {"type", "backbone", "cls_head", "train_cfg", "test_cfg"},
    "model.backbone:ResNetTSM": {"type", "depth", "pretrained", "num_segments", "is_shift", "shift_div", "shift_place",
                                 "temporal_pool", "non_local", "non_local_cfg", "norm_eval", "frozen_stages"},
    "model.backbone:MobileNetV2TSM": {"type", "pretrained", "widen_factor", "num_segments", "is_shift", "shift_div",
                                      "norm_eval", "frozen_stages"},
    "model.backbone.non_local_cfg": {"mode", "sub_sample", "use_scale"},
    "model.cls_head": {"type", "num_classes", "in_channels", "num_segments", "dropout_ratio", "init_std",
                       "label_smooth_eps", "loss_cls", "multi_class", "is_shift", "temporal_pool"},
    "model.cls_head.loss_cls": {"type", "loss_weight"},
    "model.train_cfg": {"blending"},
    "model.train_cfg.blending": {"type", "alpha", "num_classes"},
    "model.test_cfg": {"average_clips"},
    "optimizer": {"type", "lr", "momentum", "weight_decay", "paramwise_cfg", "constructor"},
    "optimizer.paramwise_cfg": {"fc_lr5"},
    "optimizer_config": {"grad_clip"},
    "optimizer_config.grad_clip": {"max_norm"},
    "lr_config": {"policy", "step", "gamma", "min_lr", "warmup", "warmup_iters", "warmup_ratio", "warmup_by_epoch"},
    "data": {"videos_per_gpu", "workers_per_gpu", "train", "val", "test", "val_dataloader", "test_dataloader"},
    "data.loader": {"videos_per_gpu"},
    "data.split": {"type", "ann_file", "data_prefix", "pipeline", "filename_tmpl", "start_index", "with_offset",
                   "multi_class", "num_classes"},
}
_CONV_BN = {"conv_cfg": {"type": "Conv"}, "norm_cfg": {"type": "BN2d", "requires_grad": True}, "with_cp": False}
_FIXED = {
    "model": {"neck": None},
    "model.backbone:ResNetTSM": {**_CONV_BN, "torchvision_pretrain": True, "in_channels": 3, "num_stages": 4,
                                 "out_indices": [3], "strides": [1, 2, 2, 2], "dilations": [1, 1, 1, 1],
                                 "style": "pytorch", "act_cfg": {"type": "ReLU", "inplace": True},
                                 "partial_bn": False},
    "model.backbone:MobileNetV2TSM": {**_CONV_BN, "out_indices": [7], "act_cfg": {"type": "ReLU6", "inplace": True}},
    # mmcv's NonLocal3d has no normalisation unless asked; the zoo's blocks (and ours) have a BatchNorm
    "model.backbone.non_local_cfg": {"norm_cfg": {"type": "BN3d", "requires_grad": True}},
    "model.cls_head": {"spatial_type": "avg", "consensus": {"type": "AvgConsensus", "dim": 1}},
    "model.test_cfg": {"feature_extraction": False},
    "optimizer": {"nesterov": False, "dampening": 0},
    "optimizer_config.grad_clip": {"norm_type": 2},
    "lr_config": {"by_epoch": True},
    "data.split": {"modality": "RGB", "sample_by_class": False, "power": 0, "dynamic_length": False},
}
_FIXED_UNLESS_SET = {("model.backbone.non_local_cfg", "norm_cfg"): None}  # mmaction2's default, where it differs
_WITHOUT_EFFECT = {
    "model.cls_head": {"topk"},  # the accuracies logged while training
    "model.test_cfg": {"max_testing_views"},  # views per forward pass at test time: memory, not results
    "data.split": {"test_mode"},  # set by mmaction2's own builder per split
    "data.loader": {"workers_per_gpu"},  # loading speed
}


def settings_without_effect(cfg):
    """The keys of the translated parts of a config that change nothing tsm computes (as
    "model.test_cfg.max_testing_views"); raises UserError naming any key it neither carries nor computes
    the same as, with its value and what it would take."""
    found = []
    model = cfg.get("model") or {}
    backbone = model.get("backbone") or {}
    kind = backbone.get("type")
    if kind not in ("ResNetTSM", "MobileNetV2TSM"):
        raise UserError(f"model.backbone.type = {kind!r}: tsm builds ResNetTSM and MobileNetV2TSM")
    if model.get("type", "Recognizer2D") != "Recognizer2D":
        raise UserError(f"model.type = {model['type']!r}: tsm's TSM models are mmaction2's Recognizer2D")
    head = model.get("cls_head") or {}
    if head.get("type", "TSMHead") != "TSMHead":
        raise UserError(f"model.cls_head.type = {head['type']!r}: tsm's head is mmaction2's TSMHead")
    sections = [("model", "model", model), (f"model.backbone:{kind}", "model.backbone", backbone),
                ("model.backbone.non_local_cfg", "model.backbone.non_local_cfg", backbone.get("non_local_cfg")),
                ("model.cls_head", "model.cls_head", head),
                ("model.cls_head.loss_cls", "model.cls_head.loss_cls", head.get("loss_cls")),
                ("model.train_cfg", "model.train_cfg", model.get("train_cfg")),
                ("model.train_cfg.blending", "model.train_cfg.blending", (model.get("train_cfg") or {}).get("blending")),
                ("model.test_cfg", "model.test_cfg", model.get("test_cfg")),
                ("optimizer", "optimizer", cfg.get("optimizer")),
                ("optimizer.paramwise_cfg", "optimizer.paramwise_cfg", (cfg.get("optimizer") or {}).get("paramwise_cfg")),
                ("optimizer_config", "optimizer_config", cfg.get("optimizer_config")),
                ("optimizer_config.grad_clip", "optimizer_config.grad_clip",
                 (cfg.get("optimizer_config") or {}).get("grad_clip")),
                ("lr_config", "lr_config", cfg.get("lr_config")),
                ("data", "data", cfg.get("data"))]
    sections += [("data.split", f"data.{split}", (cfg.get("data") or {}).get(split)) for split in ("train", "val", "test")]
    sections += [("data.loader", f"data.{loader}", (cfg.get("data") or {}).get(loader))
                 for loader in ("val_dataloader", "test_dataloader")]
    for table, path, section in sections:
        if table == "model.backbone.non_local_cfg" and any(map(any, backbone.get("non_local") or [])):
            section = section or {}  # blocks in play: mmaction2's defaults for what it leaves out must be tsm's
        if not isinstance(section, dict):
            continue
        fixed = _FIXED.get(table, {})
        for key, value in section.items():
            if key in _CARRIED.get(table, ()) or key in fixed:
                continue
            if key in _WITHOUT_EFFECT.get(table, ()):
                found.append(f"{path}.{key}")
                continue
            carried = ", ".join(sorted(_CARRIED.get(table, ())))
            raise UserError(f"{path}.{key} = {value!r}: tsm has no such setting and would drop it; remove it to "
                            f"train as mmaction2 does without it ({path} carries: {carried})")
        for key, ours in fixed.items():
            value = section.get(key, _FIXED_UNLESS_SET.get((table, key), ours))
            if _plain(value) != ours:
                fix = "set that" if (table, key) in _FIXED_UNLESS_SET else "set that, or leave it out"
                raise UserError(f"{path}.{key} = {value!r}: tsm computes this as {ours!r} only; {fix}")
    _check_consistent(cfg, backbone, head)
    return found


def _check_consistent(cfg, backbone, head):
    loss = (head.get("loss_cls") or {}).get("type", "CrossEntropyLoss")
    multi = head.get("multi_class", False)
    if loss != ("BCELossWithLogits" if multi else "CrossEntropyLoss"):
        raise UserError(f"model.cls_head.loss_cls.type = {loss!r}: tsm trains "
                        + ("multi-label models (multi_class=True) with BCELossWithLogits" if multi else
                           "single-label models with CrossEntropyLoss"))
    if head.get("temporal_pool", False) != backbone.get("temporal_pool", False):
        raise UserError("model.cls_head.temporal_pool differs from model.backbone.temporal_pool: set both the same")
    if backbone.get("temporal_pool") and not head.get("is_shift", True):
        raise UserError("model.cls_head.is_shift = False with temporal_pool: tsm's head halves the segments then; "
                        "set is_shift=True")
    warmup = (cfg.get("lr_config") or {}).get("warmup")
    if warmup not in (None, "linear"):
        raise UserError(f"lr_config.warmup = {warmup!r}: tsm warms up linearly only")
    if warmup and not (cfg.get("lr_config") or {}).get("warmup_by_epoch", False):  # mmcv's default: by iteration
        raise UserError("lr_config.warmup_by_epoch = False: tsm counts warmup in epochs; give warmup_iters in "
                        "epochs with warmup_by_epoch=True")


def _plain(value):
    """Tuples as lists, as a config read from YAML or JSON has them."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
