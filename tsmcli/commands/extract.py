"""`tsm extract`: features of videos for downstream models, one .npy per video."""
from pathlib import Path
from typing import List, Optional

import typer

from . import options


def extract(
    inputs: List[Path] = typer.Argument(..., help="Video files, folders (searched for videos and frame folders) "
                                                  "or list files (.txt, mmaction2's format or one path per line)."),
    ckpt: str = typer.Option(..., "--ckpt", help=options.CHECKPOINT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: one .npy per video at the input's relative path, "
                                                "and index.jsonl."),
    mode: str = typer.Option("video", help="video (one vector per video: the pooled features the classifier "
                                           "reads, averaged over the scheme's views), dense (one per window of T "
                                           "frames every --stride source frames) or frames (views x T x C)."),
    layer: Optional[str] = typer.Option(None, help="A backbone stage's pooled output instead of the last one: "
                                                   "layer1 ... layer4 (ResNet), features.N (MobileNetV2)."),
    scheme: str = typer.Option("preset", help="Video and frames modes: the views, as in `tsm test` (preset, "
                                              "efficient, accurate, dense)."),
    stride: Optional[int] = typer.Option(None, min=1, help="Dense mode: source frames between window starts "
                                                           "[default: T x --every, windows side by side]."),
    every: Optional[int] = typer.Option(None, min=1, help="Dense mode: source frames between a window's frames "
                                                          "[default: from the preset and the video's fps, as tsm "
                                                          "stream spaces them]."),
    dtype: str = typer.Option("float32", help="float32 or float16."),
    shard: str = typer.Option("1/1", help="i/n: inputs i, i + n, ... only (1-based), for a job split over "
                                          "machines; each shard writes index-i-of-n.jsonl."),
    list_root: Optional[Path] = options.data_root(),
    preset: Optional[str] = options.preset(required=False),
    device: str = options.device(),
    fast: bool = options.fast(),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Videos (dense: windows) per forward [default: the "
                                                               "preset's test batch; dense 8]."),
    workers: Optional[int] = options.workers(),
    gpus: int = options.gpus(),
    master_port: int = options.master_port(),
    decoder: Optional[str] = options.decoder(),
):
    """Extract features: a rerun skips the videos already done; unreadable videos are listed in index.jsonl
    and the run finishes the others.

    Examples:

      tsm extract videos/ --ckpt work_dirs/tsm_r18_1x1x8_toy/best.pth --out features/

      tsm extract long.mp4 --ckpt tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --mode dense --stride 16 --out features/
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..checkpoint import resolve_checkpoint
    from ..errors import UserError
    from ..features.job import check_options, gather_inputs, parse_shard
    from ..runtime.engines import is_exported

    check_options(mode, dtype)  # before the model loads
    gpus, device = options.processes_and_device(gpus, device)

    shard_of = parse_shard(shard)
    items = gather_inputs(inputs, list_root)
    checkpoint = ckpt if is_exported(ckpt) else resolve_checkpoint(ckpt)
    settings = {"checkpoint": str(checkpoint), "preset": preset, "mode": mode, "layer": layer, "scheme": scheme,
                "stride": stride, "every": every, "dtype": dtype}
    job = dict(items=items, out_dir=str(out), settings=settings, shard=shard_of, device=device, fast=fast,
               batch_size=batch_size, workers=workers, decoder=decoder)
    if gpus > 1:
        from ..launch import run_workers

        summary = run_workers(_worker, (job,), gpus, master_port=master_port, run_id="tsm-extract")[0]
    else:
        summary = _worker(job)
    for failure in summary["failed"]:
        typer.echo(f"unreadable: {failure['path']} ({failure['error']})", err=True)
    typer.echo(f"{summary['extracted']} extracted, {summary['skipped']} already done, {len(summary['failed'])} "
               f"unreadable of {summary['videos']} videos; wrote {summary['index']}")
    if summary["videos"] and len(summary["failed"]) == summary["videos"]:
        raise UserError(f"none of the {summary['videos']} videos could be read (the first, "
                        f"{summary['failed'][0]['path']}: {summary['failed'][0]['error']})")


def _worker(job):
    """One process of the job (module level, so that the launcher can start it)."""
    import torch.distributed as dist

    from ..distributed import join_process_group
    from ..features.job import run_extraction
    from ..inference import decoder_override, load_predictor

    try:
        world, rank, device = join_process_group(job["device"])
        settings = job["settings"]
        predictor = load_predictor(settings["checkpoint"], preset=settings["preset"], device=device, fast=job["fast"],
                                   **decoder_override(job["decoder"]))
        return run_extraction(predictor, job["items"], job["out_dir"], settings, job["shard"], world, rank,
                              job["batch_size"], job["workers"], progress=rank == 0)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
