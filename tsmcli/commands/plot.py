"""`tsm plot`: training curves of one or several runs on one figure."""
from pathlib import Path
from typing import List, Optional

import typer


def plot(
    work_dirs: List[Path] = typer.Argument(..., help="Work dirs of `tsm train` (or their log.jsonl files)."),
    out: Path = typer.Option(Path("curves.png"), "--out", "-o", help="The figure: .png, .svg or .pdf."),
    x: str = typer.Option("epoch", help="epoch or iteration."),
    name: Optional[List[str]] = typer.Option(None, help="A legend name per run, in order [default: folder names]."),
):
    """Loss, learning rate, training top-1 and validation top-1 / top-k / mean class accuracy of each run
    against epoch (or iteration), several runs on one figure. Resumed runs and runs still in progress are
    read as they are; `tsm train` also draws WORK_DIR/curves.png at each validation. Needs tsm[plots].

    Examples:

      tsm plot work_dirs/toy_tsm work_dirs/toy_no_shift --out curves.png

      tsm plot work_dirs/mine --x iteration --out mine.svg
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..errors import UserError
    from ..viz import save
    from ..viz.curves import plot_runs

    if name and len(name) != len(work_dirs):
        raise UserError(f"--name: {len(name)} names for {len(work_dirs)} runs")
    save(plot_runs(work_dirs, name, x), out)
    typer.echo(f"wrote {out}")
