"""A training run's options as one object, light to import (the command line builds it before torch loads)."""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence


@dataclass
class TrainOptions:
    """One run's options, from `tsm train` / `tsm finetune`'s command line to each worker process: what to
    train (resolved into the preset before any worker starts), how, from which checkpoint, and in how many
    processes. amp: "none", "bf16" or "fp16" (fp16 with a gradient scaler, CUDA only), None: fp32 or, resuming,
    what the run started with; channels_last: None is on for the CPU or, resuming, what the run started
    with (train/precision.py). load_from (`--from`,
    the preset's load_from): a checkpoint whose backbone starts the model (finetuning); resume: one whose
    whole state continues a run. command: the words of the command that started the run (as its command
    line parsed them), which a stopped run prints to continue."""
    preset: Optional[str] = None
    overrides: Sequence[str] = ()
    work_dir: Optional[Path] = None
    decoder: Optional[str] = None
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    autoscale_lr: bool = True
    accumulation: int = 1
    amp: Optional[str] = None
    channels_last: Optional[bool] = None
    sync_bn: bool = False
    resume: Optional[str] = None
    load_from: Optional[str] = None
    finetune: bool = False
    gpus: int = 1  # processes on this machine (0: one, on the CPU)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500
    command: Sequence[str] = ()
