"""A Recognizer from a resolved preset."""
from typing import Union

from .choices import BACKBONES, SHIFT_MODES
from .head import TSMHead
from .mobilenetv2_tsm import MobileNetV2TSM
from .recognizer import Recognizer
from .resnet_tsm import ResNetTSM


def build_recognizer(preset: dict, load_pretrained: bool = True, labels=None) -> Recognizer:
    """The model of a resolved preset (its `model` section, see presets/configs/_base/tsm.yaml; a multi-label
    model where data.multi_label is set). labels: its class names, where known."""
    from .pretrained import load_weights_file, resolve_pretrained

    cfg = preset["model"]
    pretrained = None
    if load_pretrained and cfg["pretrained"]:
        pretrained = load_weights_file(resolve_pretrained(cfg["pretrained"]))
    segments = cfg["num_segments"]
    if cfg["shift_mode"] not in SHIFT_MODES:
        raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got {cfg['shift_mode']!r}")
    online = cfg["shift_mode"] == "online"
    backbone: Union[ResNetTSM, MobileNetV2TSM]
    if cfg["backbone"] == "resnet":
        non_local = cfg["non_local"]
        backbone = ResNetTSM(
            depth=cfg["depth"], num_segments=segments, shift=cfg["shift"], shift_div=cfg["shift_div"],
            shift_place=cfg["shift_place"], temporal_pool=cfg["temporal_pool"],
            non_local=non_local["stages"] if non_local else None,
            non_local_cfg={k: non_local[k] for k in ("mode", "sub_sample", "use_scale")} if non_local else None,
            norm_eval=cfg["norm_eval"], pretrained_state_dict=pretrained, online=online,
            frozen_stages=cfg["frozen_stages"])
    elif cfg["backbone"] == "mobilenetv2":
        if pretrained is not None and not any(k.startswith("features.") for k in pretrained):
            from ..convert import mmcls_mobilenet_v2_to_torchvision
            pretrained = mmcls_mobilenet_v2_to_torchvision(pretrained)  # mmcls naming -> torchvision's
        backbone = MobileNetV2TSM(num_segments=segments, shift=cfg["shift"], shift_div=cfg["shift_div"],
                                  width_mult=cfg["width_mult"], norm_eval=cfg["norm_eval"],
                                  pretrained_state_dict=pretrained, online=online,
                                  frozen_stages=cfg["frozen_stages"])
    else:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {cfg['backbone']!r}")
    head_segments = segments // 2 if cfg["temporal_pool"] else segments
    head = TSMHead(backbone.out_channels, cfg["num_classes"], head_segments, dropout=cfg["dropout"],
                   init_std=cfg["init_std"])
    return Recognizer(backbone, head, segments, average_clips=cfg["average_clips"], normalize=cfg["normalize"],
                      multi_label=preset["data"]["multi_label"], preset=preset, labels=labels)
