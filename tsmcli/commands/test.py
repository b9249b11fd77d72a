"""`tsm test`: evaluate a checkpoint."""
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..presets.schema import METRIC_NAMES
from . import options


def test(
    checkpoint: str = typer.Argument(..., help=options.CHECKPOINT_HELP),
    preset: Optional[str] = options.preset(required=False),
    scheme: str = typer.Option("preset", help="preset | efficient (1 clip, centre crop) | accurate (2 clips x "
                                              "3 crops) | dense (10 clips)."),
    list_file: Optional[Path] = options.list_file("Test list [default: the preset's data.test.ann_file],"),
    data_root: Optional[Path] = options.data_root(),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write metrics, scheme and per-video scores as JSON."),
    device: str = options.device(),
    fast: bool = options.fast(),
    amp: Optional[str] = options.amp(),
    batch_size: Optional[int] = typer.Option(None, min=1, help="Videos per batch [default: the preset's test batch]."),
    workers: Optional[int] = options.workers(),
    gpus: int = options.gpus(),
    metrics: Optional[List[str]] = typer.Option(None, help="Metrics to report: " + ", ".join(METRIC_NAMES)
                                                + " [default: the preset's evaluation.metrics]."),
    plot: Optional[Path] = typer.Option(None, help="Also draw the confusion matrix here (.png, .svg or .pdf; needs tsm[plots])."),
    master_port: int = options.master_port(),
    decoder: Optional[str] = options.decoder(),
    backend: str = options.backend(),
):
    """Top-1/top-5/mean-class accuracy of a checkpoint; failed videos are reported and counted.

    Examples:

      tsm test work_dirs/tsm_r18_1x1x8_toy/best.pth

      tsm test tsm_r50_1x1x8_50e_sthv1_rgb_20210203-01dce462.pth --scheme accurate --list data/sthv1/val.txt --data-root data/sthv1/rawframes --out result.json
    """
    from ..process import configure_process

    configure_process(loader_workers=True, stop_on_signals=True)
    import json
    import tempfile

    from ..checkpoint import resolve_checkpoint
    from ..devices import amp_dtype, resolve_device
    from ..testing import launch_test, test_checkpoint, write_result

    gpus, device = options.processes_and_device(gpus, device)
    amp_dtype(amp, resolve_device(device))  # a bad --amp before anything loads
    if plot:
        from ..viz import pyplot

        pyplot()  # a missing extra is said before the test runs, not after
    from ..runtime.engines import is_exported

    if not is_exported(checkpoint):
        checkpoint = resolve_checkpoint(checkpoint)

    args = dict(preset=preset, scheme=scheme, ann_file=str(list_file) if list_file else None,
                data_prefix=str(data_root) if data_root is not None else None, device=device,
                batch_size=batch_size, workers=workers, metric_names=tuple(metrics) if metrics else None, fast=fast, amp=amp,
                decoder=decoder, backend=backend)
    unknown = set(metrics or ()) - set(METRIC_NAMES)
    if unknown:
        from ..errors import UserError

        raise UserError(f"--metrics: unknown {sorted(unknown)}; use {', '.join(METRIC_NAMES)}")
    if gpus > 1:
        target = out or Path(tempfile.mkdtemp()) / "result.json"
        launch_test(checkpoint, gpus, target, master_port, **args)
        result = json.loads(Path(target).read_text())
    else:
        result = test_checkpoint(checkpoint, **args)
    table = Table(title=f"{result['preset']} / {result['scheme']} ({result['views']} view{'' if result['views'] == 1 else 's'} per video)")
    for key in result["metrics"]:
        table.add_column(key, justify="right")
    table.add_column("videos", justify="right")
    table.add_row(*(f"{v:.4f}" for v in result["metrics"].values()),
                  f"{result['videos_total']}" + (f" ({len(result['failed'])} unreadable)" if result["failed"] else ""))
    Console().print(table)
    if len(result["per_class"]) <= PER_CLASS_ROWS:
        Console().print(_per_class_table(result["per_class"]))
    for failure in result["failed"]:
        typer.echo(f"unreadable: {failure['path']} ({failure['reason']})", err=True)
    if plot and result["confusion_matrix"] is None:
        typer.echo("--plot: a multi-label test has no confusion matrix (per-class average precision is above)", err=True)
    elif plot:
        from ..viz.confusion import plot_confusion

        views = f"{result['views']} view{'' if result['views'] == 1 else 's'}"
        plot_confusion(result["confusion_matrix"], plot, result["labels"],
                       f"{result['preset']}\n{result['scheme']} test scheme, {views} per video")
        typer.echo(f"wrote {plot}")
    if out:
        if gpus == 1:
            write_result(result, out)
        typer.echo(f"wrote {out}")


PER_CLASS_ROWS = 60  # more classes than this: the JSON (--out) has them


def _per_class_table(rows):
    """Each class's top-1 accuracy; for multi-label tests its average precision over its positive videos."""
    score = "ap" if rows and "ap" in rows[0] else "top1"
    table = Table(title="per class")
    for column in ("class", "videos", score):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in rows:
        name = row["label"] if row["label"] is not None else str(row["index"])
        table.add_row(name, str(row["videos"]), f"{row[score]:.4f}")
    return table
