"""Streaming cost, batch 1, in one process, as `tsm stream` runs it (glibc allocator tuned, as the CLI does):

1. per-frame latency of incremental streaming (online model, one frame per step, cached shift state) for
   MobileNetV2-TSM and TSM-R50 at 224x224, beside one plain 2D frame through torchvision's same backbone
   (the ratio: the goal is <= 1.15), and the window mode's cost per output (T = 8 frames re-run) with the
   speed-up of incremental over it (at most T);
2. the state each stream keeps, and streams per second when B streams share one batched step;
3. channels-last, bf16 autocast and the fast path (BatchNorm folded, channels-last: what `tsm stream` runs)
   on the incremental step, with the logits difference each one causes over 16 steps of real video
   (../shared/fixtures/videos/demo.mp4).

    python benchmarks/stream_latency.py [--rounds 20] [--threads 2] [--batch 8] [--compile]

Contenders are interleaved round by round; medians are reported, and ratios are medians of per-round ratios.
"""
import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

import tsmcli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import random_models  # noqa: E402

from tsmcli.allocator import tune_cpu_allocator
from tsmcli.inference import FrameTransform
from tsmcli.models.fast import prepare_for_inference
from tsmcli.streaming import IncrementalStream, StreamStep, frames_of

DEMO = Path(__file__).resolve().parents[2] / "shared/fixtures/videos/demo.mp4"
MODELS = {"MobileNetV2-TSM": ("tsm_mobilenetv2_dense_1x1x8_100e_k400", torchvision.models.mobilenet_v2),
          "TSM-R50": ("tsm_r50_1x1x8_50e_k400", torchvision.models.resnet50)}


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def real_frames(model, count=16, spacing=5):
    prepare = FrameTransform(model.preset)
    return [prepare(f) for _, f in list(frames_of(str(DEMO))[1])[::spacing][:count]]


def calibrated(preset):
    """Random weights (no downloads here) with BatchNorm statistics from 8 real frames and logits of order 1
    (tests/random_models.py), so the bf16 differences below mean something."""
    model = tsmcli.build_model(preset, pretrained=False)
    return random_models.calibrated(preset, torch.cat(real_frames(model, 8))[None], model__shift_mode="online")


def measure(name, rounds, batch):
    preset, plain_builder = MODELS[name]
    model = calibrated(preset)
    plain = plain_builder().eval()
    frame = torch.randn(1, 3, 224, 224)
    window = torch.randn(1, 8, 3, 224, 224)
    step = StreamStep(model).eval()
    state = step.initial_state(1, 224, 224)
    batched_state = step.initial_state(batch, 224, 224)
    frames = torch.randn(batch, 3, 224, 224)
    contenders = {
        "incremental": lambda: step(frame, *state),
        "plain 2D frame": lambda: plain(frame),
        "window (8 frames)": lambda: model(window),
        f"incremental, {batch} streams": lambda: step(frames, *batched_state),
    }
    times = {k: [] for k in contenders}
    with torch.no_grad():
        for fn in contenders.values():  # warm-up
            fn()
            fn()
        for _ in range(rounds):
            for key, fn in contenders.items():
                times[key].append(timed(fn))
    ratio = statistics.median(a / b for a, b in zip(times["incremental"], times["plain 2D frame"]))
    speedup = statistics.median(b / a for a, b in zip(times["incremental"], times["window (8 frames)"]))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"name": name, "ms": medians, "ratio_to_plain": ratio, "window_over_incremental": speedup,
            "state_kib": sum(s.numel() * 4 for s in state) / 1024,
            "streams_per_s": batch * 1e3 / medians[f"incremental, {batch} streams"], "model": model}


def variants(model, rounds, compile=False):
    """Incremental step fp32 / channels-last / bf16: ms per frame and logits difference on real video."""
    real = real_frames(model)
    out = {}
    reference = None
    fast = prepare_for_inference(copy.deepcopy(model))  # what tsm stream runs by default
    cases = [("fp32", False, False), ("channels-last", True, False), ("channels-last + bf16", True, True),
             ("fast path (tsm stream)", True, False), ("fast path + bf16", True, True)]
    if compile:
        cases.append(("fast path + torch.compile", True, False))
    for label, channels_last, bf16 in cases:
        if label.startswith("fast"):
            runner = IncrementalStream(fast)
            if "compile" in label:  # compiled on the first steps, which the timing leaves out
                runner.step_module = torch.compile(runner.step_module)
        else:
            runner = IncrementalStream(model.to(memory_format=torch.channels_last) if channels_last else
                                       model.to(memory_format=torch.contiguous_format))
        logits, spent = [], []
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for x in real:  # 16 steps of real video (the first 3 are warm-up for the timing)
                x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
                spent.append(timed(lambda: logits.append(runner.step(x).float())))
            for _ in range(rounds):
                spent.append(timed(lambda: runner.step(x)))
        logits = torch.cat(logits)
        reference = logits if reference is None else reference
        out[label] = {"ms": statistics.median(spent[3:]), "max_abs_diff": float((logits - reference).abs().max()),
                      "top1_agree": float((logits.argmax(1) == reference.argmax(1)).float().mean())}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="also time the fast path under torch.compile")
    args = parser.parse_args()
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 1, 224x224, {args.rounds} rounds\n")
    print("| model | incremental ms/frame | plain 2D frame ms | ratio | window ms/output | window / incremental "
          f"| state KiB/stream | streams/s at batch {args.batch} |")
    print("|---|---|---|---|---|---|---|---|")
    results = [measure(name, args.rounds, args.batch) for name in MODELS]
    for r in results:
        ms = r["ms"]
        print(f"| {r['name']} | {ms['incremental']:.1f} | {ms['plain 2D frame']:.1f} | {r['ratio_to_plain']:.3f} | "
              f"{ms['window (8 frames)']:.1f} | {r['window_over_incremental']:.2f}x | {r['state_kib']:.0f} | "
              f"{r['streams_per_s']:.1f} |")
    print("\n| model | variant | ms/frame | max abs logits diff vs fp32 (16 real frames) | top-1 agreement |")
    print("|---|---|---|---|---|")
    for r in results:
        for label, v in variants(r["model"], args.rounds, args.compile).items():
            print(f"| {r['name']} | {label} | {v['ms']:.1f} | {v['max_abs_diff']:.2e} | {v['top1_agree']:.0%} |")


if __name__ == "__main__":
    main()
