"""Reference fixtures from the original TSM code (mit-han-lab/temporal-shift-module) itself.

    python tools/original_reference/generate.py --repo /path/to/temporal-shift-module

Builds the original `ops.models.TSN` for each case below, wraps it in DataParallel as its main.py does
(so state-dict keys carry `module.`), fills every tensor from its key name (tests/reference_weights.py,
identical here and in our tests), runs the original test-mode forward and writes
tests/data/original/outputs.json: per case the checkpoint file name its README publishes, the key names
and shapes, the top-level fields main.py saves, the input shape and the original's consensus scores.
Needs torch and torchvision only (see README.md beside this file); nothing is downloaded.
"""
import argparse
import json
import os
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))
from reference_weights import NORM_SCALE, fill_value, input_clip  # noqa: E402

# (case, README file name, TSN arguments, segments, input size)
CASES = [
    ("resnet50", "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
     dict(num_class=400, base_model="resnet50"), 8, 64),
    ("resnet50_16seg", "TSM_somethingv2_RGB_resnet50_shift8_blockres_avg_segment16_e45.pth",
     dict(num_class=174, base_model="resnet50"), 16, 32),
    ("resnet101_sthv1", "TSM_something_RGB_resnet101_shift8_blockres_avg_segment8_e45.pth",
     dict(num_class=174, base_model="resnet101"), 8, 32),
    ("mobilenetv2", "TSM_kinetics_RGB_mobilenetv2_shift8_blockres_avg_segment8_e100_dense.pth",
     dict(num_class=400, base_model="mobilenetv2"), 8, 64),
    ("non_local", "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e100_dense_nl.pth",
     dict(num_class=400, base_model="resnet50", non_local=True), 8, 64),
]


def accept_legacy_pretrained_argument():
    """The original calls torchvision.models.resnet50(False); today's torchvision takes only keywords."""
    import torchvision

    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        build = getattr(torchvision.models, name)
        setattr(torchvision.models, name, lambda pretrained=False, _build=build, **kw: _build(weights=None, **kw))


def run_case(name, file_name, kwargs, segments, size):
    norm_scale = (1.0, 1.5) if kwargs["base_model"] == "mobilenetv2" else NORM_SCALE  # see fill_value
    from ops.models import TSN

    TSN.print_spec = False  # its MobileNetV2 branch reads self.print_spec, which __init__ never sets

    net = TSN(kwargs.pop("num_class"), segments, "RGB", consensus_type="avg", dropout=0.5, pretrain="scratch",
              is_shift=True, shift_div=8, shift_place="blockres", print_spec=False, **kwargs)
    model = torch.nn.DataParallel(net)  # as main.py wraps it: keys start with `module.`
    state = model.state_dict()
    model.load_state_dict({k: fill_value(k, tuple(v.shape), norm_scale) for k, v in state.items()})
    model.eval()
    shape = (1, segments, 3, size, size)
    with torch.no_grad():
        scores = net(input_clip(shape).flatten(1, 2))  # the original takes (N, T*3, H, W)
    return {"file_name": file_name, "keys": [[k, list(v.shape)] for k, v in state.items()], "norm_scale": norm_scale,
            "saved_fields": ["epoch", "arch", "state_dict", "optimizer", "best_prec1"],
            "input_shape": list(shape), "consensus": scores.tolist()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True, help="a checkout of mit-han-lab/temporal-shift-module")
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "original"))
    args = parser.parse_args()
    sys.path.insert(0, args.repo)
    accept_legacy_pretrained_argument()
    torch.set_grad_enabled(False)
    cases = {name: run_case(name, file_name, dict(kwargs), segments, size)
             for name, file_name, kwargs, segments, size in CASES}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "outputs.json"), "w") as f:
        json.dump({"source": "mit-han-lab/temporal-shift-module", "cases": cases}, f)
    print("wrote", os.path.join(args.out, "outputs.json"))


if __name__ == "__main__":
    main()
