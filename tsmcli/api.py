"""PyTorch models from presets and checkpoints: build_model, load_model (for inference, the Predictor of
tsmcli.inference holds one with its preprocessing)."""

from .checkpoint import read_checkpoint
from .convert import ORIGINAL_SORTED_CLASSES, original_to_our_class_order
from .errors import UserError
from .labels import class_names
from .models import build_recognizer
from .presets import preset_for_checkpoint_name, resolve_preset


def build_model(preset, pretrained=True, labels=None, **overrides):
    """A model from a preset (name, alias, YAML path or resolved dict).

    Keyword overrides use `__` for nesting: build_model("tsm_r50_1x1x8_50e_k400", model__num_classes=10).
    pretrained=False skips ImageNet initialisation (random init, as tests use). labels: the class names
    [default: the preset's label map, where it has one].
    """
    sets = [(key.replace("__", "."), value) for key, value in overrides.items()]
    cfg = resolve_preset(preset, sets)
    return build_recognizer(cfg, load_pretrained=pretrained, labels=labels or class_names(cfg))


def load_model(checkpoint, preset=None, device="cpu", fast=False, amp=None, **overrides):
    """A model in eval mode with the checkpoint's weights (ours, mmaction2 0.x or original TSM format).

    fast=True: for inference only, BatchNorm folded into the convolutions and channels-last memory
    (models/fast.py; same outputs up to float rounding). Off by default here, since a model loaded from
    Python may be trained further; the inference commands (predict, test, stream, benchmark) turn it on.
    amp="bf16" (with fast=True): the backbone's weights and activations in bf16, the head in fp32.

    The preset comes from `preset` if given, else from the checkpoint (ours embeds it), else from a
    model-zoo file name such as tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth.
    `model.labels` holds the class names where they are known.
    """
    if amp not in (None, "bf16") or (amp and not fast):
        raise UserError(f"load_model(amp={amp!r}): only amp='bf16' with fast=True; otherwise run the model "
                        "under torch.autocast")
    ckpt = read_checkpoint(checkpoint)
    if preset is None:
        preset = ckpt.get("preset") or preset_for_checkpoint_name(str(checkpoint))
        if preset is None:
            raise UserError(f"{checkpoint}: the file does not say which preset it is; pass one "
                            "(--preset NAME, or load_model(path, preset=NAME))")
    model = build_model(preset, pretrained=False, labels=ckpt.get("labels"), **overrides)
    state = ckpt["state_dict"]
    labels = model.labels
    if ckpt["format"] == "original" and model.preset.get("dataset") in ORIGINAL_SORTED_CLASSES and labels:
        state = original_to_our_class_order(state, labels)
    fc = state.get("head.fc.weight")
    expected = model.head.fc.weight.shape
    if fc is not None and tuple(fc.shape) != tuple(expected):
        raise UserError(f"{checkpoint}: classifier has {fc.shape[0]} classes x {fc.shape[1]} features, "
                        f"the preset '{model.preset['name']}' builds {expected[0]} x {expected[1]}; pick the "
                        "matching preset or set model.num_classes")
    own = model.state_dict()
    for name, tensor in state.items():
        if name in own and tuple(tensor.shape) != tuple(own[name].shape):
            raise UserError(f"{checkpoint}: tensor {name} has shape {tuple(tensor.shape)}, the preset "
                            f"'{model.preset['name']}' builds {tuple(own[name].shape)}; pick the matching preset")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{checkpoint} ({ckpt['format']} format) does not fit preset "
                        f"'{model.preset['name']}': missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                        f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}")
    model.checkpoint_format = ckpt["format"]
    model = model.to(device).eval()
    if fast:
        import torch

        model.prepare_for_inference(dtype=torch.bfloat16 if amp else None)
    return model
