"""Learning rate at a given (fractional) epoch: step or cosine, with optional linear warmup."""
import math


def lr_at(schedule, base_lr, epoch, iters_per_epoch, iteration):
    """schedule: the preset's `schedule` section. epoch counts from 0; iteration within the epoch.

    Step and cosine change per epoch, as mmcv's by-epoch policies do; warmup is per iteration:
    lr * (ratio + (1 - ratio) * progress) over warmup_epochs.
    """
    if schedule["policy"] == "step":
        lr = base_lr * schedule["gamma"] ** sum(epoch >= s for s in schedule["steps"])
    else:
        progress = epoch / schedule["epochs"]
        lr = schedule["min_lr"] + (base_lr - schedule["min_lr"]) * (1 + math.cos(math.pi * progress)) / 2
    warmup_iters = schedule["warmup_epochs"] * iters_per_epoch
    done = epoch * iters_per_epoch + iteration
    if warmup_iters and done < warmup_iters:
        ratio = schedule["warmup_ratio"]
        lr *= 1 - (1 - done / warmup_iters) * (1 - ratio)
    return lr


def set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1)
