"""The training loop: one process, or one of several under DistributedDataParallel.

train(preset, work_dir) builds the datasets, model and optimizer from the preset, trains epoch by
epoch with the preset's schedule, validates every evaluation.interval epochs, and writes to work_dir:
config.yaml (the resolved preset), log.txt, log.jsonl (one record per logging interval and per
validation), latest.pth / epoch_N.pth / best.pth (our checkpoint format, written atomically).
"""
import contextlib
import math
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

from ..atomic import write_text
from ..checkpoint import prune_epoch_checkpoints, read_checkpoint, save_checkpoint
from ..data import blend_batch, build_dataset, build_loader, workers_stopped_after
from ..devices import amp_dtype
from ..distributed import every_nth, join_process_group
from ..evaluate import compute_metrics, score_videos
from ..launch import run_workers
from ..metrics import top1_hits
from ..models import build_recognizer
from ..presets import dump_preset
from .losses import training_loss
from .optim import build_optimizer, scaled_lr
from .runtime import EpochBar, Logger, ResumableSampler, StopRequest, seed_everything
from .schedule import lr_at, set_lr
from .sync_bn import convert_sync_batchnorm


RANKED_BY = ("top1", "mean_average_precision", "mmit_mean_average_precision", "mean_class_accuracy")


def evaluate(model, loader, device, metric_names, world=1):
    """The metrics evaluation.metrics names, of the eval-mode model over the loader (failed items count,
    as wrong predictions on blank frames, and are reported), over all processes' shares."""
    model.eval()
    scores, labels, metas = score_videos(model, loader, device, world)
    return {**compute_metrics(scores, labels, metric_names), "videos": len(labels),
            "failed": [m["path"] for m in metas if m["failed"]]}


def init_from_checkpoint(model, path, log):
    """Finetuning: copy every tensor of the checkpoint (ours, mmaction2 or original format) whose name
    and shape fit the model, except the classifier, which starts anew for the new classes."""
    state = read_checkpoint(path)["state_dict"]
    own = model.state_dict()
    kept = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)
            and not k.startswith("head.")}
    dropped = sorted(k for k in state if k not in kept)
    missing = sorted(k for k in own if k not in kept and not k.startswith("head."))
    model.load_state_dict(kept, strict=False)
    log.line(f"finetuning from {path}: kept {len(kept)} of {len(state)} tensors; re-initialised the head "
             f"({model.head.fc.out_features} classes)")
    for key in dropped:
        shape = "x".join(map(str, state[key].shape))
        ours = "x".join(map(str, own[key].shape)) if key in own else "not in this model"
        log.line(f"  dropped {key} ({shape} -> {ours})")
    for key in missing:
        log.line(f"  not in the checkpoint, left as initialised: {key}")
    return {"kept": sorted(kept), "dropped": dropped, "missing": missing}


def train(cfg, work_dir, device="auto", seed=0, deterministic=False, autoscale_lr=True, accumulation=1,
          amp=None, resume=None, init_from=None, sync_bn=False, channels_last=False, echo=print):
    """Train the resolved preset `cfg` (from init_from's backbone when finetuning); returns the last
    validation metrics. Under torchrun / SLURM / `tsm train --gpus N` (WORLD_SIZE > 1) this process is
    one DDP worker: NCCL on GPUs, Gloo on the CPU; rank 0 logs and checkpoints.
    amp: None, "bf16" or "fp16" (fp16 with a gradient scaler, CUDA only)."""
    world, rank, device = join_process_group(device)
    autocast_dtype = amp_dtype(amp, device)
    main = rank == 0
    bar = EpochBar(enabled=main and echo is print and sys.stdout.isatty())
    if bar.enabled:
        echo = bar.print
    work_dir = Path(work_dir)
    class_names = _labels(cfg)
    seed_everything(seed, deterministic)
    data_cfg, opt_cfg, schedule = cfg["data"], cfg["optimizer"], cfg["schedule"]
    train_set = build_dataset(cfg, "train", seed=seed)
    val_set = build_dataset(cfg, "val", seed=seed)
    batch = data_cfg["videos_per_gpu"]
    workers = data_cfg["workers_per_gpu"]
    # The same shuffled order for any number of processes: rank r takes every world-th video of it.
    sampler = ResumableSampler(DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed))
    train_loader = build_loader(train_set, batch, workers, seed=seed, sampler=sampler)
    val_loader = build_loader(every_nth(val_set, world, rank), data_cfg["val_videos_per_gpu"] or batch, workers, shuffle=False)
    multi_label = data_cfg["multi_class"]
    model = build_recognizer(cfg["model"], load_pretrained=init_from is None, multi_label=multi_label)
    loss_of = training_loss(cfg["model"], multi_label)
    # opened once the data is found (a missing list is the usual failure), closed by the `with` below
    log = Logger(work_dir, echo, enabled=main)
    if main:
        write_text(work_dir / "config.yaml", dump_preset(cfg))
    if init_from and not resume:
        init_from_checkpoint(model, init_from, log)
    if sync_bn and world > 1:
        model = convert_sync_batchnorm(model, device)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    base_lr, reference, actual = scaled_lr(opt_cfg, batch, world, accumulation, autoscale_lr)
    log.line(f"lr {base_lr:g}: preset lr {opt_cfg['lr']:g} is for a total batch of {reference}; this run's is "
             f"{actual} ({batch} videos x {world} processes x {accumulation} accumulation)"
             + ("" if autoscale_lr else ", kept (--no-autoscale-lr)") + " [linear scaling rule]")
    optimizer = build_optimizer(model, opt_cfg, base_lr)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == "fp16")
    start_epoch, start_iter, best, rng_state = 0, 0, -1.0, None
    if resume:
        state = read_checkpoint(resume)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, start_iter = state["epoch"], state.get("iteration", 0)
        best, rng_state = state.get("best_top1", -1.0), state.get("torch_rng")
        log.line(f"resumed from {resume} at epoch {start_epoch + 1}, iteration {start_iter}")
    iters = math.ceil(len(sampler.inner) / batch)
    blending = cfg["train"]["blending"]
    metrics = {}
    with log, StopRequest() as stop, workers_stopped_after(train_loader, val_loader):
        for epoch in range(start_epoch, schedule["epochs"]):
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch)
            sampler.skip = start_iter * batch if epoch == start_epoch else 0
            first = start_iter if epoch == start_epoch else 0
            if first and rng_state is not None:
                torch.set_rng_state(rng_state)
            else:  # each epoch's randomness (dropout) depends on (seed, epoch) only: resumable exactly
                torch.manual_seed(seed * 100_003 + epoch)
            net.train()
            bar.epoch(epoch + 1, iters, first)
            tick = time.perf_counter()
            for i, data in enumerate(train_loader, start=first):
                data_time = time.perf_counter() - tick
                lr = lr_at(schedule, base_lr, epoch, iters, i)
                set_lr(optimizer, lr)
                imgs, labels = data["imgs"].to(device, non_blocking=True), data["label"].to(device)
                if channels_last:  # frames are (N, V*T, 3, H, W): channels-last per frame
                    imgs = imgs.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(imgs.shape)
                target = labels
                if blending:
                    imgs, target = blend_batch(imgs, labels, cfg["model"]["num_classes"], blending["type"],
                                               blending["alpha"], np.random.default_rng([seed, epoch, i]))
                ends_accumulation = (i + 1) % accumulation == 0 or i + 1 == iters
                # DDP averages the gradients over the processes once per optimizer step, not per micro-batch
                with net.no_sync() if world > 1 and not ends_accumulation else contextlib.nullcontext():
                    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                        logits = net(imgs)
                        loss = loss_of(logits.float(), target) / accumulation
                    scaler.scale(loss).backward()
                if ends_accumulation:
                    if opt_cfg["grad_clip"]:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), opt_cfg["grad_clip"])
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                step_time = time.perf_counter() - tick
                bar.step(loss.detach() * accumulation)
                if (i + 1) % cfg["log"]["interval"] == 0 or i + 1 == iters:
                    reported = torch.stack([loss.detach().float() * accumulation,
                                            torch.tensor(top1_hits(logits.detach(), labels), device=loss.device)])
                    if world > 1:  # the mean over all processes: what the global batch saw
                        dist.all_reduce(reported)
                        reported /= world
                    record = {"mode": "train", "epoch": epoch + 1, "iter": i + 1, "step": epoch * iters + i + 1, "lr": lr,
                              "loss": reported[0].item(), "top1": reported[1].item(),
                              "data_time": data_time, "time": step_time,
                              "memory_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if device.type == "cuda" else 0}
                    log.record(**record)
                    log.line(f"epoch {epoch + 1} [{i + 1}/{iters}] lr {lr:.5f} loss {record['loss']:.4f} "
                             f"top1 {record['top1']:.3f} time {step_time:.2f}s data {data_time:.2f}s")
                signum = (i + 1) % accumulation == 0 and i + 1 < iters and stop.agreed(world, device)
                if signum:
                    if main:
                        save_checkpoint(work_dir / "latest.pth", model, cfg, labels=class_names, epoch=epoch,
                                        iteration=i + 1, optimizer=optimizer.state_dict(), scaler=scaler.state_dict(),
                                        best_top1=best, torch_rng=torch.get_rng_state())
                    log.line(f"stopped by {signal.Signals(signum).name} at epoch {epoch + 1}, iteration {i + 1}; "
                             f"wrote {work_dir / 'latest.pth'}")
                    bar.close()
                    return {**metrics, "stopped": signum}
                tick = time.perf_counter()
            last = epoch + 1 == schedule["epochs"]
            if (epoch + 1) % cfg["evaluation"]["interval"] == 0 or last:
                metrics = evaluate(model, val_loader, device, cfg["evaluation"]["metrics"], world)
                scores = {k: v for k, v in metrics.items() if k not in ("videos", "failed")}
                log.record(mode="val", epoch=epoch + 1, **scores, videos=metrics["videos"],
                           failed=len(metrics["failed"]))
                log.line(f"epoch {epoch + 1} val " + " ".join(f"{k} {v:.4f}" for k, v in scores.items())
                         + f" ({metrics['videos']} videos"
                         + (f", {len(metrics['failed'])} unreadable" if metrics["failed"] else "") + ")")
                log.draw_curves(last=last)
                ranked_by = next(k for k in RANKED_BY if k in scores)  # best.pth follows this one
                if metrics[ranked_by] > best:
                    best = metrics[ranked_by]
                    if main:
                        save_checkpoint(work_dir / "best.pth", model, cfg, labels=class_names, epoch=epoch + 1,
                                        best_top1=best)
            state = {"epoch": epoch + 1, "iteration": 0, "optimizer": optimizer.state_dict(),
                     "scaler": scaler.state_dict(), "best_top1": best}
            if main:
                if (epoch + 1) % cfg["checkpoint"]["interval"] == 0 or last:
                    save_checkpoint(work_dir / f"epoch_{epoch + 1}.pth", model, cfg, labels=class_names, **state)
                    prune_epoch_checkpoints(work_dir, cfg["checkpoint"]["max_keep"])
                save_checkpoint(work_dir / "latest.pth", model, cfg, labels=class_names, **state)
    bar.close()
    if world > 1:
        dist.barrier()
    return metrics


def _worker(cfg, work_dir, kwargs):
    """The entry point of each process `launch` starts (module level, so that it can be pickled)."""
    try:
        return train(cfg, work_dir, **kwargs)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(cfg, work_dir, nproc, nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=29500,
           entrypoint=None, **kwargs):
    """train() in nproc worker processes on this machine (nnodes machines in all), through
    tsmcli.launch; returns the metrics of this machine's first worker (all hold the gathered ones)."""
    results = run_workers(entrypoint or _worker, (cfg, str(work_dir), {**kwargs, "echo": print}), nproc, nnodes,
                          node_rank, master_addr, master_port, run_id="tsm-train")
    return results[min(results)]


def _labels(cfg):
    from ..labels import class_names

    return class_names(cfg)
