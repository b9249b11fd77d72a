"""What the training loop runs on: device and seeding, the distributed environment, a resumable
sampler, signal handling, the progress bar and the logs."""
import itertools
import json
import os
import random
import re
import signal
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..devices import resolve_device


def seed_everything(seed, deterministic=False):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def distributed_env():
    """(world size, rank, local rank) from torchrun's variables, else SLURM's, else a single process."""
    env = os.environ
    if "WORLD_SIZE" in env:
        return int(env["WORLD_SIZE"]), int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0))
    if "SLURM_NTASKS" in env and int(env["SLURM_NTASKS"]) > 1:
        return int(env["SLURM_NTASKS"]), int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0))
    return 1, 0, 0


def init_method():
    """How the processes find rank 0: torchrun's (and `tsm train --gpus N`'s) MASTER_ADDR / MASTER_PORT
    ('env://'), else under SLURM the first host of the job's node list with a port derived from the job
    id (the same for every task of the job)."""
    env = os.environ
    if "MASTER_ADDR" in env:
        return "env://"
    host, port = _slurm_master(env)
    return f"tcp://{host}:{port}"


def join_process_group(device="auto"):
    """(world, rank, device): this process's place in the job, joining the process group when there
    are several (NCCL on GPUs, each process on the GPU of its local rank; Gloo on the CPU)."""
    world, rank, local_rank = distributed_env()
    device = resolve_device(device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=init_method(),
                                    world_size=world, rank=rank)
    return world, rank, device


def every_nth(dataset, world, rank):
    """This process's share of an evaluation set: items rank, rank + world, ... (none padded)."""
    from torch.utils.data import Subset

    return Subset(dataset, list(range(rank, len(dataset), world))) if world > 1 else dataset


def _slurm_master(env):
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
    if nodelist:
        port = int(env.get("MASTER_PORT", 20000 + int(env.get("SLURM_JOB_ID", 0)) % 20000))
        return first_slurm_host(nodelist), port
    return "127.0.0.1", int(env.get("MASTER_PORT", 29500))


def first_slurm_host(nodelist):
    """The first host of SLURM's compressed host list: 'gpu[003-005,9],cpu1' -> 'gpu003'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\]([^,]*))?", nodelist.strip())
    if not match:
        raise ValueError(f"cannot read the SLURM node list {nodelist!r}")
    prefix, ranges, suffix = match.groups()
    return prefix + ranges.split(",")[0].split("-")[0] + suffix if ranges else prefix


class ResumableSampler(Sampler):
    """A DistributedSampler whose next pass can start after its first `skip` indices (mid-epoch resume)."""

    def __init__(self, inner):
        self.inner, self.skip = inner, 0

    def set_epoch(self, epoch):
        self.inner.set_epoch(epoch)

    def __iter__(self):
        return itertools.islice(iter(self.inner), self.skip, None)

    def __len__(self):
        return len(self.inner) - self.skip


class StopRequest:
    """SIGINT / SIGTERM ask the loop to finish its step, write a resumable checkpoint and return."""

    def __init__(self):
        self.requested = False
        self._previous = {}
        self._vote_group = None

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.requested = True

    def agreed(self, world, device):
        """Whether any process got a signal. Every process must stop after the same step, whichever
        got it: a lone one leaving would hang the others in their next all-reduce."""
        if world == 1:
            return self.requested
        if self._vote_group is None:  # on GPUs vote over Gloo on the CPU: no device sync every step
            self._vote_group = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
        votes = torch.tensor([float(self.requested)])
        dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self._vote_group)
        return bool(votes.item())

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class EpochBar:
    """A rich progress bar with ETA per epoch on an interactive terminal; nothing otherwise (CI, logs)."""

    def __init__(self, enabled):
        self.enabled, self.progress, self.task = enabled, None, None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), transient=True)
            self.progress.start()

    def epoch(self, epoch, total, done=0):
        if self.enabled:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.current = epoch
            self.task = self.progress.add_task(f"epoch {epoch}", total=total, completed=done)

    def step(self, loss):
        """loss: a tensor, read (a device sync) only when the bar is shown."""
        if self.enabled:
            self.progress.update(self.task, advance=1, description=f"epoch {self.current} loss {loss.item():.4f}")

    def print(self, message):
        self.progress.console.print(message, highlight=False)

    def close(self):
        if self.enabled:
            self.progress.stop()


class Logger:
    """Rank 0 writes log.txt and log.jsonl (and echoes); other ranks stay silent."""

    def __init__(self, work_dir, echo=print, enabled=True):
        self.enabled, self.echo, self.board = enabled, echo, None
        if enabled:
            self.text = open(Path(work_dir) / "log.txt", "a")
            self.jsonl = open(Path(work_dir) / "log.jsonl", "a")
            try:  # TensorBoard scalars when the tensorboard package is installed
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(Path(work_dir) / "tensorboard"))
            except ImportError:
                pass

    def line(self, message):
        if not self.enabled:
            return
        self.text.write(message + "\n")
        self.text.flush()
        if self.echo:
            self.echo(message)

    def record(self, **fields):
        if not self.enabled:
            return
        self.jsonl.write(json.dumps(fields) + "\n")
        self.jsonl.flush()
        if self.board is not None:
            step = fields.get("step", fields["epoch"])
            for key, value in fields.items():
                if isinstance(value, (int, float)) and key not in ("epoch", "iter", "step"):
                    self.board.add_scalar(f"{fields['mode']}/{key}", value, step)
