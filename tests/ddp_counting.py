"""Entry points for `tsmcli.train.loop.launch` that count DDP's gradient synchronisations per process
(a communication hook, called for each gradient bucket; the last bucket ends one), with DDP's no_sync
as it is, or made a no-op: how every micro-batch synchronised before the training loop used it."""
import contextlib
import os
from pathlib import Path

import torch


def _patched_ddp(keep_no_sync):
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    class CountingDDP(torch.nn.parallel.DistributedDataParallel):
        calls = 0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

            def counted(state, bucket):
                CountingDDP.calls += bucket.is_last()
                return allreduce_hook(state, bucket)

            self.register_comm_hook(None, counted)

        def no_sync(self):
            return super().no_sync() if keep_no_sync else contextlib.nullcontext()

    torch.nn.parallel.DistributedDataParallel = CountingDDP
    return CountingDDP


def _run(cfg, work_dir, options, keep_no_sync):
    from tsmcli.train import loop

    counting = _patched_ddp(keep_no_sync)
    try:
        return loop._worker(cfg, work_dir, options)
    finally:
        Path(work_dir, f"allreduces-{os.environ['RANK']}.txt").write_text(str(counting.calls))


def with_no_sync(cfg, work_dir, options):
    return _run(cfg, work_dir, options, keep_no_sync=True)


def syncing_every_micro_batch(cfg, work_dir, options):
    return _run(cfg, work_dir, options, keep_no_sync=False)
