"""`tsm benchmark data`: clips/s of a preset's data pipelines."""
import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import UserError
from . import options

app = typer.Typer(help="Measure speed: the model (`tsm benchmark --preset NAME`, or `tsm benchmark model`) "
                       "and the data pipelines (`tsm benchmark data`).", no_args_is_help=True,
                  invoke_without_command=True)


@app.callback()
def benchmark(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Benchmark this preset's model "
                                                                      "(the options of `tsm benchmark model`)."),
    device: str = options.device(),
    batch: Optional[List[int]] = typer.Option(None, min=1, help="Batch sizes to time, one per flag (--batch 1 "
                                                                  "--batch 8) [default: 1; with --train the "
                                                                  "preset's videos per GPU]."),
    iters: int = typer.Option(200, min=1, help="Videos to time per batch size."),
    amp: Optional[str] = options.benchmark_amp(),
    channels_last: Optional[bool] = options.channels_last(),
    compile: bool = typer.Option(False),
    train: bool = typer.Option(False, "--train", help="Time a training step instead."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    fast: bool = options.fast(),
    backend: str = typer.Option("torch", help="torch, onnxruntime or openvino (the exported model)."),
):
    """`tsm benchmark --preset NAME` times the model as the zoo does; `tsm benchmark data ...` the data."""
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    if ctx.invoked_subcommand is None:
        if preset is None:
            raise UserError("give --preset NAME (model speed) or use `tsm benchmark data`")
        model(preset, None, device, batch, iters, amp, channels_last, compile, train, as_json, fast, backend)



@app.command("data", short_help="Clips/s of a preset's data pipelines.")
def data(
    preset: str = options.preset(),
    videos: Optional[List[Path]] = typer.Argument(None, help="Video files or folders of videos to read "
                                                             "(instead of --list); folders are searched "
                                                             "through, class sub-folders included."),
    ann_file: Optional[str] = options.list_file(),
    data_prefix: Optional[str] = options.data_root(),
    split: str = typer.Option("both", help="train, test or both."),
    clips: int = typer.Option(50, min=1, help="Clips to time per pipeline."),
    workers: int = typer.Option(0, min=0, help="DataLoader workers; 0 times in-process, with the "
                                               "decode / transform split."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    decoder: Optional[str] = options.decoder(),
):
    """Clips per second of a preset's train and test pipelines on your videos or frames.

    Examples:

      tsm benchmark data --preset tsm_r50_video_1x1x8_50e_k400 sample.mp4

      tsm benchmark data -p tsm_r50_1x1x8_50e_sthv1 --list data/sthv1/val.txt --data-root data/sthv1/rawframes --split test
    """
    from ..data.benchmark import measure
    from ..video import VIDEO_SUFFIXES

    files = _collect_videos(videos or [])
    if not files and not ann_file:
        raise UserError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {', '.join(map(str, videos))}" if videos else
                        "give video files/folders, or --list (with --data-root)")
    splits = ["train", "test"] if split == "both" else [split]
    if any(s not in ("train", "val", "test") for s in splits):
        raise UserError(f"--split must be train, test or both, got {split!r}")
    results = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeRemainingColumn(), disable=as_json, transient=True) as bar:
        for name in splits:
            task = bar.add_task(f"{name} pipeline", total=clips)
            results[name] = measure(preset, name, clips, ann_file=ann_file, data_prefix=data_prefix,
                                    videos=files or None, workers=workers, decoder=decoder,
                                    progress=lambda n, t=task: bar.advance(t, n))
    if as_json:
        typer.echo(json.dumps({"preset": preset, **results}, indent=1))
        return
    table = Table(title=f"data pipeline speed: {preset}")
    for column in ("split", "clips/s", "decode ms/clip", "transform ms/clip", "output", "workers"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(name, f"{r['clips_per_s']:.1f}", _ms(r.get("decode_ms_per_clip")),
                      _ms(r.get("transform_ms_per_clip")), "x".join(map(str, r.get("output_shape", []))) or "-",
                      str(r["workers"]))
    Console().print(table)


def _ms(value):
    return "-" if value is None else f"{value:.1f}"


def _collect_videos(paths):
    from ..video import VIDEO_SUFFIXES

    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path} does not exist")
    return files


@app.command("model", short_help="Speed, parameters and FLOPs of a model.")
def model(
    preset: Optional[str] = typer.Option(None, "--preset", "-p", help="Preset name, zoo config name or YAML file "
                                                                      "(random weights: speed does not depend on "
                                                                      "them)."),
    exported: Optional[Path] = typer.Option(None, "--model", help="An exported model (.onnx, OpenVINO .xml) to "
                                                                  "time instead of a preset."),
    device: str = options.device(),
    batch: Optional[List[int]] = typer.Option(None, min=1, help="Batch sizes to time, one per flag (--batch 1 "
                                                                  "--batch 8) [default: 1; with --train the "
                                                                  "preset's videos per GPU]."),
    iters: int = typer.Option(200, min=1, help="Videos to time per batch size (after warm-up)."),
    amp: Optional[str] = options.benchmark_amp(),
    channels_last: Optional[bool] = options.channels_last(),
    compile: bool = typer.Option(False, help="torch.compile the model first."),
    train: bool = typer.Option(False, "--train", help="Time a training step as tsm train runs it, its defaults "
                                                      "included (the zoo's memory column)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    fast: bool = options.fast(),
    backend: str = typer.Option("torch", help="torch, onnxruntime or openvino: the preset's model exported "
                                              "and verified first (tsm[deploy] / tsm[openvino]); onnxruntime "
                                              "with --amp fp16 times the fp16 graph, openvino with --amp bf16 "
                                              "its bf16 inference precision."),
):
    """Model speed as the zoo measures it: batch 1, the preset's frames at its test size, warm-up, then
    --iters videos; no IO or preprocessing. Prints the parameters and FLOPs of one clip (as mmaction2's
    get_flops.py counts them), video/s over all timed batches, the median time of one batch, and peak
    memory (GPU memory, or the process's peak RSS on the CPU). Inference runs on the fast path unless --no-fast; --backend onnxruntime times the
    exported graph instead.

    Examples:

      tsm benchmark model --preset tsm_r50_1x1x8_50e_k400 --iters 20

      tsm benchmark model -p tsm_mobilenetv2_dense_1x1x8_100e_k400 --device cuda --batch 1 --batch 16 --amp fp16

      tsm benchmark model -p tsm_r50_1x1x8_50e_k400 --device cuda --train

      tsm benchmark model -p tsm_r50_1x1x8_50e_k400 --backend openvino --amp bf16 --batch 1 --batch 8 --iters 16

      tsm benchmark model --model mine_int8.xml --batch 1 --batch 8
    """
    from ..complexity import describe, preset_complexity
    from ..speed import measure_exported, measure_model, measure_preset_exported

    backend = "torch" if backend == "pytorch" else backend
    if backend not in ("torch", "onnxruntime", "openvino"):
        raise UserError(f"--backend {backend}: use torch, onnxruntime or openvino")
    if (preset is None) == (exported is None):
        raise UserError("give --preset NAME or --model EXPORTED_FILE (one of them)")
    if (exported or backend != "torch") and (train or compile):
        raise UserError("exported models are timed for inference: drop --train and --compile")
    if exported:
        from ..runtime.exported import open_exported

        results = measure_exported(open_exported(exported, precision=amp), batch or [1], iters)
    elif backend != "torch":
        allowed = {"onnxruntime": ("fp16",), "openvino": ("bf16",)}[backend]
        if amp not in (None, *allowed):
            raise UserError(f"--backend {backend} --amp {amp}: {backend} takes " +
                            " or ".join(f"--amp {a}" for a in allowed))
        results = measure_preset_exported(preset, backend, batch or [1], iters, precision=amp or "fp32")
    else:
        results = [measure_model(preset, device, b, iters, amp=amp, channels_last=channels_last, compile=compile,
                                 train=train, fast=fast) for b in (batch or [None if train else 1])]
    complexity = None if exported else preset_complexity(preset)
    if as_json:
        for r in results:
            r["complexity"] = complexity
        typer.echo(json.dumps(results, indent=1))
        return
    first = results[0]
    how = [first["mode"]] + (["fast path"] if first.get("fast") else [])
    if first["mode"] == "train":  # as tsm train runs it with these options, its defaults included
        how += ["channels-last" if first["channels_last"] else "contiguous", first["amp"] or "fp32"]
    table = Table(title=f"{first['preset']} on {first['device']} ({', '.join(how)})",
                  caption=describe(complexity) if complexity else None)
    for column in ("batch", "input", "mean video/s", "median ms/batch", "peak memory MB"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(str(r["batch"]), "x".join(map(str, r["input"])), f"{r['videos_per_s']:.1f}",
                      f"{r['ms_per_batch']:.1f}", f"{r['peak_memory_mb']:.0f}")
    Console().print(table)
