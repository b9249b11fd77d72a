"""CPU inference against mmaction2 0.x, side by side in one process, on the same mmaction2-written checkpoint.

Runs in the scratch virtualenv that has mmaction2 0.24.1 (tools/mmaction_reference/README.md), with this
repository on PYTHONPATH:

    PYTHONPATH=. /tmp/mmvenv/bin/python benchmarks/inference_vs_mmaction.py \
        --configs /tmp/mma/mmaction/.mim/configs/recognition/tsm [--allocator] [--rounds 8] [--threads 2]

For TSM-R50, MobileNetV2-TSM and TSM-R101 (8 x 224 x 224, batch 1): mmaction2's forward
(`model(imgs, return_loss=False)`), ours as loaded (`load_model(path)`), ours on the fast path
(`load_model(path, fast=True)`: BatchNorm folded, channels-last), the fast path under bf16 autocast, the
fast path with a bf16 backbone (`load_model(path, fast=True, amp="bf16")`, what `--amp bf16` runs), and
the ONNX export of ours in onnxruntime (2 intra-op threads), and what `tsm export` writes for deployment:
OpenVINO at fp32, bf16 and int8 (NNCF), onnxruntime int8 (static QDQ), run as `tsm predict/test` run them
(`--no-openvino` leaves those out; they need `pip install openvino nncf` in the scratch venv). Weights: mmaction2's model filled with the
deterministic reference values (tests/reference_weights.py) and written by mmcv's save_checkpoint.
Outputs are compared on ../shared/fixtures/videos/demo.mp4 and 8 toy validation videos (data/toy, from
`tsm prepare toy`), decoded through the preset's one-view test steps. `--allocator` tunes glibc's
allocator first, as the `tsm` command does (one process setting, so both sides get it); without it,
what a Python API user gets. Also reports the time spent in convolutions by mmaction2 and by our fast
paths: mmaction2's time over a path's convolution time bounds what that path could reach if every other
operator took no time.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# mmaction2 0.x predates numpy 1.24's removal of np.int and np.float; np.bool is left alone: aliasing it
# breaks numpy.ma, which OpenVINO imports
np.int, np.float = int, float
import mmcv  # noqa: E402

_version, mmcv.__version__ = mmcv.__version__, "1.7.0"  # the 0.24.1 wheel asserts mmcv <= 1.7.0
import mmaction  # noqa: E402,F401

mmcv.__version__ = _version
import torch  # noqa: E402
from mmaction.models import build_model as build_mmaction  # noqa: E402
from mmcv import Config  # noqa: E402
from mmcv.runner import save_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from cpu_options import add_cpu_options, apply_cpu_options  # noqa: E402
from reference_weights import fill_state_dict  # noqa: E402

import tsmcli  # noqa: E402
from tsmcli.data.pipeline import read_clip  # noqa: E402
from tsmcli.data.schemes import scheme_pipeline  # noqa: E402

CASES = {"TSM-R50": ("tsm_r50_1x1x8_50e_kinetics400_rgb", "tsm_r50_1x1x8_50e_k400", (0.5, 1.0)),
         "MobileNetV2-TSM": ("tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb",
                             "tsm_mobilenetv2_dense_1x1x8_100e_k400", (1.0, 1.5)),
         "TSM-R101": ("tsm_r101_1x1x8_50e_sthv1_rgb", "tsm_r101_1x1x8_50e_sthv1", (0.5, 1.0))}


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def real_clips(model):
    steps = scheme_pipeline(model.preset["data"], "efficient")
    videos = [REPO.parent / "shared/fixtures/videos/demo.mp4"]
    videos += sorted((REPO / "data/toy/videos").glob("*/val_000[0-1].mp4"))
    return [read_clip(str(v), steps).imgs[None] for v in videos]


def compare(reference, other):
    """Largest probability difference, top-1 agreement and the largest difference among the top-5 classes."""
    worst = max(float((a - b).abs().max()) for a, b in zip(reference, other))
    top1 = np.mean([int(a.argmax()) == int(b.argmax()) for a, b in zip(reference, other)])
    top5 = max(float((a[0, a[0].argsort(descending=True)[:5]] - b[0, a[0].argsort(descending=True)[:5]]).abs().max())
               for a, b in zip(reference, other))
    return worst, top1, top5


def convolution_ms(fn, clip):
    """(time in convolutions, total operator time) of one call, in ms, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.no_grad():
        fn(clip)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "conv" in e.key or "mkldnn" in e.key)
    return conv / 1e3, total / 1e3


def deployment_engines(path, preset, folder):
    """The same checkpoint as `tsm export` writes it for deployment: OpenVINO fp32 / bf16 / int8 and the
    onnxruntime int8 QDQ graph, run through tsm's ExportedModel (what predict/test run). int8 is
    calibrated on the real clips the outputs are compared on: speed only here (the weights are random);
    its accuracy is judged on the trained toy model (benchmarks/deployment.py)."""
    from tsmcli.export.clips import ClipSet
    from tsmcli.export.whole import export_model
    from tsmcli.runtime.exported import open_exported

    model = tsmcli.load_model(path, preset=preset)
    clips = real_clips(model)
    calibration = ClipSet(clips, [None] * len(clips), ["clip"] * len(clips), "real clips", [])
    xml, int8_xml, int8_onnx = (Path(folder) / f"{preset}{suffix}" for suffix in (".xml", "_int8.xml", "_int8.onnx"))
    export_model(model, xml, 224, 224, format="openvino")
    for out, fmt in ((int8_xml, "openvino"), (int8_onnx, "onnx")):
        export_model(model, out, 224, 224, format=fmt, precision="int8", calibration=calibration,
                     held_out=calibration, min_agreement=0.0)
    return {"openvino fp32": open_exported(xml, precision="fp32"), "openvino bf16": open_exported(xml, precision="bf16"),
            "openvino int8": open_exported(int8_xml), "onnxruntime int8": open_exported(int8_onnx)}


def run(name, config_dir, rounds, folder, with_openvino=True):
    config, preset, norm_scale = CASES[name]
    cfg = Config.fromfile(os.path.join(config_dir, config + ".py"))
    cfg.model.backbone.pretrained = None
    mm = build_mmaction(cfg.model).eval()
    keys = [(k, list(v.shape)) for k, v in mm.state_dict().items()]
    mm.load_state_dict(fill_state_dict(keys, norm_scale))
    path = Path(folder) / f"{config}.pth"
    save_checkpoint(mm, str(path))
    plain = tsmcli.load_model(path, preset=preset)
    fast = tsmcli.load_model(path, preset=preset, fast=True)
    onnx_path = Path(folder) / f"{preset}.onnx"
    from tsmcli.export.whole import export_model
    from tsmcli.runtime.engines import session

    export_model(tsmcli.load_model(path, preset=preset), onnx_path, 224, 224)
    ort_session = session(onnx_path, torch.get_num_threads())
    engines = deployment_engines(path, preset, folder) if with_openvino else {}

    fast_bf16 = tsmcli.load_model(path, preset=preset, fast=True, amp="bf16")  # what --amp bf16 runs

    def autocast_bf16(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fast(x).float()

    contenders = {
        "mmaction2": lambda x: torch.from_numpy(np.asarray(mm(x, return_loss=False))),
        "ours": plain,
        "ours fast fp32": fast,
        "ours fast bf16 autocast": autocast_bf16,
        "ours fast bf16": fast_bf16,
        "onnxruntime": lambda x: torch.from_numpy(ort_session.run(None, {"clip": x.numpy()})[0]),
        **{key: (lambda x, e=engine: e(x)) for key, engine in engines.items()},
    }
    clip = torch.randn(1, 8, 3, 224, 224)
    times = {k: [] for k in contenders}
    with torch.no_grad():
        for fn in contenders.values():
            fn(clip)
        for _ in range(rounds):
            for key, fn in contenders.items():
                times[key].append(timed(lambda: fn(clip)))
        clips = real_clips(plain)
        outputs = {k: [fn(c).float() for c in clips] for k, fn in contenders.items()}
    ms = {k: statistics.median(v) for k, v in times.items()}
    speedup = {k: statistics.median(a / b for a, b in zip(times["mmaction2"], v)) for k, v in times.items()}
    # what bounds a software-side speed-up: the convolutions' own time, in mmaction2 and on our fast paths
    # (profiled in alternation, summed over the rounds, so that the ratios come from the same minutes)
    profiled = ("mmaction2", "ours fast fp32", "ours fast bf16")
    convs = {k: [0.0, 0.0] for k in profiled}
    for _ in range(3):
        for key in profiled:
            convs[key] = [a + b for a, b in zip(convs[key], convolution_ms(contenders[key], clip))]
    return ms, speedup, {k: compare(outputs["ours"], v) for k, v in outputs.items()}, convs, len(clips)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", required=True, help="mmaction2's configs/recognition/tsm folder")
    parser.add_argument("--rounds", type=int, default=8)
    add_cpu_options(parser)
    parser.add_argument("--models", nargs="*", default=list(CASES))
    parser.add_argument("--no-openvino", action="store_true", help="Leave out the OpenVINO and int8 contenders.")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {apply_cpu_options(args)}, batch 1, 8x224x224, {args.rounds} rounds")
    print("\n| model | contender | ms/video | speed vs mmaction2 | max prob diff vs ours | top-1 agreement | "
          "max top-5 prob diff |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            ms, speedup, diffs, convs, count = run(name, args.configs, args.rounds, folder, not args.no_openvino)
            for key in ms:
                worst, top1, top5 = diffs[key]
                print(f"| {name} | {key} | {ms[key]:.0f} | {speedup[key]:.2f}x | {worst:.1e} | {top1:.0%} | {top5:.1e} |")
            for key, (conv, total) in convs.items():  # sums over 3 profiled calls each
                print(f"| {name} | {key}: convolutions {conv / 3:.0f} of {total / 3:.0f} ms ({conv / total:.0%}) | "
                      f"| at most {convs['mmaction2'][1] / conv:.2f}x with all else free | | | |")
            print(f"|  | ({count} real clips compared) | | | | | |")


if __name__ == "__main__":
    main()
