"""How a run computes: its memory format and mixed precision, chosen once and kept by its checkpoints.

On the CPU, channels-last is the default: convolutions run faster on it and give the same numbers up to
rounding (docs/benchmarks.md, "Training step"). Where the CPU computes bf16 natively, bf16 autocast is the
default too: the toy trainings reach fp32's accuracy in it, their losses as close to fp32's as another
seed's (docs/benchmarks.md, "Training in bf16"). Elsewhere, and on GPUs, mixed precision is opt-in (--amp).
A resumed run keeps what it started with, unless the command line says otherwise.
"""
import functools
import platform
import subprocess
import time
from dataclasses import dataclass
from typing import Optional

import torch


@dataclass(frozen=True)
class Precision:
    channels_last: bool
    amp: Optional[str]  # None (fp32), "bf16" or "fp16"

    def as_dict(self):
        return {"channels_last": self.channels_last, "amp": self.amp}

    def describe(self):
        return f"{'channels-last' if self.channels_last else 'contiguous'} memory, {self.amp or 'fp32'}"


def resolve_precision(channels_last, amp, device, started_with=None, advise=True):
    """-> (Precision, the line the run logs). channels_last: True, False or None (the default: the
    checkpoint's when resuming, else on for the CPU); amp: "none", "bf16", "fp16" or None (the default: the
    checkpoint's when resuming, else bf16 on a CPU that computes it natively, else fp32). started_with: the
    `precision` a resumed checkpoint stored ({} for one from before it was stored), None for a new run.
    advise: time the CPU's bf16 matrix multiplies for the line (the process that logs; other ranks skip it)."""
    resuming = started_with is not None
    started_with = started_with or {}
    notes = []
    if channels_last is None:
        if "channels_last" in started_with:
            channels_last = started_with["channels_last"]
            notes.append("channels-last as the run started" if channels_last else "contiguous as the run started")
        else:
            channels_last = device.type == "cpu"
            if channels_last:
                notes.append("channels-last: the default on the CPU, --no-channels-last turns it off")
    native = device.type == "cpu" and native_bf16()
    by_default = False
    if amp is None and resuming:
        amp = started_with.get("amp")  # a run that started in fp32 (or before this was stored) stays in it
        if amp:
            notes.append(f"--amp {amp} as the run started")
    elif amp is None and native:
        amp, by_default = "bf16", True
        notes.append("bf16: the default on a CPU that computes it natively, --amp none trains in fp32")
    amp = None if amp in (None, "none") else amp
    precision = Precision(channels_last, amp)
    line = f"computing in {precision.describe()}" + (f" ({'; '.join(notes)})" if notes else "")
    if advise and native and (by_default or resuming and amp is None):  # bf16 by default, or an fp32 run resumed
        speedup = bf16_matmul_speedup() or 0.0
        if by_default:
            line += f"; its matrix multiplies are {speedup:.1f}x faster in bf16 than in fp32 on this CPU"
        elif speedup > 1.3:
            line += (f"; this CPU computes bf16 natively, its matrix multiplies {speedup:.1f}x faster than fp32: "
                     "--amp bf16 trains faster (docs/training.md, 'Precision')")
    return precision, line


def native_bf16():
    """Whether this CPU has bf16 arithmetic in hardware (x86's AVX512-BF16 or AMX, Arm's BF16)."""
    if platform.system() == "Linux":
        try:
            with open("/proc/cpuinfo") as info:
                flags = next((line for line in info if line.startswith(("flags", "Features"))), "").split()
        except OSError:
            return False
        return any(flag in flags for flag in ("avx512_bf16", "amx_bf16", "bf16"))
    if platform.system() == "Darwin":
        try:
            return subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True,
                                  timeout=5).stdout.strip() == "1"
        except (OSError, subprocess.SubprocessError):
            return False
    return False


@functools.cache
def bf16_matmul_speedup(size=1024, repeats=5):
    """fp32 over bf16 time of a size x size matrix multiply on this CPU (best of `repeats`), where the CPU
    has native bf16; None elsewhere (emulated bf16 is slower than fp32)."""
    if not native_bf16():
        return None
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        times[dtype] = best
    return times[torch.float32] / times[torch.bfloat16]
