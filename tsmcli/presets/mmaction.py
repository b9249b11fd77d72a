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
    model, backbone, head = cfg["model"], cfg["model"]["backbone"], cfg["model"]["cls_head"]
    kind = backbone["type"]
    if kind not in ("ResNetTSM", "MobileNetV2TSM"):
        raise UserError(f"unsupported mmaction2 backbone {kind!r}")
    nl = backbone.get("non_local_cfg") or None
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
            "warmup_epochs": lr.get("warmup_iters", 0) if lr.get("warmup_by_epoch") else 0,
            "warmup_ratio": lr.get("warmup_ratio", 0.1),
        },
        "evaluation": {"interval": cfg["evaluation"]["interval"], "metrics": list(cfg["evaluation"]["metrics"])},
        "checkpoint": {"interval": cfg["checkpoint_config"]["interval"],
                       "max_keep": _max_keep(cfg["checkpoint_config"])},
    }
