"""ImageNet initialisation from the local torch hub cache (our machines cannot download)."""
import glob
import os

import torch

from ..errors import UserError

# The file torchvision's IMAGENET1K_V1 weights are saved as, and mmcls's MobileNetV2 that mmaction2 uses.
KNOWN_FILES = {
    "torchvision://resnet18": "resnet18-f37072fd.pth",
    "torchvision://resnet34": "resnet34-b627a593.pth",
    "torchvision://resnet50": "resnet50-0676ba61.pth",
    "torchvision://resnet101": "resnet101-63fe2227.pth",
    "torchvision://resnet152": "resnet152-394f9c45.pth",
    "torchvision://mobilenet_v2": "mobilenet_v2-b0353104.pth",
    "mmcls://mobilenet_v2": "mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth",
}


def hub_checkpoint_dir():
    return os.path.join(torch.hub.get_dir(), "checkpoints")


def resolve_pretrained(spec: str) -> str:
    """Map `torchvision://resnet50`, `mmcls://mobilenet_v2` or a file path to an existing local file."""
    if "://" not in spec:
        if not os.path.isfile(spec):
            raise UserError(f"pretrained weights file {spec!r} does not exist (model.pretrained)")
        return spec
    if spec not in KNOWN_FILES:
        raise UserError(f"unknown pretrained source {spec!r} (model.pretrained); known: "
                        f"{', '.join(sorted(KNOWN_FILES))}, or a path to a .pth file")
    folder = hub_checkpoint_dir()
    exact = os.path.join(folder, KNOWN_FILES[spec])
    if os.path.isfile(exact):
        return exact
    stem = KNOWN_FILES[spec].split("-")[0].split("_batch")[0]
    candidates = sorted(glob.glob(os.path.join(folder, stem + "-*.pth")))
    if candidates:
        return candidates[0]
    raise UserError(
        f"ImageNet weights for {spec} are not in the local cache and cannot be downloaded here.\n"
        f"Place {KNOWN_FILES[spec]} in {folder}/ (or set TORCH_HOME), pass a file path with "
        f"--set model.pretrained=/path/to/weights.pth, or train from scratch with --set model.pretrained=null")


def load_weights_file(path):
    from ..checkpoint import safe_torch_load

    obj = safe_torch_load(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    return obj


def check_pretrained(base, state_dict, head_prefix):
    """Load ImageNet weights into a torchvision network; every backbone tensor must come from the file."""
    try:
        missing, unexpected = base.load_state_dict(state_dict, strict=False)
    except RuntimeError as e:  # shapes differ
        raise UserError("the ImageNet weights do not fit this backbone (model.pretrained names a file of "
                        f"another architecture?): {str(e).splitlines()[1].strip()}") from None
    missing = [k for k in missing if not k.startswith(head_prefix)]
    if missing or unexpected:
        raise UserError(f"the ImageNet weights do not fit this backbone: missing {missing[:3]}, unexpected "
                        f"{unexpected[:3]} (model.pretrained names a file of another architecture?)")
