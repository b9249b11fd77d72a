"""TSM models built from a resolved preset's `model` section."""
from ..presets.schema import BACKBONES, SHIFT_MODES
from .head import TSMHead
from .mobilenetv2_tsm import MobileNetV2TSM
from .recognizer import Recognizer
from .resnet_tsm import ResNetTSM
from .shift import ShiftedConv2d, TemporalShift, temporal_shift

__all__ = ["build_recognizer", "Recognizer", "ResNetTSM", "MobileNetV2TSM", "TSMHead", "TemporalShift",
           "ShiftedConv2d", "temporal_shift"]


def build_recognizer(model_cfg: dict, load_pretrained: bool = True, multi_label: bool = False) -> Recognizer:
    """model_cfg: the `model` section of a resolved preset (see presets/_base/tsm.yaml); multi_label: the
    preset's data.multi_class (sigmoid probabilities)."""
    from .pretrained import load_weights_file, resolve_pretrained

    cfg = model_cfg
    pretrained = None
    if load_pretrained and cfg["pretrained"]:
        pretrained = load_weights_file(resolve_pretrained(cfg["pretrained"]))
    segments = cfg["num_segments"]
    if cfg["shift_mode"] not in SHIFT_MODES:
        raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got {cfg['shift_mode']!r}")
    online = cfg["shift_mode"] == "online"
    if cfg["backbone"] == "resnet":
        non_local = cfg["non_local"]
        backbone = ResNetTSM(
            depth=cfg["depth"], num_segments=segments, shift=cfg["shift"], shift_div=cfg["shift_div"],
            shift_place=cfg["shift_place"], temporal_pool=cfg["temporal_pool"],
            non_local=non_local["stages"] if non_local else None,
            non_local_cfg={k: non_local[k] for k in ("mode", "sub_sample", "use_scale")} if non_local else None,
            norm_eval=cfg["norm_eval"], pretrained_state_dict=pretrained, online=online)
    elif cfg["backbone"] == "mobilenetv2":
        if pretrained is not None and not any(k.startswith("features.") for k in pretrained):
            from ..convert import mmcls_mobilenet_v2_to_torchvision
            pretrained = mmcls_mobilenet_v2_to_torchvision(pretrained)  # mmcls naming -> torchvision's
        backbone = MobileNetV2TSM(num_segments=segments, shift=cfg["shift"], shift_div=cfg["shift_div"],
                                  width_mult=cfg["width_mult"], norm_eval=cfg["norm_eval"],
                                  pretrained_state_dict=pretrained, online=online)
    else:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {cfg['backbone']!r}")
    head_segments = segments // 2 if cfg["temporal_pool"] else segments
    head = TSMHead(backbone.out_channels, cfg["num_classes"], head_segments, dropout=cfg["dropout"],
                   init_std=cfg["init_std"])
    return Recognizer(backbone, head, segments, average_clips=cfg["average_clips"],
                      normalize=cfg["normalize"], multi_label=multi_label)
