"""Process-level settings that make CPU runs faster: the allocator, and the OpenMP threads' wait policy."""
import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_cpu_allocator():
    """Keep large tensors on glibc's heap instead of fresh mmap'd pages.

    By default glibc serves every allocation above 128 KiB-32 MiB with mmap and returns it on free, so
    each activation of a video model costs page faults and kernel page zeroing; on 2 cores that is ~10%
    of a ResNet50 forward, and it makes any extra tensor (such as the temporal shift's output) look far
    more expensive than its copy. Raising the thresholds lets freed blocks be reused.
    See docs/benchmarks.md for the measurement. No-op where libc is not glibc.
    """
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        return False
    _tuned = bool(ok)
    return _tuned


LOADER_COMMANDS = ("train", "finetune", "test")  # the commands whose loader workers share the cores


def set_thread_wait_policy(args, env=None):
    """OMP_WAIT_POLICY=PASSIVE for the commands that run loader workers beside the model, unless the user
    set OMP_WAIT_POLICY or GOMP_SPINCOUNT: torch's OpenMP threads then sleep at once instead of spinning for
    the cores the workers (or another job) need. Measured with benchmarks/under_load.py: a toy training
    alone 0.93x the time, two side by side 1.45x one alone instead of 3.9x, a training beside a `tsm test`
    1.14x instead of 2.55x. Inference alone (tsm predict, stream, benchmark model) keeps libgomp's default:
    there PASSIVE cost 1.04-1.1x (R50) to 1.1-1.6x (MobileNetV2). Must run before torch is imported.
    Returns the value set, or None."""
    env = os.environ if env is None else env
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in LOADER_COMMANDS or "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return None
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"
