"""Deployment on the CPU, side by side in one process, as the commands run it (glibc allocator tuned and,
for exported models, PyTorch at 1 thread and the engine at --threads, as `tsm stream`/`predict` do):

1. `stream`: the streaming step of MobileNetV2-TSM (online shift), 224x224, batch 1, one frame per step:
   PyTorch's fast path (fp32, bf16 backbone) against the exported step in onnxruntime (fp32) and
   OpenVINO (fp32, bf16), ms per frame; contenders interleaved round by round, medians.
2. `throughput`: whole clips (8x224x224) of TSM-R50, MobileNetV2-TSM and TSM-R101 at batch 1, 8 and 32:
   PyTorch fast fp32 / bf16, onnxruntime fp32 / int8, OpenVINO fp32 / bf16 / int8, video/s; random
   weights (speed does not depend on them; int8 calibrated on random clips, speed only). Peak memory:
   `--memory` times each contender in its own process (`tsm benchmark model`) for its peak RSS.
3. `calibration`: int8 calibration clip counts on a trained toy model (a work dir of `tsm train`, e.g.
   scripts/run.sh's): top-1 agreement with fp32 and accuracy on the 64 held-out validation clips.

    python benchmarks/deployment.py stream [--rounds 30] [--block 10] [--threads 2]
    python benchmarks/deployment.py throughput [--models TSM-R50] [--batches 1 8 32] [--memory]
    python benchmarks/deployment.py calibration --work-dir work_dirs/tsm_r18_1x1x8_toy
"""
import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import tsmcli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from random_models import calibrated  # noqa: E402

from tsmcli.allocator import tune_cpu_allocator  # noqa: E402
from tsmcli.export.clips import ClipSet  # noqa: E402
from tsmcli.export.whole import export_model  # noqa: E402
from tsmcli.inference import Predictor  # noqa: E402
from tsmcli.runtime.exported import open_exported  # noqa: E402

MODELS = {"TSM-R50": "tsm_r50_1x1x8_50e_k400", "MobileNetV2-TSM": "tsm_mobilenetv2_dense_1x1x8_100e_k400",
          "TSM-R101": "tsm_r101_1x1x8_50e_sthv1"}
DEMO = REPO.parent / "shared/fixtures/videos/demo.mp4"


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def interleaved(contenders, rounds, warmup=3):
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in contenders}
    for _ in range(rounds):
        for key, fn in contenders.items():
            times[key].append(timed(fn))
    return times


def stream(args):
    from tsmcli.export.stream_step import export_step
    from tsmcli.inference import FrameTransform
    from tsmcli.streaming import IncrementalStream, frames_of

    model = calibrated(MODELS["MobileNetV2-TSM"], model__shift_mode="online", clip=torch.randn(2, 8, 3, 224, 224))
    prepare = FrameTransform(model.preset)
    frames = [prepare(f) for _, f in list(frames_of(str(DEMO))[1])[::3][:32]]
    runners = {}
    fast = tsmcli.load_model(_saved(model, args.folder), fast=True)
    bf16 = tsmcli.load_model(_saved(model, args.folder), fast=True, amp="bf16")
    runners["PyTorch fast fp32"] = IncrementalStream(fast)
    runners["PyTorch fast bf16"] = IncrementalStream(bf16)
    for name, fmt, precision in (("step.onnx", "onnx", "fp32"), ("step.xml", "openvino", "fp32"),
                                 ("step_bf16.xml", "openvino", "bf16")):
        export_step(model, Path(args.folder) / name, 224, 224, frames, precision, fmt, min_agreement=0.0)  # speed only
        engine = "onnxruntime" if fmt == "onnx" else "OpenVINO"
        runners[f"{engine} {precision}"] = open_exported(Path(args.folder) / name, threads=args.threads).stream()
    torch_threads = {k: (args.threads if k.startswith("PyTorch") else 1) for k in runners}

    # Round by round, each contender runs a block of steps with its own thread setting (3 untimed, then
    # `block` timed: switching PyTorch's thread count, and its OpenMP threads still spinning from the
    # previous contender, would otherwise be timed too); a round's figure is the block's median.
    times = {k: [] for k in runners}
    with torch.no_grad():
        for r in range(args.rounds):
            for key, runner in runners.items():
                torch.set_num_threads(torch_threads[key])
                block = []
                for i in range(3 + args.block):
                    frame = frames[(r + i) % len(frames)]
                    elapsed = timed(lambda: runner.step(frame))
                    if i >= 3:
                        block.append(elapsed)
                times[key].append(statistics.median(block))
    base = times["PyTorch fast fp32"]
    print(f"\nStreaming step, MobileNetV2-TSM online, 224x224, batch 1, {args.threads} threads, {args.rounds} rounds")
    print("| contender | ms per frame | speed vs PyTorch fast fp32 |")
    print("|---|---|---|")
    for key, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(base, values))
        print(f"| {key} | {statistics.median(values):.2f} | {ratio:.2f}x |")


def _saved(model, folder):
    path = Path(folder) / f"{model.preset['name']}.pth"
    if not path.exists():
        tsmcli.save_checkpoint(path, model, model.preset)
    return path


def throughput(args):
    print(f"\nWhole clips, 8x224x224, {args.threads} threads, video/s (median ms per batch in brackets)")
    print("| model | contender | " + " | ".join(f"batch {b}" for b in args.batches) + " |")
    print("|---|---|" + "---|" * len(args.batches))
    for name in args.models:
        model = calibrated(MODELS[name], clip=torch.randn(2, 8, 3, 224, 224))
        path = _saved(model, args.folder)
        runners = {"PyTorch fast fp32": tsmcli.load_model(path, fast=True),
                   "PyTorch fast bf16": tsmcli.load_model(path, fast=True, amp="bf16")}
        clips = [torch.randn(1, 8, 3, 224, 224) for _ in range(8)]
        random_clips = ClipSet(clips, [None] * 8, ["random"] * 8, "random clips", [])
        folder = Path(args.folder)
        export_model(model, folder / "m.onnx", 224, 224)
        export_model(model, folder / "m.xml", 224, 224, format="openvino")
        for fmt, out in (("onnx", "m_int8.onnx"), ("openvino", "m_int8.xml")):
            export_model(model, folder / out, 224, 224, format=fmt, precision="int8", calibration=random_clips,
                         held_out=random_clips, min_agreement=0.0)
        runners.update({"onnxruntime fp32": open_exported(folder / "m.onnx", threads=args.threads),
                        "onnxruntime int8": open_exported(folder / "m_int8.onnx", threads=args.threads),
                        "OpenVINO fp32": open_exported(folder / "m.xml", threads=args.threads, precision="fp32"),
                        "OpenVINO bf16": open_exported(folder / "m.xml", threads=args.threads, precision="bf16"),
                        "OpenVINO int8": open_exported(folder / "m_int8.xml", threads=args.threads)})
        cells = {k: [] for k in runners}
        for batch in args.batches:
            x = torch.randn(batch, 8, 3, 224, 224)
            rounds = max(1, args.rounds // batch)
            contenders = {}
            for key, runner in runners.items():
                def call(r=runner, k=key):
                    torch.set_num_threads(args.threads if k.startswith("PyTorch") else 1)
                    with torch.no_grad():
                        r(x)
                contenders[key] = call
            times = interleaved(contenders, rounds, warmup=1)
            for key, values in times.items():
                ms = statistics.median(values)
                cells[key].append(f"{batch * 1e3 / ms:.1f} ({ms:.0f} ms)")
        for key in runners:
            print(f"| {name} | {key} | " + " | ".join(cells[key]) + " |")
        if args.memory:
            memory(name, folder, args)
        del runners, contenders  # seven engines compiled at three batch sizes: ~20 GB for R50 at batch 32
        gc.collect()


def memory(name, folder, args):
    """Peak RSS of each contender at the largest batch, each in its own `tsm benchmark model` process."""
    batch = str(max(args.batches))
    runs = {"PyTorch fast fp32": ["-p", MODELS[name]], "PyTorch fast bf16": ["-p", MODELS[name], "--amp", "bf16"],
            "onnxruntime int8": ["--model", folder / "m_int8.onnx"], "OpenVINO bf16": ["--model", folder / "m.xml",
                                                                                      "--amp", "bf16"],
            "OpenVINO int8": ["--model", folder / "m_int8.xml"]}
    for key, extra in runs.items():
        done = subprocess.run([sys.executable, "-m", "tsmcli.cli", "benchmark", "model", *map(str, extra), "--batch",
                               batch, "--iters", batch, "--json"], capture_output=True, text=True)
        if done.returncode:
            print(f"| {name} | {key} | peak memory: failed ({done.stderr.strip()[-200:]}) |")
            continue
        print(f"| {name} | {key} | peak RSS at batch {batch}: {json.loads(done.stdout)[0]['peak_memory_mb']:.0f} MB |")


def calibration(args):
    from tsmcli.data.pipeline import output_size
    from tsmcli.data.schemes import scheme_pipeline
    from tsmcli.export.agreement import agreement
    from tsmcli.export.clips import default_source, read_clips
    from tsmcli.export.whole import export_model as export

    checkpoint = Path(args.work_dir) / "best.pth"
    model = tsmcli.load_model(checkpoint)
    height, width = output_size(scheme_pipeline(model.preset["data"], "efficient"))
    held_out = read_clips(Predictor(model), *default_source(model.preset, "val"), count=64)
    print(f"\nint8 calibration clips, {checkpoint} ({len(held_out)} held-out validation clips)")
    print("| format | calibration clips | top-1 agreement | accuracy fp32 -> int8 | mean / max prob diff |")
    print("|---|---|---|---|---|")
    for fmt, suffix in (("openvino", ".xml"), ("onnx", ".onnx")):
        for count in args.counts:
            clips = read_clips(Predictor(model), *default_source(model.preset, "train"), count=count)
            out = Path(args.folder) / f"int8_{count}{suffix}"
            export(model, out, height, width, format=fmt, precision="int8", calibration=clips, held_out=held_out,
                   min_agreement=0.0)
            exported = open_exported(out)
            report = agreement(model, lambda c: exported(c).numpy(), held_out)
            print(f"| {fmt} | {count} | {report['top1_agree']:.1%} | {report['accuracy_fp32']:.1%} -> "
                  f"{report['accuracy_exported']:.1%} | {report['mean_prob_diff']:.3f} / {report['max_prob_diff']:.3f} |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["stream", "throughput", "calibration"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block", type=int, default=10, help="stream: timed steps per contender and round")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 8, 32])
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--work-dir", default="work_dirs/tsm_r18_1x1x8_toy")
    parser.add_argument("--counts", nargs="*", type=int, default=[4, 8, 16, 32, 64])
    args = parser.parse_args()
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as folder:
        args.folder = folder
        {"stream": stream, "throughput": throughput, "calibration": calibration}[args.what](args)


if __name__ == "__main__":
    main()
