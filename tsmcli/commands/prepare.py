"""`tsm prepare DATASET`: training-ready list files and label maps."""
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(help="Turn a dataset as downloaded into the list files and label map the presets read.",
                  no_args_is_help=True)


def _report(summary, as_json):
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        Console().print(summary)


@app.command("toy")
def toy(
    root: Path = typer.Option(Path("data/toy"), help="Where to write videos/, the lists and label_map.txt."),
    train_per_class: int = typer.Option(48, min=1),
    val_per_class: int = typer.Option(16, min=1),
    seed: int = typer.Option(0),
    as_json: bool = typer.Option(False, "--json"),
):
    """Generate the toy dataset: 4 classes that differ only in frame order (moving left/right,
    growing/shrinking), real H.264 videos, seeded, a few seconds to make.

    Example:

      tsm prepare toy --root data/toy
    """
    from ..prepare.toy import prepare_toy

    _report(prepare_toy(root, train_per_class, val_per_class, seed), as_json)


@app.command("custom")
def custom(
    root: Path = typer.Option(..., help="Output folder (lists, label_map.txt, failures.txt)."),
    videos: Optional[Path] = typer.Option(None, help="Folder of class sub-folders of videos [default: ROOT/videos]."),
    val_ratio: float = typer.Option(0.2, help="Share of each class for validation (seeded)."),
    train_list: Optional[Path] = typer.Option(None, help="Use these videos (paths relative to --videos) for training."),
    val_list: Optional[Path] = typer.Option(None, help="Use these videos for validation."),
    seed: int = typer.Option(0),
    workers: Optional[int] = typer.Option(None, help="Processes checking videos [default: all cores]."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Your own videos, one sub-folder per class: every video is checked, undecodable ones are listed in
    failures.txt and left out, classes are numbered in sorted folder order.

    Examples:

      tsm prepare custom --root data/mine

      tsm prepare custom --root data/mine --train-list train.txt --val-list val.txt
    """
    from ..prepare.custom import prepare_custom

    _report(prepare_custom(root, videos, val_ratio, train_list, val_list, seed, workers), as_json)
