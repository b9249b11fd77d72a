"""`tsm prepare DATASET`: training-ready list files and label maps."""
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import UserError
from ..presets import SMALL_PRESET
from . import options

FRAMES_HELP = "Extract JPEG frames: short256, short320, 340x256, height100 ..."
RESIZE_HELP = "Write resized H.264 copies (keyframe every 16 frames, for fast random access), e.g. short256."

app = typer.Typer(help="Turn a dataset as downloaded into the list files and label map the presets read.",
                  no_args_is_help=True)


@app.callback()
def _prepare():
    from ..process import configure_process

    configure_process(stop_on_signals=True)


def _report(summary, as_json, next_step=None):
    """The summary as JSON for scripts, or as lines for people, with where failures are listed and
    what to run next."""
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    for key, value in summary.items():
        if key == "warning":  # a sentence of its own
            typer.echo(value)
            continue
        if key == "kept":  # videos a previous run wrote: said only when there are some, with what they are
            if value:
                typer.echo(f"{'kept:':<10} {value} (already written by an earlier run)")
            continue
        typer.echo(f"{key + ':':<10} {value}")
    if next_step:
        typer.echo(f"\nnext:      {next_step}")


@app.command("toy", short_help="The synthetic toy dataset (4 classes).")
def toy(
    root: Optional[Path] = typer.Option(None, help="Where to write videos/, the lists and label_map.txt "
                                                   "[default: data/toy, or data/toy_multilabel]."),
    train_per_class: int = typer.Option(48, min=1, help="Training videos per class (multi-label: per label)."),
    val_per_class: int = typer.Option(16, min=1, help="Validation videos per class (multi-label: per label)."),
    seed: int = typer.Option(0, min=0),
    frames: Optional[str] = typer.Option(None, help="Also extract JPEG frames at this size, e.g. short64."),
    multi_label: bool = typer.Option(False, "--multi-label", help="The multi-label toy: a square and a circle "
                                                                  "each moving left or right, two labels a video."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
):
    """Generate the toy dataset: 4 classes that differ only in frame order (moving left/right,
    growing/shrinking), real H.264 videos, seeded, a few seconds to make.

    Examples:

      tsm prepare toy --root data/toy

      tsm prepare toy --multi-label && tsm train -p tsm_r18_1x1x8_toy_multilabel
    """
    from ..prepare.toy import prepare_toy

    default = Path("data/toy_multilabel" if multi_label else "data/toy")
    root = root or default
    preset = "tsm_r18_1x1x8_toy_multilabel" if multi_label else "tsm_r18_1x1x8_toy"
    _report(prepare_toy(root, train_per_class, val_per_class, seed, extract=frames, multi_label=multi_label), as_json,
            f"tsm train -p {preset}" + ("" if root == default else
                                        f"  (it reads {default}: pass --set data.train.ann_file=... for {root})"))


@app.command("custom", short_help="Your own videos: class folders or a CSV.")
def custom(
    root: Path = typer.Option(..., help="Output folder (lists, label_map.txt, failures.txt)."),
    videos: Optional[Path] = typer.Option(None, help="Folder of class sub-folders of videos [default: ROOT/videos]."),
    labels: Optional[Path] = typer.Option(None, help="Multi-label videos: a CSV of 'video path,label;label;...' "
                                                     "(paths relative to --videos) instead of class sub-folders."),
    val_ratio: float = typer.Option(0.2, min=0.0, max=0.99, help="Share of each class for validation (seeded)."),
    base: str = typer.Option(SMALL_PRESET, help="The preset ROOT/tsm.yaml extends: a small ResNet18 at 112 px that "
                             "trains on a laptop CPU, or any trainable preset (e.g. tsm_r50_1x1x8_50e_k400)."),
    train_list: Optional[Path] = typer.Option(None, help="Use these videos (paths relative to --videos) for training."),
    val_list: Optional[Path] = typer.Option(None, help="Use these videos for validation."),
    seed: int = typer.Option(0, min=0),
    workers: Optional[int] = typer.Option(None, min=1, help="Processes [default: all cores]."),
    frames: Optional[str] = typer.Option(None, help=FRAMES_HELP),
    resize_videos: Optional[str] = typer.Option(None, help=RESIZE_HELP),
    shard: Optional[str] = typer.Option(None, help="Process only shard i/n of the videos (several machines)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    decoder: Optional[str] = options.decoder(),
):
    """Your own videos, one sub-folder per class (ROOT/videos/<class>/<video>): every video is checked,
    undecodable ones are listed in failures.txt and left out, classes are numbered in sorted folder order
    (label_map.txt), and ROOT/tsm.yaml is a preset ready to train.

    Examples:

      tsm prepare custom --root data/mine && tsm train -p data/mine/tsm.yaml

      tsm prepare custom --root data/mine --base tsm_r50_1x1x8_50e_k400 --train-list train.txt --val-list val.txt

      tsm prepare custom --root data/tagged --labels data/tagged/labels.csv
    """
    from ..prepare.custom import PRESET_FILE, prepare_custom

    preset = root / PRESET_FILE
    _run(lambda **media: prepare_custom(root, videos, val_ratio, train_list, val_list, seed, base=base,
                                        labels_csv=labels, **media),
         frames, resize_videos, workers, shard, as_json, decoder,
         next_step=f"tsm train -p {_quoted(preset)}   (or: tsm finetune --from CHECKPOINT -p {_quoted(preset)})")


def _quoted(path):
    import shlex

    return shlex.quote(str(path))


def _run(prepare, frames, resize_videos, workers, shard, as_json, decoder=None, next_step=None):
    from ..prepare.extract import parse_size
    from ..prepare.media import parse_shard
    from ..video import resolve_decoder

    for size, option in ((frames, "--frames"), (resize_videos, "--resize-videos")):
        if size:
            parse_size(size, option)  # before any video is read
    try:
        shard_spec = parse_shard(shard)
    except ValueError as e:
        raise UserError(str(e)) from None
    with _progress(as_json) as advance:
        summary = prepare(frames=frames, resize=resize_videos, workers=workers, shard=shard_spec, progress=advance,
                          decoder=resolve_decoder(decoder))
    _report(summary, as_json, next_step if shard is None else None)


def _public(name, function, title, doc):
    def command(
        root: Path = typer.Option(Path(f"data/{name}"), help="The dataset as downloaded; lists are written here."),
        frames: Optional[str] = typer.Option(None, help=FRAMES_HELP),
        resize_videos: Optional[str] = typer.Option(None, help=RESIZE_HELP),
        workers: Optional[int] = typer.Option(None, min=1, help="Processes [default: all cores]."),
        shard: Optional[str] = typer.Option(None, help="Process only shard i/n of the videos."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
        decoder: Optional[str] = options.decoder(),
    ):
        from ..prepare import datasets

        _run(lambda **media: getattr(datasets, function)(root, **media), frames, resize_videos, workers, shard,
             as_json, decoder)

    command.__doc__ = doc
    app.command(name, short_help=f"{title}, as its download unpacks.")(command)


def _register_public_datasets():
    _public("kinetics400", "prepare_kinetics400", "Kinetics-400",
            "Kinetics-400, as the official tarballs unpack: annotations/{train,validate}.csv (or "
            "kinetics-400_{train,val}.csv) and train/, val/ holding <youtube_id>_<start>_<end>.mp4, flat or per "
            "class; mmaction2's videos_train/, videos_val/ work too. Missing videos are counted and left out; "
            "more than half of a split missing is an error.\n\nExample:\n\n"
            "  tsm prepare kinetics400 --root data/kinetics400 --frames short256")
    _public("ucf101", "prepare_ucf101", "UCF101",
            "UCF101, as the official archives unpack: ucfTrainTestlist/ (classInd, trainlist0k, testlist0k) and "
            "UCF-101/<Class>/*.avi (or mmaction2's videos/); all 3 splits.\n\nExample:\n\n"
            "  tsm prepare ucf101 --root data/ucf101 --frames short256")
    _public("sthv1", "prepare_sthv1", "Something-Something V1",
            "Something-Something V1: <id>/00001.jpg folders and something-something-v1-{train,validation,"
            "labels}.csv (';'-separated); frames are used as published.\n\nExample:\n\n"
            "  tsm prepare sthv1 --root data/sthv1")
    _public("sthv2", "prepare_sthv2", "Something-Something V2",
            "Something-Something V2: 20bn-something-something-v2/<id>.webm (or videos/) and "
            "something-something-v2-{train,validation,labels}.json "
            "(class = template without [brackets]).\n\nExample:\n\n"
            "  tsm prepare sthv2 --root data/sthv2 --frames height256")
    _public("diving48", "prepare_diving48", "Diving48",
            "Diving48: rgb/<vid_name>.mp4 (or videos/), Diving48_V2_{train,test}.json and Diving48_vocab.json.\n\n"
            "Example:\n\n  tsm prepare diving48 --root data/diving48")
    _public("jester", "prepare_jester", "Jester",
            "Jester: <id>/00001.jpg folders and jester-v1-{train,validation,labels}.csv.\n\nExample:\n\n"
            "  tsm prepare jester --root data/jester")
    _public("hmdb51", "prepare_hmdb51", "HMDB51",
            "HMDB51, as the official archives unpack: testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt "
            "and the <class>/*.avi folders of the per-class .rar files, in hmdb51_org/, hmdb51/, videos/ or "
            "--root itself; all 3 splits.\n\nExample:\n\n  tsm prepare hmdb51 --root data/hmdb51 --frames short256")


_register_public_datasets()


@contextmanager
def _progress(quiet):
    """A progress bar with ETA over the videos being extracted or resized."""
    with Progress(TextColumn("videos"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), disable=quiet, transient=True) as bar:
        task = bar.add_task("videos", total=None)

        def update(n, total=None):
            if total is not None:
                bar.reset(task, total=total)
            bar.advance(task, n)

        yield update
