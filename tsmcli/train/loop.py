"""The training loop: one process, or one of several under DistributedDataParallel.

train(cfg, work_dir, options) reads down to the optimizer step in three calls: set_up_run (run.py:
data, model, optimizer, logs), train_one_epoch, and train_step (forward, backward and, at the end of
an accumulation, the optimizer step). It validates every evaluation.interval epochs and writes to
work_dir: config.yaml (the resolved preset), log.txt, log.jsonl (one record per logging interval and
per validation), latest.pth / epoch_N.pth / best.pth (our checkpoint format, written atomically).
"""
import contextlib
import logging
import signal
import time
from dataclasses import replace
from typing import Any, Dict

import numpy as np
import torch
import torch.distributed as dist

from ..data import blend_batch, workers_stopped_after
from ..errors import UserError
from ..launch import run_workers
from ..metrics import top1_hits
from ..scoring import compute_metrics, score_videos
from .options import TrainOptions
from .run import resume_progress, save_best, save_epoch_end, save_state, set_up_run
from .runtime import StopRequest, Stopwatch
from .schedule import lr_at, set_lr

log = logging.getLogger(__name__)
RANKED_BY = ("top1", "mean_average_precision", "mmit_mean_average_precision", "mean_class_accuracy")


def train(cfg, work_dir, options=None, echo=print, **fields):
    """Train the resolved preset `cfg` with `options` (a TrainOptions; `fields` replace some of its
    values); returns the last validation metrics, with "stopped": the signal number when a signal
    stopped it. Under torchrun / SLURM / `tsm train --gpus N` (WORLD_SIZE > 1) this process is one DDP
    worker: NCCL on GPUs, Gloo on the CPU; rank 0 logs and checkpoints."""
    options = replace(options or TrainOptions(), **fields)
    clock = Stopwatch()
    with clock.part("start-up"):
        run = set_up_run(cfg, work_dir, options, echo)
        progress = resume_progress(run)
    run.clock = clock
    epochs = cfg["schedule"]["epochs"]
    metrics: Dict[str, Any] = {}
    with run.log, StopRequest() as stop, workers_stopped_after(run.train_loader, run.val_loader):
        for epoch in range(progress.epoch, epochs):
            first = progress.iteration if epoch == progress.epoch else 0
            stopped = train_one_epoch(run, epoch, first, stop, progress.rng_state if first else None)
            if stopped:
                signum, iteration = stopped
                with clock.part("checkpoints"):
                    save_state(run, "latest.pth", replace(progress, epoch=epoch, iteration=iteration),
                               torch_rng=torch.get_rng_state())
                run.log.line(f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1}, iteration {iteration}; "
                             f"wrote {run.work_dir / 'latest.pth'}")
                run.bar.close()
                say_time(run, epoch + 1)
                return {**metrics, "stopped": signum}
            progress = replace(progress, epoch=epoch + 1, iteration=0, rng_state=None)
            last = epoch + 1 == epochs
            if (epoch + 1) % cfg["evaluation"]["interval"] == 0 or last:
                metrics = validate(run, epoch + 1, last)
                ranked_by = next(k for k in RANKED_BY if k in metrics)  # best.pth follows this one
                if metrics[ranked_by] > progress.best:
                    progress.best = metrics[ranked_by]
                    with clock.part("checkpoints"):
                        save_best(run, progress)
            with clock.part("checkpoints"):
                save_epoch_end(run, progress, last)
        run.bar.close()
        say_time(run, epochs)
    if run.world > 1:
        dist.barrier()
    return metrics


def say_time(run, epoch):
    """The run's time by part (training steps, waiting for data, validation, checkpoints...), as the last
    line of its log and a "time" record of log.jsonl."""
    run.log.record(mode="time", epoch=epoch, **run.clock.record())
    run.log.line(run.clock.summary())


def train_one_epoch(run, epoch, first, stop, rng_state=None):
    """The epoch's batches from iteration `first` on (0, or where a resumed run stopped, with the random
    state it had then). Returns None, or (signal, iterations done) when a signal stopped it: after an
    optimizer step, and after the same one in every process."""
    run.train_set.set_epoch(epoch)
    run.sampler.set_epoch(epoch)
    run.sampler.skip = first * run.cfg["data"]["videos_per_gpu"]
    if rng_state is not None:
        torch.set_rng_state(rng_state)
    else:  # each epoch's randomness (dropout) depends on (seed, epoch) only: resumable exactly
        torch.manual_seed(run.options.seed * 100_003 + epoch)
    run.net.train()
    run.bar.epoch(epoch + 1, run.iters, first)
    accumulation, log_interval = run.options.accumulation, run.cfg["log"]["interval"]
    blending = run.cfg["train"]["blending"]
    clock = run.clock
    tick = time.perf_counter()
    for i, data in enumerate(run.train_loader, start=first):
        data_time = time.perf_counter() - tick
        clock.add("data", data_time)
        report_unreadable(run, [f for meta in data["meta"] for f in meta["failures"]])
        lr = lr_at(run.cfg["schedule"], run.base_lr, epoch, run.iters, i)
        rng = np.random.default_rng([run.options.seed, epoch, i]) if blending else None  # the batch's mix
        ends_accumulation = (i + 1) % accumulation == 0 or i + 1 == run.iters
        with clock.part("steps"):
            loss, logits = train_step(run, data, lr, rng=rng, ends_accumulation=ends_accumulation)
        step_time = time.perf_counter() - tick
        run.bar.step(loss)
        if (i + 1) % log_interval == 0 or i + 1 == run.iters:
            with clock.part("logs"):
                _log_step(run, epoch, i, lr, loss, logits, data["label"], data_time, step_time)
        signum = (i + 1) % accumulation == 0 and i + 1 < run.iters and stop.agreed(run.world, run.device)
        if signum:
            return signum, i + 1
        tick = time.perf_counter()
    return None


def train_step(run, data, lr, rng=None, ends_accumulation=True):
    """Forward and backward on one batch at learning rate lr (gradients scaled by 1/accumulation), then,
    when the batch ends an accumulation, the optimizer step; rng draws the mixup / cutmix of a preset
    that blends. Returns the batch's loss and logits."""
    options, device, optimizer = run.options, run.device, run.optimizer
    set_lr(optimizer, lr)
    imgs, labels = data["imgs"].to(device, non_blocking=True), data["label"].to(device)
    if run.precision.channels_last:  # frames are (N, V*T, 3, H, W): channels-last per frame
        imgs = imgs.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(imgs.shape)
    target = labels
    blending = run.cfg["train"]["blending"]
    if blending:
        imgs, target = blend_batch(imgs, labels, run.cfg["model"]["num_classes"], blending["type"],
                                   blending["alpha"], rng)
    # DDP averages the gradients over the processes once per optimizer step, not per micro-batch
    with run.net.no_sync() if run.world > 1 and not ends_accumulation else contextlib.nullcontext():
        autocast = run.autocast_dtype
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            logits = run.net(imgs)
            loss = run.loss_of(logits.float(), target) / options.accumulation
        run.scaler.scale(loss).backward()
    if ends_accumulation:
        grad_clip = run.cfg["optimizer"]["grad_clip"]
        if grad_clip:
            run.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), grad_clip)
        run.scaler.step(optimizer)
        run.scaler.update()
        optimizer.zero_grad(set_to_none=True)
    return loss.detach() * options.accumulation, logits.detach()


def _log_step(run, epoch, i, lr, loss, logits, labels, data_time, step_time):
    hits = top1_hits(logits, labels.to(logits.device))
    reported = torch.stack([loss.float(), torch.tensor(hits, device=loss.device)])
    if run.world > 1:  # the mean over all processes: what the global batch saw
        dist.all_reduce(reported)
        reported /= run.world
    device = run.device
    record = {"mode": "train", "epoch": epoch + 1, "iter": i + 1, "step": epoch * run.iters + i + 1, "lr": lr,
              "loss": reported[0].item(), "top1": reported[1].item(), "data_time": data_time, "time": step_time,
              "memory_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else 0}
    run.log.record(**record)
    run.log.line(f"epoch {epoch + 1} [{i + 1}/{run.iters}] lr {lr:.5f} loss {record['loss']:.4f} "
                 f"top1 {record['top1']:.3f} time {step_time:.2f}s data {data_time:.2f}s")


def validate(run, epoch, last):
    """The preset's validation metrics after `epoch` (1-based), logged and drawn into the curves."""
    with run.clock.part("validation"):
        metrics = validation_metrics(run.model, run.val_loader, run.device, run.cfg["evaluation"]["metrics"],
                                     run.world)
    report_unreadable(run, metrics["failed"])
    scores = {k: v for k, v in metrics.items() if k not in ("videos", "failed")}
    run.log.record(mode="val", epoch=epoch, **scores, videos=metrics["videos"], failed=len(metrics["failed"]))
    run.log.line(f"epoch {epoch} val " + " ".join(f"{k} {v:.4f}" for k, v in scores.items())
                 + f" ({metrics['videos']} videos"
                 + (f", {len(metrics['failed'])} unreadable" if metrics["failed"] else "") + ")")
    with run.clock.part("curves"):
        run.log.draw_curves(last=last)
    return metrics


def validation_metrics(model, loader, device, metric_names, world=1):
    """The metrics evaluation.metrics names, of the eval-mode model (a Recognizer, or DDP around one) over the
    loader (failed items count, as wrong predictions on blank frames, and are reported), over all
    processes' shares."""
    recognizer = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
    if recognizer.average_clips is None:
        raise UserError("model.average_clips: null returns per-view scores, which validation cannot rank; set "
                        "model.average_clips=prob (or score)")
    model.eval()
    scores, labels, metas = score_videos(lambda clips: model(clips.to(device)).float().cpu(), loader,
                                         recognizer.num_classes, world)
    return {**compute_metrics(scores, labels, metric_names), "videos": len(labels),
            "failed": [m["failures"][0] for m in metas if m["failed"]]}


def report_unreadable(run, failures):
    """A warning in the run's log for each unreadable file (`failures`: items' meta["failures"]), once
    per file and run; the loader replaced it (training) or counted it as wrong (validation)."""
    for failure in failures:
        if failure["path"] not in run.unreadable:
            run.unreadable.add(failure["path"])
            where = f"; list line {failure['line']}" if failure.get("line") else ""
            log.warning("unreadable media %s (%s%s)", failure["path"], failure["reason"], where)


def _worker(cfg, work_dir, options):
    """The entry point of each process `launch` starts (module level, so that it can be pickled)."""
    try:
        return train(cfg, work_dir, options)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(cfg, work_dir, nproc, options=None, entrypoint=None, **fields):
    """train() in nproc worker processes on this machine (options.nnodes machines in all), through
    tsmcli.launch; returns the metrics of this machine's first worker (all hold the gathered ones)."""
    options = replace(options or TrainOptions(), **fields)
    results = run_workers(entrypoint or _worker, (cfg, str(work_dir), options), nproc, options.nnodes,
                          options.node_rank, options.master_addr, options.master_port, run_id="tsm-train")
    return results[min(results)]
