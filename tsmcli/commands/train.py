"""`tsm train`: train a preset (one process: CPU or one GPU)."""
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UserError

SET_HELP = "Override preset values: --set model.dropout=0.8 data.videos_per_gpu=4"


def train(
    preset: str = typer.Option(..., "--preset", "-p", help="Preset name, zoo config name or YAML file."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
    work_dir: Optional[Path] = typer.Option(None, help="Checkpoints and logs [default: work_dirs/<preset>]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0),
    deterministic: bool = typer.Option(False, help="Deterministic algorithms (slower)."),
    autoscale_lr: bool = typer.Option(True, "--autoscale-lr/--no-autoscale-lr",
                                      help="Scale the preset's lr to this run's total batch (linear rule)."),
    accumulate: int = typer.Option(1, min=1, help="Gradient accumulation steps (a larger effective batch)."),
    amp: Optional[str] = typer.Option(None, help="Mixed precision: bf16 (CPU or GPU) or fp16 (GPU, with a "
                                                 "gradient scaler)."),
    channels_last: bool = typer.Option(False, help="Channels-last memory format (faster convolutions on "
                                                   "recent GPUs)."),
    resume: Optional[Path] = typer.Option(None, help="Checkpoint to resume from, or 'auto' for WORK_DIR/latest.pth."),
    gpus: int = typer.Option(1, min=0, help="Processes on this machine: GPUs with NCCL, or CPU processes with "
                                            "Gloo when there is no GPU; 0 = train on the CPU."),
    nnodes: int = typer.Option(1, min=1, help="Machines in the job (run the same command on each)."),
    node_rank: int = typer.Option(0, min=0, help="This machine's index among --nnodes."),
    master_addr: str = typer.Option("127.0.0.1", help="Address of node 0, for several machines."),
    master_port: int = typer.Option(29500, help="A free port on node 0."),
    sync_bn: bool = typer.Option(False, help="Synchronise BatchNorm statistics across processes."),
):
    """Train a preset on the CPU, one GPU, several GPUs or several machines; logs, checkpoints and the
    resolved config go to the work dir. Under torchrun or SLURM, the same command runs as one worker.

    Examples:

      tsm prepare toy --root data/toy && tsm train --preset tsm_r18_1x1x8_toy

      tsm train -p tsm_r50_1x1x8_50e_sthv1 --set data.videos_per_gpu=4 --accumulate 2

      tsm train -p tsm_r50_1x1x8_50e_k400 --gpus 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1
    """
    scale = {"gpus": gpus, "nnodes": nnodes, "node_rank": node_rank, "master_addr": master_addr,
             "master_port": master_port, "sync_bn": sync_bn}
    scale["channels_last"] = channels_last
    _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, None, scale)


def finetune(
    checkpoint: Optional[str] = typer.Option(None, "--from", help="A Kinetics-400 (or any) checkpoint: ours, "
                                         "mmaction2 0.x or the original TSM code's; a path, a URL or a zoo file "
                                         "name (downloaded once) [default: the preset's load_from]."),
    preset: str = typer.Option(..., "--preset", "-p", help="The target preset (e.g. "
                                                         "tsm_k400_pretrained_r50_1x1x8_25e_ucf101) or your YAML."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
    work_dir: Optional[Path] = typer.Option(None, help="Checkpoints and logs [default: work_dirs/<preset>]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0),
    deterministic: bool = typer.Option(False),
    autoscale_lr: bool = typer.Option(True, "--autoscale-lr/--no-autoscale-lr"),
    accumulate: int = typer.Option(1, min=1),
    amp: Optional[str] = typer.Option(None, help="bf16 or fp16."),
    channels_last: bool = typer.Option(False),
    resume: Optional[Path] = typer.Option(None, help="Resume this finetuning run ('auto': WORK_DIR/latest.pth)."),
):
    """Finetune: keep a checkpoint's backbone, start a new head for the preset's classes, train with the
    preset's recipe. The log lists what was kept and what was dropped.

    Examples:

      tsm finetune --from tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --preset tsm_k400_pretrained_r50_1x1x8_25e_ucf101

      tsm finetune --from k400.pth --preset tsm_k400_pretrained_r50_1x1x8_25e_hmdb51 --set model.num_classes=5 data.train.ann_file=mine/train.txt
    """
    _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, checkpoint,
         {"gpus": 1, "nnodes": 1, "channels_last": channels_last, "finetune": True})


def _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, init_from,
         scale=None):
    import torch

    from ..checkpoint import resolve_checkpoint
    from ..devices import amp_dtype, resolve_device
    from ..presets import load_preset
    from ..train.loop import launch
    from ..train.runtime import distributed_env
    from ..train.loop import train as run

    cfg = load_preset(preset, overrides or ())
    if cfg["inference_only"]:
        raise UserError(f"preset '{cfg['name']}' is one of mmaction2's inference-only configs (a test set, no "
                        "training recipe); use it with tsm test / predict, and train its model with the "
                        "matching training preset (`tsm presets list`)")
    work_dir = work_dir or Path("work_dirs") / cfg["name"]
    init_from = init_from or cfg["load_from"]
    if init_from is None and scale.get("finetune"):
        raise UserError(f"--from: which checkpoint to finetune from? The preset '{cfg['name']}' names none "
                        "(load_from); give a path, a URL or a model-zoo file name")
    if init_from and not resume:  # fetched once here, before any worker starts
        init_from = str(resolve_checkpoint(init_from))
    if resume is not None and str(resume) == "auto":
        resume = work_dir / "latest.pth"
        if not resume.is_file():
            resume = None
    elif resume is not None and not resume.is_file():
        raise UserError(f"--resume {resume}: no such checkpoint")
    if scale["gpus"] == 0:
        device = "cpu"
    kwargs = dict(device=device, seed=seed, deterministic=deterministic, autoscale_lr=autoscale_lr,
                  accumulation=accumulate, amp=amp, resume=resume, init_from=init_from,
                  sync_bn=scale.get("sync_bn", False), channels_last=scale.get("channels_last", False))
    amp_dtype(amp, resolve_device(device))  # a bad --device or --amp stops here, before any worker starts
    processes = max(scale["gpus"], 1)
    if distributed_env()[0] == 1 and processes * scale["nnodes"] > 1:
        if device == "auto" and not torch.cuda.is_available():
            kwargs["device"] = "cpu"
        metrics = launch(cfg, work_dir, processes, scale["nnodes"], scale.get("node_rank", 0), scale["master_addr"],
                         scale["master_port"], **kwargs)
    else:
        metrics = run(cfg, work_dir, **kwargs)
    if metrics.get("stopped"):
        typer.echo(f"stopped by a signal; continue with --resume auto (checkpoints in {work_dir})")
    else:
        typer.echo(f"done: val top1 {metrics.get('top1', float('nan')):.4f}; checkpoints in {work_dir}")
