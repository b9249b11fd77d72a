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
    amp: bool = typer.Option(False, help="Mixed precision (CUDA)."),
    resume: Optional[Path] = typer.Option(None, help="Checkpoint to resume from, or 'auto' for WORK_DIR/latest.pth."),
):
    """Train a preset on one CPU or GPU; logs, checkpoints and the resolved config go to the work dir.

    Examples:

      tsm prepare toy --root data/toy && tsm train --preset tsm_r18_1x1x8_toy

      tsm train -p tsm_r50_1x1x8_50e_sthv1 --set data.videos_per_gpu=4 --accumulate 2
    """
    _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, None)


def finetune(
    checkpoint: Path = typer.Option(..., "--from", help="A Kinetics-400 (or any) checkpoint: ours, mmaction2 0.x "
                                                         "or the original TSM code's."),
    preset: str = typer.Option(..., "--preset", "-p", help="The target preset (e.g. "
                                                         "tsm_k400_pretrained_r50_1x1x8_25e_ucf101) or your YAML."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help=SET_HELP),
    work_dir: Optional[Path] = typer.Option(None, help="Checkpoints and logs [default: work_dirs/<preset>]."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0),
    deterministic: bool = typer.Option(False),
    autoscale_lr: bool = typer.Option(True, "--autoscale-lr/--no-autoscale-lr"),
    accumulate: int = typer.Option(1, min=1),
    amp: bool = typer.Option(False),
    resume: Optional[Path] = typer.Option(None, help="Resume this finetuning run ('auto': WORK_DIR/latest.pth)."),
):
    """Finetune: keep a checkpoint's backbone, start a new head for the preset's classes, train with the
    preset's recipe. The log lists what was kept and what was dropped.

    Examples:

      tsm finetune --from tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --preset tsm_k400_pretrained_r50_1x1x8_25e_ucf101

      tsm finetune --from k400.pth --preset tsm_k400_pretrained_r50_1x1x8_25e_hmdb51 --set model.num_classes=5 data.train.ann_file=mine/train.txt
    """
    if not checkpoint.is_file():
        raise UserError(f"--from {checkpoint}: no such checkpoint")
    _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, checkpoint)


def _run(preset, overrides, work_dir, device, seed, deterministic, autoscale_lr, accumulate, amp, resume, init_from):
    from ..presets import load_preset
    from ..train.loop import train as run

    cfg = load_preset(preset, overrides or ())
    work_dir = work_dir or Path("work_dirs") / cfg["name"]
    if resume is not None and str(resume) == "auto":
        resume = work_dir / "latest.pth"
        if not resume.is_file():
            resume = None
    elif resume is not None and not resume.is_file():
        raise UserError(f"--resume {resume}: no such checkpoint")
    metrics = run(cfg, work_dir, device=device, seed=seed, deterministic=deterministic, autoscale_lr=autoscale_lr,
                  accumulation=accumulate, amp=amp, resume=resume, init_from=init_from)
    typer.echo(f"done: val top1 {metrics.get('top1', float('nan')):.4f}; checkpoints in {work_dir}")
