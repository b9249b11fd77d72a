"""Where this process stands in a multi-process job: its rank and world from torchrun's or SLURM's
variables, how it finds rank 0, joining the process group, and its share of an evaluation set. Used by
training and by `tsm test --gpus N` alike."""
import os
import re

import torch
import torch.distributed as dist

from .devices import resolve_device


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
