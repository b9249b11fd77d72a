"""`tsm export`: a checkpoint as an ONNX graph (the whole model, or the streaming step), verified with
onnxruntime before it is kept."""
import json
from pathlib import Path
from typing import Optional

import typer

from . import options


def export(
    checkpoint: str = typer.Argument(..., help=options.CHECKPOINT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="The .onnx file to write."),
    format: str = typer.Option("onnx", "--format", help="onnx: runs outside Python (onnxruntime, TensorRT, "
                                                        "OpenVINO) and is verified here. TorchScript is deprecated "
                                                        "in PyTorch and a torch.export program still needs "
                                                        "PyTorch to run, so neither is offered."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or fp16: half the file, for GPU runtimes "
                                                                "(onnxruntime's CUDA provider, TensorRT); head "
                                                                "and outputs stay fp32, and it is verified "
                                                                "against the fp32 model within 5e-2. bf16 is "
                                                                "refused: ONNX's Conv has no bf16 type."),
    preset: Optional[str] = options.preset(required=False),
    stream: bool = typer.Option(False, "--stream", help="Export the incremental streaming step of an online model "
                                                        "(frame and state in, logits and state out) instead."),
    video: Optional[Path] = typer.Option(None, help="A real video to verify on, decoded through the preset's "
                                                    "test pipeline [default: a rendered toy clip, encoded and "
                                                    "decoded like any video]."),
    as_json: bool = options.as_json("Print the verification as JSON."),
):
    """Write an ONNX graph (opset 17, dynamic batch) with the input layout, normalisation and class names in
    its metadata. Before anything is kept, onnxruntime runs it beside PyTorch (random clips, a batch of 2,
    a real clip; the streaming step over 32 frames with its state fed back) and the export fails with exit
    1, writing nothing, above 1e-4 (fp32; fp16: 5e-2). Needs tsm[deploy].

    Examples:

      tsm export work_dirs/mine/best.pth --out mine.onnx --video clip.mp4

      tsm export work_dirs/online/best.pth --stream --out step.onnx

      tsm export work_dirs/mine/best.pth --out mine_fp16.onnx --precision fp16
    """
    import tempfile

    from ..api import load_model
    from ..data.pipeline import output_size
    from ..errors import UserError
    from ..evaluate import scheme_pipeline
    from ..export import check_precision, onnx_modules

    if format != "onnx":
        raise UserError(f"--format {format}: tsm exports onnx (see --help for why not TorchScript or torch.export)")
    check_precision(precision)
    onnx_modules()  # the extra is needed: say so before loading anything
    if out.suffix.lower() != ".onnx":
        raise UserError(f"--out {out}: ONNX files end in .onnx")
    model = load_model(checkpoint, preset=preset)
    steps = scheme_pipeline(model.preset["data"], "efficient")
    height, width = output_size(steps)
    with tempfile.TemporaryDirectory(prefix="tsm-export-") as scratch:
        source = str(video) if video else _toy_clip(scratch)
        report = _export(model, out, stream, steps, height, width, source, precision)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    if stream:
        typer.echo(f"{out}: {precision} streaming step, {report['states']} state tensors ({report['state_bytes'] / 1024:.0f} "
                   f"KiB per stream); over {report['steps']} steps max |onnxruntime - PyTorch fp32| / logit scale "
                   f"{report['max_scaled_diff']:.2e}, top-1 agreement {report['top1_agree']:.0%}")
    else:
        for name, check in report["checks"].items():
            typer.echo(f"  {name:9s} max |onnxruntime - PyTorch fp32| {check['max_abs_diff']:.2e}  top-5 agreement "
                       f"{check['top5_agree']:.0%}")
        typer.echo(f"wrote {out} ({precision}; input: N x {model.num_segments} x 3 x {height} x {width}, normalised as the "
                   "preset's test pipeline; see its metadata)")


def _export(model, out, stream, steps, height, width, source, precision):
    from ..data.pipeline import read_clip

    if stream:
        from ..export.stream_step import VERIFY_STEPS, export_step
        from ..streaming import FramePreprocessor, frames_of
        from ..streaming.incremental import check_streamable

        check_streamable(model)
        prepare = FramePreprocessor(model.preset)
        frames = [prepare(frame) for _, frame in frames_of(source)[1]]
        frames = (frames * (VERIFY_STEPS // len(frames) + 1))[:max(VERIFY_STEPS, len(frames))]
        return export_step(model, out, height, width, frames, precision)
    from ..export.whole import export_model

    real = read_clip(source, steps, model.preset["data"]["filename_tmpl"], decoder=model.preset["data"]["decoder"]).imgs[None]
    return export_model(model, out, height, width, real_clip=real, precision=precision)


def _toy_clip(folder):
    """A rendered toy clip (a square moving left), encoded as H.264 in `folder`."""
    import numpy as np

    from ..prepare.toy import render
    from ..video import write_video

    path = Path(folder) / "toy.mp4"
    write_video(path, render(0, np.random.default_rng(0), size=256, frames=32))
    return str(path)
