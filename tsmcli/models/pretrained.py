"""ImageNet initialisation: the published weights each preset names, downloaded once into the torch hub
cache (tsmcli.download), or a local file."""
import os

from ..download import cached_download
from ..errors import PresetKeyError, UserError

# torchvision's IMAGENET1K_V1 weights, and mmcls's MobileNetV2 that mmaction2 0.x initialises from.
KNOWN_URLS = {
    "torchvision://resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "torchvision://resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "torchvision://resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "torchvision://resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "torchvision://resnet152": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
    "torchvision://mobilenet_v2": "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    "mmcls://mobilenet_v2": "https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/"
                            "mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth",
}


def resolve_pretrained(spec: str) -> str:
    """`torchvision://resnet50`, `mmcls://mobilenet_v2` (that exact file, from the cache or downloaded
    into it) or a file path -> a local file."""
    if "://" not in spec:
        if not os.path.isfile(spec):
            raise UserError(f"pretrained weights file {spec!r} does not exist (model.pretrained)")
        return spec
    if spec not in KNOWN_URLS:
        raise UserError(f"unknown pretrained source {spec!r} (model.pretrained); known: "
                        f"{', '.join(sorted(KNOWN_URLS))}, or a path to a .pth file")
    try:
        return str(cached_download(KNOWN_URLS[spec], what="ImageNet weights"))
    except UserError as e:
        raise PresetKeyError(f"ImageNet weights for {spec}: {e}", "model.pretrained",
                             "a weights file (/path/to/weights.pth), or to null to start from random weights "
                             "(build_model(..., pretrained=False))") from None


def load_weights_file(path):
    from ..safe_load import safe_torch_load

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
