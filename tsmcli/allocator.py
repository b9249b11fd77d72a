"""glibc's allocator tuned for video models (tsmcli.process.configure_process makes the call)."""
import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_cpu_allocator():
    """Keep large tensors on glibc's heap instead of fresh mmap'd pages.

    By default glibc serves every allocation above 128 KiB-32 MiB with mmap and returns it on free, so
    each activation of a video model costs page faults and kernel page zeroing, and any extra tensor (such
    as the temporal shift's output) looks far more expensive than its copy. Raising the thresholds lets
    freed blocks be reused. docs/benchmarks.md, the allocator rows, measures it. No-op where libc is not glibc.
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
