"""Process-wide settings: what a `tsm` command sets up before it works, as one call a script can make too.

Library code never changes these by itself (no reading of sys.argv, no writing of os.environ on import);
each command states what it needs:

    import tsmcli
    tsmcli.configure_process(loader_workers=True)   # before the first `import torch` for the thread policy

docs/benchmarks.md ("Start-up", "Under load", the allocator rows) measures what each setting is worth.
"""
import os
import sys

from .allocator import tune_cpu_allocator


def configure_process(*, loader_workers=False, stop_on_signals=False, allocator=True):
    """Make the process-wide settings tsm's commands run under; returns what was set, e.g.
    {"allocator": True, "omp_wait_policy": "PASSIVE", "signals": True}.

    Args:
        allocator: keep large tensors on glibc's heap (fewer page faults per forward; a no-op elsewhere).
        loader_workers: the process runs loader worker processes beside the model (training, testing):
            torch's OpenMP threads then sleep at once instead of spinning for the cores the workers need
            (OMP_WAIT_POLICY=PASSIVE, unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is already set: a user's
            setting wins). It is read when torch loads, so call this before `import torch`; later it is
            left alone and reported as None.
        stop_on_signals: SIGINT and SIGTERM raise tsmcli.signals.Interrupted in the main thread, so
            `finally` blocks end worker processes and jobs write what resumes them; daemonic children
            still alive at exit are killed (the CLI's choice: a library only ends the workers it started
            itself).
    """
    done = {"allocator": tune_cpu_allocator() if allocator else False, "omp_wait_policy": None,
            "signals": False}
    if loader_workers:
        done["omp_wait_policy"] = passive_thread_wait()
    if stop_on_signals:
        from .signals import commands_stop_on_signals

        commands_stop_on_signals()
        done["signals"] = True
    return done


def passive_thread_wait(env=None):
    """OMP_WAIT_POLICY=PASSIVE where the user set neither it nor GOMP_SPINCOUNT and torch is not loaded yet
    (libgomp reads it once, as torch loads). Returns the value set, or None."""
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env or (env is os.environ and "torch" in sys.modules):
        return None
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return "PASSIVE"


def leave_cores_to_engine():
    """For a process whose model runs in onnxruntime or OpenVINO: PyTorch only preprocesses, on one thread;
    its OpenMP threads, spinning after each small op, would take the cores from the engine's
    (benchmarks/deployment.py times the exported steps so, as `tsm stream` runs them)."""
    import torch

    torch.set_num_threads(1)
