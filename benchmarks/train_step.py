"""The training step on the CPU, as `tsm train` runs it (the loop's own train_step), side by side in one
process: memory format and precision variants, interleaved round by round, median ms per step and the
ratio to fp32 contiguous (the default before channels-last became it). Beside them, the machine's limit:
the step's arithmetic (3x the forward's multiply-adds, x2 FLOPs each) over its time, against a large
matrix multiply's rate at fp32 and bf16 on the same threads.

    python benchmarks/train_step.py [--models toy r50 mobilenetv2] [--batch 2] [--rounds 5] [--variants ...]
                                    [--profile]

Variants: fp32 (contiguous), cl (channels-last, fp32: tsm train's default on the CPU), bf16, bf16+cl. By
default bf16 only where the CPU computes it natively (elsewhere it is emulated and slower). Random weights:
speed does not depend on them.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from cpu_options import add_cpu_options, apply_cpu_options  # noqa: E402

import tsmcli  # noqa: E402
from tsmcli.complexity import count_complexity  # noqa: E402
from tsmcli.speed import training_step  # noqa: E402
from tsmcli.train.precision import native_bf16  # noqa: E402

MODELS = {"toy": ("tsm_r18_1x1x8_toy", 56), "small": ("tsm_r18_video_1x1x8_25e_small", 112),
          "r50": ("tsm_r50_1x1x8_50e_k400", 224),
          "mobilenetv2": ("tsm_mobilenetv2_dense_1x1x8_100e_k400", 224)}
VARIANTS = {"fp32": (False, "none"), "cl": (True, "none"), "bf16": (False, "bf16"), "bf16+cl": (True, "bf16")}


def gemm_gflops(dtype, size=2048, repeats=5):
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size ** 3 / best / 1e9


def _timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS),
                        default=list(VARIANTS) if native_bf16() else ["fp32", "cl"])
    parser.add_argument("--batch", type=int, default=2, help="videos per step (0: the preset's videos per GPU)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant and round")
    parser.add_argument("--profile", action="store_true", help="print each operator's share of the step's time")
    add_cpu_options(parser)
    args = parser.parse_args()
    print(f"# {apply_cpu_options(args)}; native bf16: {native_bf16()}")
    rates = {"fp32": gemm_gflops(torch.float32)}
    if any("bf16" in v for v in args.variants):
        rates["bf16"] = gemm_gflops(torch.bfloat16)
    print("# 2048x2048 matrix multiply: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in rates.items()))
    print("| model | input | variant | ms/step | x fp32 | GFLOP/s | of the GEMM rate |")
    print("|---|---|---|---|---|---|---|")
    device = torch.device("cpu")
    for name in args.models:
        preset, size = MODELS[name]
        steps = {}
        for variant in args.variants:
            channels_last, amp = VARIANTS[variant]
            model = tsmcli.build_model(preset, pretrained=False)
            batch = args.batch or model.preset["data"]["videos_per_gpu"]
            shape = (batch, model.preset["model"]["num_segments"], 3, size, size)
            flops = 2 * 3 * batch * count_complexity(model, shape[1], size, size)["flops"]
            steps[variant] = training_step(model, device, shape, amp, channels_last, compile=False)[0]
            for _ in range(2):
                steps[variant]()  # warm-up
        times = {variant: [] for variant in args.variants}
        for _ in range(args.rounds):  # interleaved: the machine's drift hits every variant alike
            for variant, step in steps.items():
                times[variant].append(statistics.median(_timed(step) for _ in range(args.steps)))
        base = statistics.median(times[args.variants[0]])
        for variant in args.variants:
            ms = statistics.median(times[variant])
            rate = flops / ms / 1e9  # ms: the median step, in seconds
            print(f"| {name} | {'x'.join(map(str, shape))} | {variant} | {ms * 1e3:.0f} | {base / ms:.2f} | "
                  f"{rate:.0f} | {rate / rates['bf16' if 'bf16' in variant else 'fp32']:.0%} |", flush=True)
        if args.profile:
            for variant, step in steps.items():
                print_profile(f"{name} {variant}", step)


def print_profile(title, step, rows=8):
    """The operators that take the most of two steps' time, as shares of it (self time: a convolution's
    backward counts once, not again in the autograd node that calls it)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    ops = sorted(prof.key_averages(), key=lambda op: op.self_cpu_time_total, reverse=True)
    total = sum(op.self_cpu_time_total for op in ops)
    print(f"# {title}: " + ", ".join(f"{op.key} {op.self_cpu_time_total / total:.0%}" for op in ops[:rows]), flush=True)


if __name__ == "__main__":
    main()
