"""How much does the temporal shift cost? Prints, from one process:

1. TSM-R50 forward time / torchvision ResNet50 forward time on the same 8 frames (target <= 1.02 on CPU);
2. our shift op vs. the three-way-cat formulation (as mmaction2 0.x writes it) and vs. a plain clone()
   (the least an out-of-place shift can cost) on ResNet50's shifted feature sizes;
3. the extra cost at a boundary between two shifted blocks: the shift as a separate op, fused into the
   block's epilogue (tsmcli/models/shift_fusion.py, what inference runs), and two fusions tried and
   not kept (writing into a new shifted tensor; shifting in place frame by frame).

    python benchmarks/shift_overhead.py [--size 224] [--rounds 30] [--model-only] [--device cpu]

Timings interleave the contenders round by round and report medians, so machine noise hits both alike;
"paired" is the median of the ratios within each round.
"""
import argparse
import statistics
import time

import torch
import torchvision

import tsmcli
from tsmcli.allocator import tune_cpu_allocator
from tsmcli.models.shift import temporal_shift


def cat_shift(x, num_segments, shift_div=8):
    """The formulation of mmaction2 0.x: zeros by subtraction, then three concatenations."""
    n, c, h, w = x.size()
    x = x.view(-1, num_segments, c, h * w)
    fold = c // shift_div
    left, mid, right = x[:, :, :fold], x[:, :, fold:2 * fold], x[:, :, 2 * fold:]
    blank = (left - left)[:, :1]
    left = torch.cat((left[:, 1:], blank), 1)
    blank = (mid - mid)[:, :1]
    mid = torch.cat((blank, mid[:, :-1]), 1)
    return torch.cat((left, mid, right), 2).view(n, c, h, w)


def timed(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def race(contenders, rounds, device, warmup=2, raw=False):
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn, device))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return (medians, times) if raw else medians


def paired_ratio(times, name, baseline):
    """Median over rounds of the within-round ratio: slow drifts of the machine cancel out."""
    return statistics.median(a / b for a, b in zip(times[name], times[baseline]))


def model_ratio(args):
    tsm = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False).backbone.eval().to(args.device)
    unfused = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False).backbone.eval().to(args.device)
    unfused.fuse_shift = False  # each shift as a separate op (what training runs)
    plain = torchvision.models.resnet50().eval().to(args.device)
    plain.fc = torch.nn.Identity()
    plain.avgpool = torch.nn.Identity()  # compare the same work: both end at the last feature map
    x = torch.randn(8, 3, args.size, args.size, device=args.device)
    with torch.no_grad():
        result, times = race({"tsm_r50": lambda: tsm(x), "resnet50": lambda: plain(x),
                              "unfused": lambda: unfused(x)}, args.rounds, args.device, raw=True)
    ratio = result["tsm_r50"] / result["resnet50"]
    print(f"model  8x3x{args.size}x{args.size} on {args.device}: TSM-R50 {result['tsm_r50'] * 1e3:.1f} ms, "
          f"ResNet50 {result['resnet50'] * 1e3:.1f} ms: ratio {ratio:.3f}, paired "
          f"{paired_ratio(times, 'tsm_r50', 'resnet50'):.3f} (target <= 1.02)")
    print(f"       the shift as a separate op (fuse_shift=False, as in training): {result['unfused'] * 1e3:.1f} ms: "
          f"ratio {result['unfused'] / result['resnet50']:.3f}, paired {paired_ratio(times, 'unfused', 'resnet50'):.3f}")
    return ratio


def op_ratio(args):
    scale = args.size // 224
    sizes = [(64, 56), (256, 56), (512, 28), (1024, 14)]  # conv1 inputs of R50's shifted blocks
    for channels, side in sizes:
        side *= max(scale, 1)
        x = torch.randn(8, channels, side, side, device=args.device)
        with torch.no_grad():
            fwd = race({"ours": lambda: temporal_shift(x, 8), "cat": lambda: cat_shift(x, 8),
                        "clone": lambda: x.clone()}, args.rounds * 4, args.device)
        xg = x.clone().requires_grad_(True)
        grad = torch.randn_like(x)
        both = race({"ours": lambda: temporal_shift(xg, 8).backward(grad),
                     "cat": lambda: cat_shift(xg, 8).backward(grad)}, args.rounds * 4, args.device)
        print(f"shift  8x{channels}x{side}x{side}: forward ours/cat {fwd['ours'] / fwd['cat']:.2f} "
              f"({fwd['ours'] * 1e6:.0f} vs {fwd['cat'] * 1e6:.0f} us; a plain clone {fwd['clone'] * 1e6:.0f} us), "
              f"forward+backward ours/cat "
              f"{both['ours'] / both['cat']:.2f}")


def boundary_cost(args):
    """Between two shifted blocks: relu(out + identity), the next block's shifted input and its identity
    add; extra time over plain ResNet's (no shift) for the separate shift op and for the fused epilogue."""
    from tsmcli.models.shift_fusion import _relu_into_shifted

    for channels, side in [(256, 56), (512, 28), (1024, 14), (2048, 7)]:
        out0, identity, out2 = (torch.randn(8, channels, side, side, device=args.device) for _ in range(3))
        fold = channels // 8

        def plain():
            out = out0.clone()
            out += identity
            x = out.relu_()
            nxt = out2.clone()
            nxt += x

        def separate():
            out = out0.clone()
            out += identity
            x = out.relu_()
            temporal_shift(x, 8)
            nxt = out2.clone()
            nxt += x

        def fused():
            out = out0.clone()
            out += identity
            shifted, quarter = _relu_into_shifted(out, 8, fold)
            nxt = out2.clone()
            nxt[:, 2 * fold:] += shifted[:, 2 * fold:]
            nxt[:, :2 * fold] += quarter

        def into_new_tensor():  # tried: relu(out) written straight into a new, shifted tensor
            out = out0.clone()
            out += identity
            o = out.view(1, 8, channels, side, side)
            shifted = torch.empty_like(o)
            torch.clamp_min(o[:, :, 2 * fold:], 0, out=shifted[:, :, 2 * fold:])
            torch.clamp_min(o[:, 1:, :fold], 0, out=shifted[:, :-1, :fold])
            shifted[:, -1, :fold] = 0
            torch.clamp_min(o[:, :-1, fold:2 * fold], 0, out=shifted[:, 1:, fold:2 * fold])
            shifted[:, 0, fold:2 * fold] = 0
            quarter = torch.clamp_min(o[:, :, :2 * fold], 0)
            nxt = out2.clone()
            nxt.view_as(o)[:, :, 2 * fold:] += shifted[:, :, 2 * fold:]
            nxt.view_as(o)[:, :, :2 * fold] += quarter

        def frame_by_frame():  # tried: shift in place, one frame at a time, keeping the two lost frames
            out = out0.clone()
            out += identity
            o = out.relu_().view(1, 8, channels, side, side)
            lost_first, lost_last = o[:, 0, :fold].clone(), o[:, -1, fold:2 * fold].clone()
            for t in range(7):
                o[:, t, :fold].copy_(o[:, t + 1, :fold])
            o[:, -1, :fold] = 0
            for t in range(7, 0, -1):
                o[:, t, fold:2 * fold].copy_(o[:, t - 1, fold:2 * fold])
            o[:, 0, fold:2 * fold] = 0
            p = out2.clone().view_as(o)
            p[:, :, 2 * fold:] += o[:, :, 2 * fold:]
            p[:, 1:, :fold] += o[:, :-1, :fold]
            p[:, 0, :fold] += lost_first
            p[:, :-1, fold:2 * fold] += o[:, 1:, fold:2 * fold]
            p[:, -1, fold:2 * fold] += lost_last

        x = out0.clone()
        t = race({"plain": plain, "separate": separate, "fused": fused, "new tensor": into_new_tensor,
                  "frame by frame": frame_by_frame, "clone": lambda: x.clone(), "relu_": lambda: x.relu_()},
                 args.rounds * 4, args.device)
        extra = {k: (t[k] - t["plain"]) * 1e6 for k in ("separate", "fused", "new tensor", "frame by frame")}
        print(f"block boundary 8x{channels}x{side}x{side}: extra over plain ResNet: "
              + ", ".join(f"{k} {v:.0f} us" for k, v in extra.items())
              + f" (a clone {t['clone'] * 1e6:.0f} us, an in-place relu_ {t['relu_'] * 1e6:.0f} us)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-only", action="store_true", help="skip the per-op timings")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="skip tsmcli.allocator.tune_cpu_allocator() (the `tsm` command applies it)")
    args = parser.parse_args()
    if not args.default_allocator:
        tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{'default' if args.default_allocator else 'tuned'} allocator")
    model_ratio(args)
    if not args.model_only:
        op_ratio(args)
        boundary_cost(args)


if __name__ == "__main__":
    main()
