"""Pages written from the code at each build, into docs/_generated/ (not committed):

- zoo_table.md: one row per built-in preset, with the zoo's reference accuracy (its first row: the
  efficient scheme where there are two), parameters and FLOPs counted by `tsmcli.complexity` on one
  test clip, and the file name of the checkpoint mmaction2 publishes for it;
- cli.md: every command and sub-command of the `tsm` Typer app, with the help it prints.

sphinx-click cannot read the app: Typer now carries its own copy of click, whose commands are not
`click.Command`s, so the reference is rendered here from the commands' own help.
"""
from collections import defaultdict
from pathlib import Path

HEADER = ["preset", "dataset", "backbone", "frames", "top-1", "top-5", "params (M)", "GFLOPs", "zoo checkpoint"]


def zoo_table():
    import torch

    from tsmcli.commands.presets import summary
    from tsmcli.complexity import preset_complexity
    from tsmcli.presets import list_presets, zoo_checkpoints

    files = defaultdict(list)
    for file, published in zoo_checkpoints().items():
        files[published["config"]].append(file)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    with torch.device("meta"):  # counting needs shapes only: no weights are made
        for preset in list_presets():
            row = summary(preset)
            complexity = preset_complexity(preset["name"])
            checkpoints = sorted(f for alias in preset.get("aliases") or [] for f in files.get(alias, []))
            cells = [f"`{row['name']}`", row["dataset"] or "yours", row["backbone"], str(row["frames"]),
                     _number(row["top1"]), _number(row["top5"]), f"{complexity['params'] / 1e6:.1f}",
                     f"{complexity['flops'] / 1e9:.1f}", "<br>".join(f"`{f}`" for f in checkpoints) or "-"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value):
    return "-" if value is None else f"{value:.2f}"


def cli_reference():
    from tsmcli.cli import command

    root = command()
    parts = ["# Command-line reference\n",
             "Every command and option of `tsm`, as `tsm COMMAND --help` prints it.\n"]

    def walk(command, path, parent):
        context = root.context_class(command, info_name=path[-1], parent=parent, max_content_width=100,
                                     terminal_width=100)
        if len(path) > 1:
            level = "#" * min(len(path), 3)
            parts.append(f"{level} {' '.join(path)}\n\n```text\n{command.get_help(context).rstrip()}\n```\n")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name], context)

    walk(root, ["tsm"], None)
    return "\n".join(parts)


def write_pages(app):
    out = Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    for name, text in (("zoo_table.md", zoo_table()), ("cli.md", cli_reference())):
        path = out / name
        if not path.exists() or path.read_text() != text:  # unchanged pages are not rebuilt
            path.write_text(text)


def setup(app):
    app.connect("builder-inited", write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
