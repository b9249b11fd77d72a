"""`tsm presets list`, `tsm presets show NAME` and `tsm presets import CONFIG.py`."""
import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..presets import dump_preset, list_presets, load_preset
from . import options

app = typer.Typer(help="Browse the built-in presets: every configuration of the TSM model zoo.",
                  no_args_is_help=True)

DATASET_SHORT_NAMES = {"k400": "kinetics400"}  # as the preset names write it


def _best_row(preset):
    """The zoo row users compare against: the first one (the efficient scheme where there are two)."""
    rows = preset.get("reference") or [{}]
    return rows[0]


def summary(preset):
    m, row = preset["model"], _best_row(preset)
    return {
        "name": preset["name"],
        "alias": (preset.get("aliases") or [None])[0],
        "dataset": preset.get("dataset"),
        "backbone": "MobileNetV2" if m["backbone"] == "mobilenetv2" else f"ResNet{m['depth']}"
                    + (f" NL-{m['non_local']['mode']}" if m.get("non_local") else ""),
        "frames": m["num_segments"],
        "pretrain": row.get("pretrain"),
        "resolution": row.get("resolution"),
        "top1": row.get("top1"),
        "top5": row.get("top5"),
        "speed_video_s": row.get("speed_video_s"),
        "memory_mb": row.get("memory_mb"),
    }


COLUMNS = [("name", "name"), ("top1", "top1"), ("frames", "frames"), ("backbone", "backbone"), ("dataset", "dataset"),
           ("top5", "top5"), ("pretrain", "pretrain"), ("video/s", "speed_video_s"), ("memory MB", "memory_mb")]


def _fmt(value):
    return "-" if value is None else str(value)


@app.command("list", short_help="The presets, with the zoo's accuracy.")
def list_(
    dataset: Optional[str] = typer.Option(None, help="Only this dataset (kinetics400, sthv1, ...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts instead of a table."),
):
    """List the presets with the zoo's reference accuracy, speed and memory.

    Examples:

      tsm presets list

      tsm presets list --dataset sthv1

      tsm presets list --json | jq '.[].name'
    """
    presets = list_presets()
    if dataset is not None:
        known = sorted({p["dataset"] for p in presets if p.get("dataset")})
        dataset = DATASET_SHORT_NAMES.get(dataset, dataset)
        if dataset not in known:
            from ..errors import UserError

            raise UserError(f"--dataset {dataset!r}: no preset is for it; known: {', '.join(known)} (or k400)")
    rows = [summary(p) for p in presets if dataset is None or p.get("dataset") == dataset]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    cells = {column: [str(r["name"]) if column == "name" else _fmt(r[key]) for r in rows]
             for column, key in COLUMNS}
    widths = {column: max(len(column), *map(len, values)) + 3 for column, values in cells.items()}  # + padding, rule
    console = Console()
    room = console.width if console.is_terminal else sum(widths.values()) + 1  # piped: every column, one row a line
    shown, used = [], 1
    for column, _ in COLUMNS:  # in order of importance, as many as the terminal has room for
        if used + widths[column] <= room or column == "name":
            shown.append(column)
            used += widths[column]
    table = Table(title="TSM presets (reference numbers from the mmaction2 model zoo)",
                  caption=None if len(shown) == len(COLUMNS) else
                  f"not shown for want of width: {', '.join(c for c, _ in COLUMNS if c not in shown)} (--json has all)")
    for column, _ in COLUMNS:
        if column in shown:
            table.add_column(column, no_wrap=True, justify="left" if column in ("name", "dataset", "backbone",
                                                                                  "pretrain") else "right")
    for i in range(len(rows)):
        table.add_row(*(cells[column][i] for column, _ in COLUMNS if column in shown))
    if not console.is_terminal:
        console = Console(width=used)
    console.print(table)


@app.command("show", short_help="A preset fully resolved, as YAML.")
def show(
    name: str = typer.Argument(..., help="A preset name, a zoo config name, or a YAML file."),
    overrides: Optional[List[str]] = options.overrides(),
):
    """Print a preset fully resolved (bases merged, overrides applied) as YAML.

    Examples:

      tsm presets show tsm_r50_1x1x8_50e_k400

      tsm presets show tsm_r50_1x1x8_50e_kinetics400_rgb --set model.dropout=0.8

      tsm presets show my_experiment.yaml
    """
    typer.echo(dump_preset(load_preset(name, overrides or ())), nl=False)


@app.command("import", short_help="A mmaction2 0.x config as a preset YAML.")
def import_(
    config: Path = typer.Argument(..., help="A mmaction2 0.x TSM config (.py), with its _base_ files beside it "
                                            "as in mmaction2's configs/ tree."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The preset file to write "
                                                                  "[default: CONFIG's name with .yaml, here]."),
    base: Optional[str] = typer.Option(None, help="The built-in preset to extend [default: the nearest one]."),
    from_dir: Path = typer.Option(Path("."), "--from-dir", help="The folder mmaction2 ran from: the config's "
                                                                "relative data paths are read from there."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT if it exists."),
):
    """Convert a mmaction2 0.x TSM config into a preset YAML that extends the nearest built-in preset and
    sets only what differs. The file is parsed, never run: constructs that need Python to evaluate are
    refused, naming the line.

    Examples:

      tsm presets import configs/recognition/tsm/my_tsm_r50_ucf101.py

      tsm presets import my_config.py --out mine.yaml --base tsm_r50_1x1x8_50e_k400 && tsm train -p mine.yaml
    """
    from ..errors import UserError
    from ..presets.importer import import_config

    out = out or Path(config.with_suffix(".yaml").name)
    if out.exists() and not force:
        raise UserError(f"{out} exists; give another --out, or --force to overwrite it")
    base, body, ignored = import_config(config, out, base=base, from_dir=from_dir)
    sections = ", ".join(body) if body else "nothing: the same values"
    typer.echo(f"wrote {out}: extends {base}, sets {sections}")
    if ignored:
        typer.echo(f"not read (tsm has no such setting): {', '.join(ignored)}")
    typer.echo(f"next: tsm presets show {out}   or   tsm train -p {out}")
