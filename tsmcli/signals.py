"""Stopping on a signal, and helper processes that never outlive their parent.

Every `tsm` command turns SIGINT and SIGTERM into `Interrupted` in its main thread (commands_stop_on_signals,
through tsmcli.process.configure_process),
whether the signal reached the main process alone (`kill PID`, a scheduler, `docker stop`) or the whole
process group (Ctrl-C): the command's `finally` blocks end its worker processes and the CLI exits with
128 + the signal (130, 143). Outputs are written atomically, so a rerun of the same command resumes.
`tsm train` installs its own handler for the length of its loop (a checkpoint first, then the exit).

Workers call die_with_parent(): on Linux the kernel sends them SIGKILL when the process that started them
ends, SIGKILL included, where nothing of the parent's could run; and whoever starts them calls
end_workers_at_exit(), so that a script that never stops its loaders still exits.
"""
import contextlib
import ctypes
import signal
import sys
import weakref

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """A stop signal. BaseException, as KeyboardInterrupt: `except Exception` must not swallow it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_deferred = {"depth": 0, "pending": None}


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
    """For a command's process (tsmcli.process.configure_process(stop_on_signals=True)): SIGINT and SIGTERM
    raise Interrupted in the main thread, and every daemonic child still alive at exit is killed."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise)
    _at_exit(_end_daemonic_children)


def end_workers_at_exit(owner):
    """Whoever starts workers that call die_with_parent hands their owner here (an object with a
    `_shutdown_workers()` that stops them and a `_workers` list: a DataLoader's iterator): at interpreter
    exit, those still alive are stopped, and killed if they do not stop (a loader's persistent workers,
    an iterator left half read). They ignore SIGTERM, and multiprocessing's own exit handler would
    SIGTERM them and then wait for them for ever: a script that did its work would never exit."""
    _owners.add(owner)
    _at_exit(_end_workers)


_owners = weakref.WeakSet()
_exit_hooks = set()


def _at_exit(hook):
    if hook in _exit_hooks:
        return
    import atexit
    import multiprocessing.util  # noqa: F401 - registers its exit join now, so that our hook runs before it

    atexit.register(hook)
    _exit_hooks.add(hook)


def _end_daemonic_children():
    """SIGKILL the daemonic children still alive at exit, which multiprocessing would SIGTERM and then wait
    for. A child a library forks from a thread (OpenVINO's telemetry sender) can block for good in C on a
    lock held at fork time, where the Python handler it inherited from the command could never act on a
    SIGTERM: the command then hung at exit."""
    import multiprocessing

    for child in multiprocessing.active_children():
        if child.daemon:
            child.kill()


def _end_workers():
    for owner in list(_owners):
        owner._shutdown_workers()  # stops torch watching them (its SIGCHLD handler), asks them to stop
        for process in owner._workers:
            if process.is_alive():  # busy, and deaf to the SIGTERM that followed
                process.kill()
                process.join(timeout=5)


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
