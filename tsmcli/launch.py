"""Start worker processes with torch.distributed's elastic launcher (what `torchrun` runs), for
`tsm train --gpus N` and `tsm test --gpus N`.

- A worker that fails ends the job (no restarts): the launcher stops the others and JobFailed names the
  worker and its error.
- SIGINT/SIGTERM to the launcher are passed on to the workers, which finish their step, agree to stop
  and return normally; the elastic agent's own handling would instead wait out a grace period and
  SIGKILL workers that had already returned. A second signal kills the workers.
"""
import contextlib
import glob
import json
import multiprocessing
import os
import signal

from .errors import JobFailed

GRACE_SECONDS = 60  # after a failure: how long the other workers get to notice it before SIGKILL


def run_workers(entrypoint, args, nproc, nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=29500,
                run_id="tsm"):
    """entrypoint(*args) in nproc processes here (nproc x nnodes in the job); returns this machine's
    return values by local rank."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nnodes == 1:
        master_port = local_port(master_addr, master_port)
    config = LaunchConfig(min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc, run_id=run_id,
                          rdzv_backend="static", rdzv_endpoint=f"{master_addr}:{master_port}",
                          rdzv_configs={"rank": node_rank}, max_restarts=0, monitor_interval=0.5,
                          shutdown_timeout=GRACE_SECONDS, signals_to_handle="SIGHUP,SIGQUIT")
    with _PassSignalsToWorkers(), _threads_per_worker(nproc):
        try:
            return elastic_launch(config, entrypoint)(*args)
        except ChildFailedError as e:
            raise JobFailed(_failure_report(e.failures, nproc * nnodes)) from None


def local_port(address, wanted):
    """`wanted` when it is free here, else a free port: on one machine nobody else needs to know it, and
    two jobs side by side (a test beside a training) would otherwise collide on the default."""
    import socket

    for port in (wanted, 0):
        with socket.socket() as probe:
            try:
                probe.bind((address, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    return wanted  # an address not of this machine: the launcher's own error names it


@contextlib.contextmanager
def _threads_per_worker(nproc):
    """OMP_NUM_THREADS for the workers, unless the user set it: this machine's cores shared between
    them. Each would otherwise start a thread per core, and nproc x cores busy-waiting threads on the CPU
    (Gloo) runs made steps several times slower, with multi-second stalls."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // nproc))
    try:
        yield
    finally:
        del os.environ["OMP_NUM_THREADS"]


# Errors a worker raises because another one died first (Gloo, NCCL): listed after the root cause.
_KNOCK_ON = ("closed by peer", "remote worker", "Connection reset", "NCCL communicator was aborted")


def _failure_report(failures, world):
    """Every failed worker of this machine, the root cause first. The launcher reports only the first
    failure it noticed, often a worker that failed *because* another had died, so the error files of all
    workers (written by torch's @record next to each other) are read."""
    errors = {}  # rank -> (timestamp, message, pid)
    for rank, failure in failures.items():
        errors[rank] = (failure.timestamp, _message(failure.message, failure.exitcode), failure.pid)
        attempt_dir = os.path.dirname(os.path.dirname(failure.error_file))
        for path in glob.glob(os.path.join(attempt_dir, "*", "error.json")):
            other = int(os.path.basename(os.path.dirname(path)))
            if other not in errors:
                try:
                    with open(path) as f:
                        data = json.load(f)["message"]
                    errors[other] = (int(data["extraInfo"]["timestamp"]), _message(data, None), None)
                except (OSError, ValueError, KeyError, TypeError):
                    pass
    ordered = sorted(errors.items(), key=lambda item: (item[1][0], any(k in item[1][1] for k in _KNOCK_ON), item[0]))
    lines = [f"worker {rank} of {world}{f' (pid {pid})' if pid else ''} failed: {message}"
             for rank, (_, message, pid) in ordered]
    return "\n  then ".join(lines) + "\nthe other workers were stopped"


def _message(message, exitcode):
    text = message if isinstance(message, str) else message.get("message", "")
    if text.startswith("To enable traceback"):  # exited without a Python exception (os._exit, a crash)
        return f"exit code {exitcode}"
    return text.strip()[:500]


class _PassSignalsToWorkers:
    def __enter__(self):
        self.received, self.previous = 0, {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._forward)
        return self

    def _forward(self, signum, frame):
        self.received += 1
        for worker in multiprocessing.active_children():
            try:
                os.kill(worker.pid, signum if self.received == 1 else signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
