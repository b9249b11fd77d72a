"""`tsm train` and `tsm finetune`: train a preset in one process or several."""
import contextlib
import inspect
from dataclasses import replace
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import UserError
from ..train.options import TrainOptions
from . import options


def train(
    ctx: typer.Context,
    preset: str = options.preset(),
    overrides: Optional[List[str]] = options.overrides(),
    work_dir: Optional[Path] = typer.Option(None, help="Checkpoints and logs [default: work_dirs/<preset>]."),
    device: str = options.device(),
    seed: int = typer.Option(0, min=0),
    deterministic: bool = typer.Option(False, help="Deterministic algorithms (slower)."),
    autoscale_lr: bool = typer.Option(True, "--autoscale-lr/--no-autoscale-lr",
                                      help="Scale the preset's lr to this run's total batch (linear rule)."),
    accumulation: int = typer.Option(1, "--accumulate", min=1,
                                     help="Gradient accumulation steps (a larger effective batch)."),
    amp: Optional[str] = options.training_amp(),
    channels_last: Optional[bool] = options.channels_last(),
    resume: Optional[Path] = typer.Option(None, help="Checkpoint to resume from, or 'auto' for WORK_DIR/latest.pth."),
    gpus: int = options.gpus(),
    nnodes: int = typer.Option(1, min=1, help="Machines in the job (run the same command on each)."),
    node_rank: int = typer.Option(0, min=0, help="This machine's index among --nnodes."),
    master_addr: str = typer.Option("127.0.0.1", help="Address of node 0, for several machines."),
    master_port: int = options.master_port(),
    sync_bn: bool = typer.Option(False, help="Synchronise BatchNorm statistics across processes."),
    decoder: Optional[str] = options.decoder(),
):
    """Train a preset on the CPU, one GPU, several GPUs or several machines; logs, checkpoints and the
    resolved config go to the work dir. Under torchrun or SLURM, the same command runs as one worker.
    A stop by a signal writes a checkpoint, prints the command that resumes, and exits 128 + the signal.

    Examples:

      tsm prepare toy --root data/toy && tsm train --preset tsm_r18_1x1x8_toy

      tsm prepare custom --root data/mine && tsm train -p data/mine/tsm.yaml

      tsm train -p tsm_r50_1x1x8_50e_sthv1 --set data.videos_per_gpu=4 --accumulate 2

      tsm train -p tsm_r50_1x1x8_50e_k400 --gpus 8 --nnodes 2 --node-rank 0 --master-addr 10.0.0.1
    """
    given = {name: value for name, value in locals().items() if name != "ctx"}
    from ..process import configure_process

    configure_process(loader_workers=True, stop_on_signals=True)
    run_training(TrainOptions(**given, command=options.command_line(ctx, leave_out=RESUME_OPTIONS)))


def finetune(ctx: typer.Context, load_from: Optional[str] = None, **train_options):
    """Finetune: keep a checkpoint's backbone, start a new head for the preset's classes, train with the
    preset's recipe. The log lists what was kept and what was dropped. Options as in `tsm train`.

    Examples:

      tsm finetune --from tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --preset tsm_k400_pretrained_r50_1x1x8_25e_ucf101

      tsm prepare custom --root data/mine --base tsm_r50_1x1x8_50e_k400 && tsm finetune --from tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth -p data/mine/tsm.yaml
    """
    from ..process import configure_process

    configure_process(loader_workers=True, stop_on_signals=True)
    run_training(TrainOptions(**train_options, load_from=load_from, finetune=True,
                              command=options.command_line(ctx, leave_out=RESUME_OPTIONS)))


RESUME_OPTIONS = ("resume", "work_dir")  # the resume command names these itself

# finetune takes every option of train (Typer reads a command's options from its signature), plus --from
finetune.__signature__ = inspect.Signature([
    *list(inspect.signature(train).parameters.values())[:1],
    inspect.Parameter("load_from", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Optional[str],
                      default=typer.Option(None, "--from", "--load-from", help="A Kinetics-400 (or any) checkpoint: ours, mmaction2 "
                                           "0.x or the original TSM code's; a path, a URL or a zoo file name "
                                           "(downloaded once) [default: the preset's load_from].")),
    *list(inspect.signature(train).parameters.values())[1:]])


def run_training(run):
    """Resolve the preset, the work dir, the checkpoint to start from (--from, else the preset's
    load_from; finetuning needs one) and the one to resume; then train in this process, or in
    run.gpus worker processes, holding the work dir's lock meanwhile."""
    from ..atomic import DiskFull
    from ..distributed import distributed_env
    from ..presets import load_preset
    from ..train import loop
    from ..train.workdir_lock import WorkDirLock

    decoder = [f"data.decoder={run.decoder}"] if run.decoder else []
    cfg = load_preset(run.preset, [*(run.overrides or ()), *decoder])
    if cfg["inference_only"]:
        raise UserError(f"preset '{cfg['name']}' is one of mmaction2's inference-only configs (a test set, no "
                        "training recipe); use it with tsm test / predict, and train its model with the "
                        "matching training preset (`tsm presets list`)")
    work_dir = run.work_dir or Path("work_dirs") / cfg["name"]
    run = replace(run, load_from=_checkpoint_to_start_from(run, cfg))
    world, rank = distributed_env()[:2]
    processes = max(run.gpus, 1)
    launching = world == 1 and processes * run.nnodes > 1  # else this process trains (maybe as a torchrun worker)
    with contextlib.ExitStack() as held:
        if rank == 0 and run.node_rank == 0:  # the run's first process holds the work dir for the whole run
            held.enter_context(WorkDirLock(work_dir))
        run = replace(run, resume=_checkpoint_to_resume(run.resume, work_dir), device=_device(run, launching))
        try:
            metrics = (loop.launch(cfg, work_dir, processes, run) if launching
                       else loop.train(cfg, work_dir, run))
        except DiskFull as e:
            raise UserError(f"{e}\ntraining stopped; to continue from the last checkpoint written:\n  "
                            f"{_resume_command(run.command, work_dir)}") from None
    if metrics.get("stopped"):  # the checkpoint is written; a script must not take this for a finished job
        typer.echo(f"stopped by a signal; to continue:\n  {_resume_command(run.command, work_dir)}")
        raise typer.Exit(128 + metrics["stopped"])
    ranked = next((k for k in loop.RANKED_BY if k in metrics), None)
    score = f"val {ranked} {metrics[ranked]:.4f}; " if ranked else ""
    typer.echo(f"done: {score}checkpoints in {work_dir}")


def _device(run, launching):
    """--device, checked here with --amp (a bad one fails before any worker starts); --gpus 0 is the CPU,
    and so are launched workers on a machine without CUDA."""
    import torch

    from ..devices import amp_dtype, resolve_device

    device = "cpu" if run.gpus == 0 else run.device
    amp_dtype(run.amp, resolve_device(device))
    if launching and device == "auto" and not torch.cuda.is_available():
        device = "cpu"
    return device


def _checkpoint_to_start_from(run, cfg):
    """--from, else the preset's load_from; fetched once here, before any worker starts."""
    from ..checkpoint import resolve_checkpoint

    load_from = run.load_from or cfg["load_from"]
    if run.finetune and not load_from:
        raise UserError(f"--from: which checkpoint to finetune from? The preset '{cfg['name']}' names none "
                        "(load_from); give a path, a URL or a model-zoo file name")
    if load_from and not run.resume:
        return str(resolve_checkpoint(load_from))
    return load_from


def _checkpoint_to_resume(resume, work_dir):
    """--resume's checkpoint: `auto` is the newest readable one in the work dir (None if there is none)."""
    from ..checkpoint import find_resumable

    if resume is not None and str(resume) == "auto":
        resume = find_resumable(work_dir, say=typer.echo)
        if resume is None:
            typer.echo(f"--resume auto: no checkpoint in {work_dir} yet, so this is a new run")
    elif resume is not None and not Path(resume).is_file():
        raise UserError(f"--resume {resume}: no such checkpoint")
    return resume


def _resume_command(command, work_dir):
    """The command that continues this run: the one given (as the command line parsed it), with the work
    dir it wrote to and `--resume auto`."""
    import shlex

    return shlex.join(["tsm", *command, "--work-dir", str(work_dir), "--resume", "auto"])
