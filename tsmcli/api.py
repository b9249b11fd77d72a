"""The Python API: build and load models from presets and checkpoints."""
from pathlib import Path

from .checkpoint import read_checkpoint
from .convert import ORIGINAL_SORTED_CLASSES, original_to_our_class_order
from .errors import UserError
from .labels import class_names
from .models import build_recognizer
from .presets import preset_for_checkpoint_name, resolve_preset


def build_model(preset, pretrained=True, **overrides):
    """A model from a preset (name, alias, YAML path or resolved dict).

    Keyword overrides use `__` for nesting: build_model("tsm_r50_1x1x8_50e_k400", model__num_classes=10).
    pretrained=False skips ImageNet initialisation (random init, as tests use).
    """
    sets = [(key.replace("__", "."), value) for key, value in overrides.items()]
    cfg = resolve_preset(preset, sets)
    model = build_recognizer(cfg["model"], load_pretrained=pretrained, multi_label=cfg["data"]["multi_class"])
    model.preset = cfg
    model.labels = class_names(cfg)
    return model


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
    model = build_model(preset, pretrained=False, **overrides)
    state = ckpt["state_dict"]
    labels = ckpt.get("labels") or class_names(model.preset)
    if ckpt["format"] == "original" and model.preset.get("dataset") in ORIGINAL_SORTED_CLASSES and labels:
        state = original_to_our_class_order(state, labels)
    fc = state.get("head.fc.weight")
    expected = model.head.fc.weight.shape
    if fc is not None and tuple(fc.shape) != tuple(expected):
        raise UserError(f"{checkpoint}: classifier has {fc.shape[0]} classes x {fc.shape[1]} features, "
                        f"the preset '{model.preset['name']}' builds {expected[0]} x {expected[1]}; pick the "
                        "matching preset or set model.num_classes")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise UserError(f"{checkpoint} ({ckpt['format']} format) does not fit preset "
                        f"'{model.preset['name']}': missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                        f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}")
    model.labels = labels
    model.checkpoint_format = ckpt["format"]
    model = model.to(device).eval()
    if fast:
        import torch

        from .models.fast import prepare_for_inference

        prepare_for_inference(model, dtype=torch.bfloat16 if amp else None)
    return model


def decoder_override(decoder):
    """The load_model / build_model keyword of a --decoder choice ({} for none: the preset's data.decoder),
    checked to work here first, so that a missing decoder says what to install before a model loads."""
    if not decoder:
        return {}
    from .video import resolve_decoder

    resolve_decoder(decoder)
    return {"data__decoder": decoder}


def load_for_inference(checkpoint, preset=None, device="cpu", fast=True, amp=None, backend="torch", kind="whole",
                       say=None, **overrides):
    """What the inference commands run: (model, the autocast dtype to run it under, or None).

    bf16 on the fast path converts the backbone once (load_model's amp); otherwise, fp16 included,
    autocast casts at each call, which keeps overflow-prone ops such as softmax in fp32 for fp16.
    An exported file (.onnx, OpenVINO .xml) runs in its engine (export/exported.py); so does a checkpoint
    with backend onnxruntime or openvino, exported once into a cache (kind: whole, or stream_step for
    tsm stream's incremental mode). OpenVINO takes amp=bf16 as its inference precision."""
    import torch

    from .devices import amp_dtype

    if backend == "pytorch":
        backend = "torch"
    from .export.engines import BACKENDS, is_exported

    if backend not in BACKENDS:
        raise UserError(f"--backend {backend}: use one of {', '.join(BACKENDS)}")
    if is_exported(checkpoint) or backend != "torch":
        return _load_exported(checkpoint, preset, device, amp, backend, kind, say, overrides), None

    dtype = amp_dtype(amp, device)
    converted = fast and dtype == torch.bfloat16
    model = load_model(checkpoint, preset=preset, device=device, fast=fast, amp="bf16" if converted else None,
                       **overrides)
    return model, None if converted else dtype


def _load_exported(checkpoint, preset, device, amp, backend, kind, say, overrides):
    import torch

    from .export.cache import exported_checkpoint
    from .export.engines import SUFFIX_BACKEND, is_exported
    from .export.exported import open_exported

    if torch.device(device).type != "cpu":
        raise UserError(f"--device {device}: exported models and --backend {backend} run on the CPU here")
    data_overrides = {k: v for k, v in overrides.items() if k.startswith("data__")}  # how input is read: ours
    if amp not in (None, "bf16"):
        raise UserError(f"--amp {amp}: exported models run at the precision they were exported at (an OpenVINO "
                        "model also at --amp bf16)")
    if is_exported(checkpoint):
        given = SUFFIX_BACKEND[Path(str(checkpoint)).suffix.lower()]
        if backend not in ("torch", given):
            raise UserError(f"--backend {backend}: {checkpoint} runs in {given}")
        if preset is not None:
            raise UserError(f"--preset: {checkpoint} carries its preset; export again to change it")
        path = checkpoint
    else:
        model_overrides = {k: v for k, v in overrides.items() if k not in data_overrides}
        path = exported_checkpoint(checkpoint, backend, kind, preset, overrides=model_overrides, say=say)
        given = backend
    if amp and given != "openvino":
        raise UserError("--amp bf16: onnxruntime has no bf16 convolutions on the CPU; use --backend openvino, or "
                        "the PyTorch backend")
    model = open_exported(path, precision="bf16" if amp else None)
    for key, value in data_overrides.items():  # e.g. the decoder
        model.preset["data"][key.split("__", 1)[1]] = value
    return model
