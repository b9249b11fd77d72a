"""Concurrent requests' clips through the model together: one thread runs the model on up to max_batch
clips of one shape. After a batch's first clip it waits at most max_wait_ms for more, and only while more
are on their way (`more_coming()`: uploads still being decoded). A clip that could not join a batch (none
queued, none running, none on its way) runs at once in the thread that decoded it (`run_alone`): a lone
request neither waits nor hops to the batcher's thread, whose model runs measurably slower just after
another thread decoded (docs/benchmarks.md, "Serving")."""
import asyncio
import queue
import threading
import time
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    """Where one clip's time went in the batcher, in seconds; batch: how many clips ran with it."""

    queued: float
    model: float
    batch: int


class Batcher:
    """submit(clip) -> (the model's output for it, its Timing). run: clips (N, V*T, 3, H, W) -> (N, K) on the
    CPU. A batch that fails is run again clip by clip, so that an engine error fails only the request that
    causes it. on_batch(size): called for each batch run (metrics)."""

    def __init__(self, run, max_batch=8, max_wait_ms=10.0, on_batch=None, more_coming=None):
        self.run, self.max_batch, self.max_wait = run, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000
        self.on_batch = on_batch or (lambda size: None)
        self.more_coming = more_coming or (lambda: True)
        self.queue = queue.Queue()
        self.busy = threading.Lock()  # held while a batch runs, in either thread
        self.thread = threading.Thread(target=self._loop, name="tsm-batcher", daemon=True)
        self.thread.start()

    async def submit(self, clip):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.queue.put((clip, loop, future, time.perf_counter()))
        return await future

    def run_alone(self, clip):
        """(output, Timing) with the model run now in this thread, or None where a batch may form: clips
        are queued or on their way, or a batch is running."""
        if not self.busy.acquire(blocking=False):
            return None
        try:
            if not self.queue.empty() or self.more_coming():
                return None
            start = time.perf_counter()
            self.on_batch(1)
            output = self.run(clip[None])[0]
            return output, Timing(queued=0.0, model=time.perf_counter() - start, batch=1)
        finally:
            self.busy.release()

    def close(self):
        self.queue.put(None)
        self.thread.join()

    def _loop(self):
        while True:
            item = self.queue.get()
            if item is None:
                return
            batch, deadline = [item], time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                wait = deadline - time.monotonic() if self.more_coming() else 0.0
                try:
                    item = self.queue.get(timeout=wait) if wait > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            shapes = {}
            for entry in batch:
                shapes.setdefault(tuple(entry[0].shape), []).append(entry)
            with self.busy:
                for group in shapes.values():
                    self._run(group)

    def _run(self, group):
        start = time.perf_counter()
        try:
            self.on_batch(len(group))
            outputs = list(self.run(torch.stack([entry[0] for entry in group])))
        except Exception as error:  # noqa: BLE001 - it goes to the request that caused it
            if len(group) > 1:
                for entry in group:
                    self._run([entry])
                return
            outputs = [error]
        model = time.perf_counter() - start
        for (_, loop, future, queued), output in zip(group, outputs):
            timing = Timing(queued=start - queued, model=model, batch=len(group))
            loop.call_soon_threadsafe(_settle, future, output if isinstance(output, Exception) else (output, timing))


def _settle(future, output):
    if future.cancelled():
        return
    if isinstance(output, Exception):
        future.set_exception(output)
    else:
        future.set_result(output)
