"""Stopping on a signal, and helper processes that never outlive their parent.

Every `tsm` command turns SIGINT and SIGTERM into `Interrupted` in its main thread (commands_stop_on_signals),
whether the signal reached the main process alone (`kill PID`, a scheduler, `docker stop`) or the whole
process group (Ctrl-C): the command's `finally` blocks end its worker processes and the CLI exits with
128 + the signal (130, 143). Outputs are written atomically, so a rerun of the same command resumes.
`tsm train` installs its own handler for the length of its loop (a checkpoint first, then the exit).

Workers call die_with_parent(): on Linux the kernel sends them SIGKILL when the process that started them
ends, SIGKILL included, where nothing of the parent's could run.
"""
import contextlib
import ctypes
import signal
import sys

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """A stop signal. BaseException, as KeyboardInterrupt: `except Exception` must not swallow it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_deferred = {"depth": 0, "pending": None}
_exit_hook_installed = False


def _raise(signum, frame):
    if _deferred["depth"]:
        _deferred["pending"] = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred():
    """A block a stop signal must not cut in two (starting a process pool: an exception raised between its
    thread's creation and start leaves a pool that cannot be shut down); the signal is raised after it."""
    _deferred["depth"] += 1
    try:
        yield
    finally:
        _deferred["depth"] -= 1
        if not _deferred["depth"] and _deferred["pending"] is not None:
            signum, _deferred["pending"] = _deferred["pending"], None
            raise Interrupted(signum)


def commands_stop_on_signals():
    """For the CLI's process; also ends daemonic children at exit (_end_daemonic_children)."""
    global _exit_hook_installed
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise)
    if not _exit_hook_installed:
        import atexit
        import multiprocessing.util  # noqa: F401 - registers its exit join now, so that ours runs before it

        atexit.register(_end_daemonic_children)
        _exit_hook_installed = True


def _end_daemonic_children():
    """SIGKILL the daemonic children still alive at exit, which multiprocessing would SIGTERM and then wait
    for. A child a library forks from a thread (OpenVINO's telemetry sender) can block for good in C on a
    lock held at fork time, where the Python handler it inherited from us could never act on a SIGTERM:
    the command then hung at exit."""
    import multiprocessing

    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()


def die_with_parent():
    """In a worker process: be killed when the parent ends (Linux; elsewhere workers notice a closed pipe).
    Workers ignore SIGINT and SIGTERM: Ctrl-C or a group's SIGTERM reaches every process, and the parent
    decides how its workers end (a training run still needs them for the step it finishes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


@contextlib.contextmanager
def ending(pool):
    """with ending(ProcessPoolExecutor(...)) as pool: submit under deferred(); a normal shutdown when the block ends, and when it
    raises (a signal's Interrupted, an error) the running jobs are killed at once and the pending ones
    cancelled: no worker goes on alone. Partial outputs carry temporary names the next run removes."""
    try:
        yield pool
    except BaseException:
        with deferred():
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                if process.is_alive():
                    process.kill()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    with deferred():
        pool.shutdown(wait=True)
