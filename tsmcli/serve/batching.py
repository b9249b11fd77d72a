"""Concurrent requests' clips through the model together: one thread runs the model on up to max_batch
clips of one shape, waiting at most max_wait_ms for a batch to fill after its first clip."""
import asyncio
import queue
import threading
import time

import torch


class Batcher:
    """submit(clip) -> the model's output for it. run: clips (N, V*T, 3, H, W) -> (N, K) on the CPU. A batch
    that fails is run again clip by clip, so that an engine error fails only the request that causes it.
    on_batch(size): called for each batch run (metrics)."""

    def __init__(self, run, max_batch=8, max_wait_ms=10.0, on_batch=None):
        self.run, self.max_batch, self.max_wait = run, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000
        self.on_batch = on_batch or (lambda size: None)
        self.queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="tsm-batcher", daemon=True)
        self.thread.start()

    async def submit(self, clip):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.queue.put((clip, loop, future))
        return await future

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
                try:
                    item = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            shapes = {}
            for entry in batch:
                shapes.setdefault(tuple(entry[0].shape), []).append(entry)
            for group in shapes.values():
                self._run(group)

    def _run(self, group):
        try:
            self.on_batch(len(group))
            outputs = list(self.run(torch.stack([clip for clip, _, _ in group])))
        except Exception as error:  # noqa: BLE001 - it goes to the request that caused it
            if len(group) > 1:
                for entry in group:
                    self._run([entry])
                return
            outputs = [error]
        for (_, loop, future), output in zip(group, outputs):
            loop.call_soon_threadsafe(_settle, future, output)


def _settle(future, output):
    if future.cancelled():
        return
    if isinstance(output, Exception):
        future.set_exception(output)
    else:
        future.set_result(output)
