"""A training run: its options, what it builds from the preset, where it starts, and the state its
checkpoints hold."""
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data.distributed import DistributedSampler

from ..atomic import copy_file, write_text
from ..checkpoint import prune_epoch_checkpoints, read_checkpoint, save_checkpoint
from ..data import build_dataset, build_loader
from ..data.annotations import thin_validation_warning
from ..devices import amp_dtype
from ..distributed import every_nth, join_process_group
from ..models import build_recognizer
from ..presets import dump_preset
from .losses import training_loss
from .optim import build_optimizer, scaled_lr
from .options import TrainOptions
from .precision import Precision, resolve_precision
from .runtime import EpochBar, Logger, ResumableSampler, Stopwatch, seed_everything
from .sync_bn import convert_sync_batchnorm


@dataclass
class Progress:
    """Where the run stands: the next epoch and iteration, the best validation score so far, and the
    random state to continue with when resuming mid-epoch."""
    epoch: int = 0
    iteration: int = 0
    best: float = -1.0
    rng_state: Optional[torch.Tensor] = None


@dataclass
class Run:
    """Everything one process trains with, built from the preset and the options by set_up_run."""
    cfg: dict
    options: TrainOptions
    work_dir: Path
    world: int
    rank: int
    device: torch.device
    model: torch.nn.Module  # the model itself; `net` is what the steps call (DDP's wrapper when world > 1)
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    loss_of: object
    train_set: object
    sampler: ResumableSampler
    train_loader: object
    val_loader: object
    base_lr: float
    iters: int  # batches per epoch in each process
    log: Logger
    bar: EpochBar
    autocast_dtype: Optional[torch.dtype] = None  # the --amp dtype on this device; None: fp32
    precision: Precision = Precision(channels_last=False, amp=None)
    resumed: Optional[dict] = None  # the checkpoint a resumed run continues, read once
    class_names: list = field(default_factory=list)
    unreadable: set = field(default_factory=set)  # the files reported unreadable so far
    clock: Stopwatch = field(default_factory=Stopwatch)  # where the run's time goes
    latest_written_at: Optional[float] = None  # time.monotonic() of this process's last latest.pth

    @property
    def main(self):
        return self.rank == 0


def set_up_run(cfg, work_dir, options, echo=print):
    """Join the process group (if any), seed, and build the data, model, optimizer and logs of a run;
    writes config.yaml, and copies load_from's backbone in unless resuming."""
    world, rank, device = join_process_group(options.device)
    amp_dtype(options.amp, device)  # a bad --amp for this device fails before any data is read
    resumed = read_checkpoint(options.resume) if options.resume else None
    precision, precision_line = resolve_precision(options.channels_last, options.amp, device,
                                                  None if resumed is None else resumed.get("precision", {}),
                                                  advise=rank == 0)
    autocast_dtype = amp_dtype(precision.amp, device)
    work_dir = Path(work_dir)
    bar = EpochBar(enabled=rank == 0 and echo is print and sys.stdout.isatty())
    seed = options.seed
    seed_everything(seed, options.deterministic)
    data_cfg = cfg["data"]
    train_set = build_dataset(cfg, "train", seed=seed)
    val_set = build_dataset(cfg, "val", seed=seed)
    batch, workers = data_cfg["videos_per_gpu"], data_cfg["workers_per_gpu"]
    # The same shuffled order for any number of processes: rank r takes every world-th video of it.
    sampler = ResumableSampler(DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed))
    train_loader = build_loader(train_set, batch, workers, seed=seed, sampler=sampler)
    val_loader = build_loader(every_nth(val_set, world, rank), data_cfg["val_videos_per_gpu"] or batch, workers,
                              shuffle=False)
    model = build_recognizer(cfg, load_pretrained=options.load_from is None)
    # opened once the data is found (a missing list is the usual failure), closed by train()'s `with`
    log = Logger(work_dir, bar.print if bar.enabled else echo, enabled=rank == 0)
    if rank == 0:
        write_text(work_dir / "config.yaml", dump_preset(cfg))
        log.line(checkpoint_policy(cfg["checkpoint"]))
        log.line(precision_line)
        warning = thin_validation(val_set.records, cfg)
        if warning:
            log.line(warning)
    if options.load_from and not options.resume:
        start_from_checkpoint(model, options.load_from, log)
    if options.sync_bn and world > 1:
        model = convert_sync_batchnorm(model, device)
    model = model.to(device, memory_format=torch.channels_last if precision.channels_last else torch.preserve_format)
    base_lr = _scaled_lr(cfg["optimizer"], batch, world, options, log)
    optimizer = build_optimizer(model, cfg["optimizer"], base_lr)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model,
                                                        device_ids=[device.index] if device.type == "cuda" else None)
    return Run(cfg=cfg, options=options, work_dir=work_dir, world=world, rank=rank, device=device, model=model,
               net=net, optimizer=optimizer, scaler=torch.amp.GradScaler("cuda", enabled=precision.amp == "fp16"),
               loss_of=training_loss(cfg["model"], model.multi_label), train_set=train_set, sampler=sampler,
               train_loader=train_loader, val_loader=val_loader, base_lr=base_lr,
               iters=-(-len(sampler.inner) // batch), log=log, bar=bar, autocast_dtype=autocast_dtype,
               precision=precision, resumed=resumed, class_names=_labels(cfg))


def checkpoint_policy(checkpoint_cfg):
    """The line that says at the start of a run what it keeps on disk."""
    keep = checkpoint_cfg["max_keep"]
    kept = "every one" if keep is None else f"the newest {keep}"
    change = "--set checkpoint.max_keep=3 keeps fewer" if keep is None else "--set checkpoint.max_keep=null keeps all"
    return (f"checkpoints: best.pth, latest.pth and epoch_N.pth every {checkpoint_cfg['interval']} epochs, of which "
            f"{kept} stay ({change})")


def thin_validation(records, cfg):
    names = _labels(cfg) or [str(i) for i in range(cfg["model"]["num_classes"])]
    return thin_validation_warning(records.videos_per_class(cfg["model"]["num_classes"]), names)


def _scaled_lr(opt_cfg, batch, world, options, log):
    base_lr, reference, actual = scaled_lr(opt_cfg, batch, world, options.accumulation, options.autoscale_lr)
    log.line(f"lr {base_lr:g}: preset lr {opt_cfg['lr']:g} is for a total batch of {reference}; this run's is "
             f"{actual} ({batch} videos x {world} processes x {options.accumulation} accumulation)"
             + ("" if options.autoscale_lr else ", kept (--no-autoscale-lr)") + " [linear scaling rule]")
    return base_lr


def resume_progress(run):
    """The progress to start from: the resume checkpoint's (model, optimizer and scaler state loaded
    into the run), else the beginning."""
    path = run.options.resume
    if not path:
        return Progress()
    state = run.resumed if run.resumed is not None else read_checkpoint(path)
    run.resumed = None  # its tensors are in the model now
    run.model.load_state_dict(state["state_dict"])
    run.optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    best = state.get("best_score", state.get("best_top1", -1.0))  # best_top1: checkpoints before the rename
    progress = Progress(state["epoch"], state.get("iteration", 0), best, state.get("torch_rng"))
    run.log.line(f"resumed from {path} at epoch {progress.epoch + 1}, iteration {progress.iteration}")
    return progress


def save_state(run, name, progress, **extra):
    """WORK_DIR/name: the model with the optimizer and scaler state, resumable at `progress` (rank 0 only)."""
    if run.main:
        return save_checkpoint(run.work_dir / name, run.model, run.cfg, labels=run.class_names,
                               epoch=progress.epoch, iteration=progress.iteration,
                               optimizer=run.optimizer.state_dict(), scaler=run.scaler.state_dict(),
                               best_score=progress.best, precision=run.precision.as_dict(), **extra)
    return None


# After its first epoch a run rewrites latest.pth at most this often (and whenever it writes epoch_N.pth,
# at its end and when a signal stops it): short epochs spent much of their time writing it, and a kill -9
# loses at most this much training.
LATEST_EVERY_S = 60


def save_epoch_end(run, progress, last):
    """After an epoch: epoch_N.pth at the preset's checkpoint interval (pruned to checkpoint.max_keep)
    and at the end, latest.pth then a copy of it; otherwise latest.pth after this process's first epoch
    and then at most every LATEST_EVERY_S seconds. latest.pth is never older than the newest epoch_N.pth."""
    if not run.main:
        return
    latest = run.work_dir / "latest.pth"
    if progress.epoch % run.cfg["checkpoint"]["interval"] == 0 or last:
        copy_file(save_state(run, f"epoch_{progress.epoch}.pth", progress), latest)
        prune_epoch_checkpoints(run.work_dir, run.cfg["checkpoint"]["max_keep"])
    elif run.latest_written_at is None or time.monotonic() - run.latest_written_at >= LATEST_EVERY_S:
        save_state(run, "latest.pth", progress)
    else:
        return
    run.latest_written_at = time.monotonic()


def save_best(run, progress):
    """best.pth: the weights (no optimizer state) after the epoch with the best validation score."""
    if run.main:
        save_checkpoint(run.work_dir / "best.pth", run.model, run.cfg, labels=run.class_names, epoch=progress.epoch,
                        best_score=progress.best, precision=run.precision.as_dict())


def start_from_checkpoint(model, path, log):
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


def _labels(cfg):
    from ..labels import class_names

    return class_names(cfg)
