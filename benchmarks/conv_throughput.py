"""What the convolutions of TSM-R50 reach on this CPU in isolation (GFLOP/s), the bound behind the
fp32 and bf16 rows of benchmarks/inference_vs_mmaction.py: each shape of the network's convolutions at
8 frames, channels-last, bias folded in, run alone and repeatedly.

    .venv/bin/python benchmarks/conv_throughput.py [--threads 2] [--rounds 10] [--allocator]

--allocator tunes glibc's allocator first, as the `tsm` command does: the largest outputs (64 -> 256
channels at 56 x 56, 26 MB in fp32) are otherwise fresh pages at every call.
"""
import argparse
import time

import torch
from cpu_options import add_cpu_options, apply_cpu_options

# (in channels, out channels, kernel, stride, input size): ResNet50's convolution shapes at 224 x 224
SHAPES = [(3, 64, 7, 2, 224), (64, 64, 1, 1, 56), (64, 64, 3, 1, 56), (64, 256, 1, 1, 56), (256, 64, 1, 1, 56),
          (128, 128, 3, 1, 28), (128, 512, 1, 1, 28), (512, 128, 1, 1, 28), (256, 256, 3, 1, 14),
          (256, 1024, 1, 1, 14), (1024, 256, 1, 1, 14), (512, 512, 3, 1, 7), (512, 2048, 1, 1, 7),
          (2048, 512, 1, 1, 7)]


def gflops(cin, cout, kernel, stride, size, dtype, rounds, frames=8):
    conv = torch.nn.Conv2d(cin, cout, kernel, stride, kernel // 2).eval().to(dtype)
    conv = conv.to(memory_format=torch.channels_last)
    x = torch.randn(frames, cin, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(3):
            y = conv(x)
        start = time.perf_counter()
        for _ in range(rounds):
            y = conv(x)
        seconds = (time.perf_counter() - start) / rounds
    return 2 * y.numel() * cin * kernel * kernel / seconds / 1e9, seconds * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    add_cpu_options(parser)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {apply_cpu_options(args)}, 8 frames, channels-last\n")
    print("| conv (in, out, kernel, stride, size) | fp32 GFLOP/s | fp32 ms | bf16 GFLOP/s | bf16 ms |")
    print("|---|---|---|---|---|")
    for shape in SHAPES:
        (f32, t32), (b16, t16) = (gflops(*shape, dtype, args.rounds) for dtype in (torch.float32, torch.bfloat16))
        print(f"| {shape} | {f32:.0f} | {t32:.1f} | {b16:.0f} | {t16:.1f} |")


if __name__ == "__main__":
    main()
