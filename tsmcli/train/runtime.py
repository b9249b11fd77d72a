"""What the training loop runs on: seeding, a resumable sampler, signal handling, the progress bar and
the logs."""
import contextlib
import itertools
import json
import logging
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..atomic import atomic_path


def seed_everything(seed, deterministic=False):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


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
        self.signum = 0  # the signal received, 0 while none
        self._previous = {}
        self._vote_group: Any = None  # a process group, made on the first vote

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def agreed(self, world, device):
        """The signal any process got (0: none). Every process must stop after the same step, whichever
        got it: a lone one leaving would hang the others in their next all-reduce."""
        if world == 1:
            return self.signum
        if self._vote_group is None:  # on GPUs vote over Gloo on the CPU: no device sync every step
            self._vote_group = dist.new_group(backend="gloo") if device.type == "cuda" else dist.group.WORLD
        votes = torch.tensor([float(self.signum)])
        dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self._vote_group)
        return int(votes.item())

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class EpochBar:
    """A rich progress bar with ETA per epoch on an interactive terminal; nothing otherwise (CI, logs)."""

    def __init__(self, enabled):
        self.enabled, self.progress, self.task = enabled, cast(Any, None), cast(Any, None)
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


class Stopwatch:
    """The seconds a run spends in each of its parts: what the loop costs beside its training steps.
    `summary()` is said at the end of every run (its log's last line and a "time" record)."""

    PARTS = {"steps": "training steps", "data": "waiting for data", "validation": "validation",
             "checkpoints": "checkpoints", "curves": "curves.png", "logs": "logs", "start-up": "start-up"}

    def __init__(self):
        self.started = time.perf_counter()
        self.seconds = defaultdict(float)

    @contextlib.contextmanager
    def part(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name, seconds):
        self.seconds[name] += seconds

    def record(self):
        """{"total": wall seconds since the start, part: seconds, ..., "other": what no part holds}."""
        total = time.perf_counter() - self.started
        parts = {name: round(self.seconds[name], 3) for name in self.PARTS if name in self.seconds}
        return {"total": round(total, 3), **parts, "other": round(max(0.0, total - sum(parts.values())), 3)}

    def summary(self):
        """One line: the wall time and each part's share of it, largest first."""
        record = self.record()
        total = record.pop("total")
        shares = sorted(record.items(), key=lambda kv: -kv[1])
        return f"time {total:.1f} s: " + ", ".join(f"{self.PARTS.get(name, name)} {100 * s / max(total, 1e-9):.1f}%"
                                                   for name, s in shares)


CURVES_EVERY_S = 60  # a drawing takes a good part of a second: short epochs would spend much of their time on it


class Logger:
    """Rank 0 writes log.txt and log.jsonl (and echoes); other ranks stay silent. While it is open, the
    library's warnings (the `tsmcli` logger) are lines of the run's log too, instead of bare stderr."""

    def __init__(self, work_dir, echo=print, enabled=True):
        self.enabled, self.echo, self.board = enabled, echo, None
        self.work_dir, self.curves_failed, self.curves_drawn_at = Path(work_dir), False, None
        if enabled:
            Path(work_dir).mkdir(parents=True, exist_ok=True)
            self.text = open(Path(work_dir) / "log.txt", "a")
            self.jsonl = open(Path(work_dir) / "log.jsonl", "a")
            self.handler = _RunLogHandler(self)
            logging.getLogger("tsmcli").addHandler(self.handler)
            try:  # TensorBoard scalars when the tensorboard package is installed
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(Path(work_dir) / "tensorboard"))
            except ImportError:
                pass

    def close(self):
        if self.enabled:
            logging.getLogger("tsmcli").removeHandler(self.handler)
            self.text.close()
            self.jsonl.close()
            if self.board is not None:
                self.board.close()
            self.enabled = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def line(self, message):
        if not self.enabled:
            return
        self.text.write(message + "\n")
        self.text.flush()
        if self.echo:
            self.echo(message)

    def draw_curves(self, last=False):
        """WORK_DIR/curves.png, the figure of `tsm plot`, redrawn from log.jsonl (replaced atomically) at
        most every CURVES_EVERY_S seconds, and at the last validation. Without matplotlib (tsm[plots]) or
        on any drawing error, training goes on; it is said once."""
        if not self.enabled or self.curves_failed:
            return
        now = time.monotonic()
        if not last and self.curves_drawn_at is not None and now - self.curves_drawn_at < CURVES_EVERY_S:
            return
        self.curves_drawn_at = now
        try:
            from ..viz import save
            from ..viz.curves import plot_runs

            with atomic_path(self.work_dir / "curves.png") as tmp:
                save(plot_runs([self.work_dir]), tmp)
        except Exception as e:  # noqa: BLE001 - a picture must never stop a training run
            self.curves_failed = True
            self.line(f"curves.png not drawn: {str(e).splitlines()[0]}")

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


class _RunLogHandler(logging.Handler):
    """The `tsmcli` logger's records as lines of a run's log (log.txt and the echo)."""

    def __init__(self, log):
        super().__init__(logging.INFO)
        self.log = log

    def emit(self, record):
        self.log.line(f"{record.levelname.lower()}: {record.getMessage()}")
