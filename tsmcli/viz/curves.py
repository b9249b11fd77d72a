"""Training curves from the log.jsonl that `tsm train` writes: loss, learning rate, train top-1 and
validation accuracy against epoch (or iteration), several runs on one figure."""
import json
import re
from pathlib import Path

from ..errors import OptionError, UserError
from . import figure as new_figure

TOP_K = re.compile(r"top(\d+)$")


def read_log(work_dir):
    """{"train": [records], "val": [records]} of a run, one record per point.

    A resumed run appends to the same log: steps logged after the checkpoint it resumed from appear
    twice, and the later record (the one the finished run really took) wins. A run still in progress
    reads as far as it has got (a half-written last line is skipped)."""
    path = Path(work_dir) / "log.jsonl" if Path(work_dir).is_dir() else Path(work_dir)
    if not path.is_file():
        raise UserError(f"{path} does not exist: give a work dir of `tsm train` (it writes log.jsonl)")
    train, val = {}, {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # being written right now
                continue
            raise UserError(f"{path}:{number}: not a JSON record") from None
        if record.get("mode") == "train":
            train[record["step"]] = record
        elif record.get("mode") == "val":
            val[record["epoch"]] = record
    if not train and not val:
        raise UserError(f"{path} has no training or validation records yet")
    return {"train": [train[k] for k in sorted(train)], "val": [val[k] for k in sorted(val)]}


def _epoch_position(records):
    """Fractional epoch of each train record: epoch - 1 + iter / iterations per epoch."""
    per_epoch = next(((r["step"] - r["iter"]) // (r["epoch"] - 1) for r in records if r["epoch"] > 1), None)
    if per_epoch is None:  # still in the first epoch
        per_epoch = max(r["iter"] for r in records)
    return [r["epoch"] - 1 + r["iter"] / per_epoch for r in records]


def plot_runs(work_dirs, names=None, x="epoch"):
    """A matplotlib Figure: 4 panels (loss, learning rate, train top-1, validation accuracy), one colour
    per run. x: 'epoch' or 'iteration'."""
    if x not in ("epoch", "iteration"):
        raise OptionError("x", x, "use epoch or iteration")
    runs = [read_log(d) for d in work_dirs]
    names = names or _names(work_dirs)
    figure = new_figure(figsize=(11, 7.5), layout="constrained")
    import matplotlib  # present: new_figure said which extra to install otherwise

    (loss_ax, lr_ax), (train_ax, val_ax) = figure.subplots(2, 2, sharex=True)  # one x-axis for the four
    colours = matplotlib.colormaps["tab10"].colors
    for i, (run, name, colour) in enumerate(zip(runs, names, colours * 10)):
        width = 1.2 + 1.3 * (len(runs) - 1 - i)  # earlier runs drawn wider: identical curves stay visible
        steps = run["train"]
        if steps:
            xs = _epoch_position(steps) if x == "epoch" else [r["step"] for r in steps]
            loss_ax.plot(xs, [r["loss"] for r in steps], color=colour, label=name, linewidth=width)
            lr_ax.plot(xs, [r["lr"] for r in steps], color=colour, label=name, linewidth=width)
            train_ax.plot(xs, [r["top1"] for r in steps], color=colour, label=name, linewidth=width)
        for metric, style in _val_metrics(run["val"]):
            points = [r for r in run["val"] if metric in r]
            xs = [r["epoch"] for r in points] if x == "epoch" else [_val_step(r, steps) for r in points]
            val_ax.plot(xs, [r[metric] for r in points], linestyle=style, marker="o", markersize=3 + width,
                        color=colour, label=f"{name} {metric.replace('_', ' ')}", linewidth=width)
    x_label = "epoch" if x == "epoch" else "iteration"
    for ax, title, y_label in ((loss_ax, "training loss", "loss"), (lr_ax, "learning rate", "lr"),
                               (train_ax, "training top-1 (batch)", "accuracy"),
                               (val_ax, "validation", "accuracy")):
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.tick_params(labelbottom=True)  # sharex hides the top row's tick labels
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    for ax in (train_ax, val_ax):
        ax.set_ylim(-0.06, 1.06)  # points at 0 or 1 stay off the frame
    _loss_scale(loss_ax, matplotlib.ticker)
    loss_ax.legend(fontsize=8)
    if val_ax.lines:
        val_ax.legend(fontsize=7, ncol=1 if len(runs) == 1 else 2)
    return figure


def _loss_scale(ax, ticker):
    """Log scale where the loss spans a decade or more (early spikes would flatten the rest), with plain
    tick labels; else linear, without the offset notation a nearly flat loss gets."""
    values = [v for line in ax.lines for v in line.get_ydata()]
    plain = ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
    if values and min(values) > 0 and max(values) / min(values) >= 10:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        ax.yaxis.set_major_formatter(plain)


STYLES = {"top1": "-", "mean_average_precision": "-", "mean_class_accuracy": ":", "mmit_mean_average_precision": ":"}


def _val_metrics(records):
    """(key, line style): top-1 (multi-label: mean average precision) solid, top-5 dashed, mean class
    accuracy (MMiT mAP) dotted. A top-k below top-5 is logged when the model has only k classes: always
    1, so not drawn."""
    keys = sorted({k for r in records for k in r if k in STYLES or (TOP_K.match(k) and int(TOP_K.match(k)[1]) >= 5)},
                  key=lambda k: (STYLES.get(k) == ":", int(TOP_K.match(k)[1]) if TOP_K.match(k) else 0, k))
    return [(k, STYLES.get(k, "--")) for k in keys]


def _val_step(record, steps):
    done = [r["step"] for r in steps if r["epoch"] == record["epoch"]]
    return max(done) if done else None


def _names(work_dirs):
    """Each run's folder name, with its parent where two runs share a name."""
    paths = [Path(d).resolve() for d in work_dirs]
    names = [p.name if p.name != "log.jsonl" else p.parent.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{p.parent.name}/{n}" for p, n in zip(paths, names)]
    return names
