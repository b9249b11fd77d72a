"""`tsm export`: a checkpoint as an ONNX graph or an OpenVINO model (the whole model, or the streaming
step), at fp32, fp16, bf16 or int8, verified before it is kept."""
import json
from pathlib import Path
from typing import Optional

import typer

from ..export.agreement import DEFAULT_MIN_AGREEMENT
from ..export.quantize import DEFAULT_CALIBRATION_CLIPS
from . import options


def export(
    checkpoint: str = typer.Argument(..., help=options.CHECKPOINT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write: .onnx (ONNX), or .xml (OpenVINO; its "
                                                      "weights go beside it in .bin)."),
    format: Optional[str] = typer.Option(None, "--format", help="onnx (onnxruntime, TensorRT, ...) or openvino "
                                                                "[default: from the --out suffix]. TorchScript is "
                                                                "deprecated in PyTorch and a torch.export program "
                                                                "still needs PyTorch to run, so neither is offered."),
    precision: str = typer.Option("fp32", "--precision", help="fp32; fp16 (ONNX, for GPU runtimes: half the file, "
                                                               "verified within 5e-2); bf16 (OpenVINO's inference "
                                                               "precision on CPUs with AVX512-BF16/AMX); int8 "
                                                               "(post-training quantization calibrated on "
                                                               "--calibrate: NNCF for OpenVINO, onnxruntime's "
                                                               "static QDQ for ONNX). bf16 and int8 are judged on "
                                                               "held-out real clips (--verify-on)."),
    calibrate: Optional[Path] = typer.Option(None, "--calibrate", help="int8: clips to calibrate on: a list file "
                                                                       "(mmaction2 format, with --data-root), a "
                                                                       "folder of videos or a video [default: the "
                                                                       "preset's training list, where it exists]."),
    calibration_clips: int = typer.Option(DEFAULT_CALIBRATION_CLIPS, min=1, help="int8: how many clips of --calibrate to calibrate on, "
                                                          "spread over it (docs/benchmarks.md measures the count)."),
    verify_on: Optional[Path] = typer.Option(None, "--verify-on", help="bf16/int8: held-out clips the export is "
                                                                       "judged on, as --calibrate takes them "
                                                                       "[default: the preset's validation list, "
                                                                       "else the --calibrate clips not "
                                                                       "calibrated on]."),
    verify_clips: int = typer.Option(64, min=1, help="bf16/int8: at most this many held-out clips."),
    data_root: Optional[Path] = options.data_root(),
    min_agreement: float = typer.Option(DEFAULT_MIN_AGREEMENT, min=0.0, max=1.0, help="bf16/int8: the least top-1 agreement with "
                                                                      "the fp32 model on the held-out clips; "
                                                                      "below it nothing is written (exit 1)."),
    preset: Optional[str] = options.preset(required=False),
    stream: bool = typer.Option(False, "--stream", help="Export the incremental streaming step of an online model "
                                                        "(frame and state in, logits and state out) instead."),
    video: Optional[Path] = typer.Option(None, help="A real video to verify on, decoded through the preset's "
                                                    "test pipeline [default: a rendered toy clip, encoded and "
                                                    "decoded like any video]."),
    as_json: bool = options.as_json("Print the verification as JSON."),
):
    """Write an ONNX graph (opset 17, dynamic batch) or an OpenVINO model with the input layout,
    normalisation, preset and class names in its metadata, so that predict, test, stream and benchmark
    run it in place of the checkpoint. Before anything is kept, the file runs beside PyTorch (image-like
    clips, a batch of 2, a real clip; the streaming step over 32 frames with its state fed back) and the
    export fails with exit 1, writing nothing, above 1e-4 (fp32, or 10x float32's own rounding where that
    is larger; fp16: 5e-2); bf16 and int8 must also
    agree with the fp32 model on --min-agreement of the held-out clips. Needs tsm[deploy] (ONNX) or
    tsm[openvino].

    Examples:

      tsm export work_dirs/mine/best.pth --out mine.onnx --video clip.mp4

      tsm export work_dirs/mine/best.pth --out mine.xml --precision bf16

      tsm export work_dirs/mine/best.pth --out mine_int8.xml --precision int8 --calibrate data/mine/train.txt --data-root data/mine/videos

      tsm export work_dirs/online/best.pth --stream --out step.xml --precision bf16

      tsm export work_dirs/mine/best.pth --out mine_fp16.onnx --precision fp16
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..errors import UserError
    from ..export import FORMATS, check_precision
    from ..export.build import export_file
    from ..inference import load_predictor
    from ..runtime.engines import onnx_modules, openvino_module

    suffixes = {suffix: name for name, suffix in FORMATS.items()}
    format = format or suffixes.get(out.suffix.lower())
    if format not in FORMATS:
        raise UserError(f"--format {format}: tsm exports onnx or openvino (see --help for why not TorchScript or "
                        "torch.export)" if format else f"--out {out}: name an .onnx or an OpenVINO .xml file")
    if out.suffix.lower() != FORMATS[format]:
        raise UserError(f"--out {out}: {format} files end in {FORMATS[format]}")
    check_precision(precision, format=format)
    onnx_modules()  # the extra is needed: say so before loading anything
    if format == "openvino":
        openvino_module()
    if stream and precision == "int8":
        raise UserError("--stream --precision int8: the streaming step exports at fp32 or bf16 (OpenVINO), "
                        "fp32 or fp16 (ONNX); int8 is for the whole model")
    predictor = load_predictor(checkpoint, preset=preset, fast=False)
    model = predictor.model
    height, width = predictor.clip_transform("efficient").size
    clips = {}
    if precision in ("bf16", "int8") and not stream:
        clips = _real_clips(predictor, precision, calibrate, calibration_clips, verify_on, verify_clips, data_root)
    report = export_file(predictor, out, stream, precision, format, video, min_agreement, clips, checkpoint)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
        return
    _print(report, model, out, stream, precision, format, height, width)


def _real_clips(predictor, precision, calibrate, calibration_clips, verify_on, verify_clips, data_root):
    """{"calibration": ClipSet (int8), "held_out": ClipSet} from the options or the preset's lists."""
    from ..errors import UserError
    from ..export.clips import default_source, read_clips

    clips, calibrated = {}, ()
    if precision == "int8":
        source, root = (calibrate, data_root) if calibrate else default_source(predictor.preset, "train")
        if source is None:
            raise UserError("--precision int8 needs clips to calibrate on: --calibrate LIST_OR_FOLDER (the preset "
                            "names no training list that exists here)")
        clips["calibration"] = read_clips(predictor, source, root, count=calibration_clips)
        calibrated = clips["calibration"].paths
    source, root = (verify_on, data_root) if verify_on else default_source(predictor.preset, "val")
    if source is None and calibrate:
        source, root = calibrate, data_root
    if source is None:
        raise UserError(f"--precision {precision} is judged on held-out real clips: give --verify-on LIST_OR_FOLDER "
                        "(the preset names no validation list that exists here)")
    clips["held_out"] = read_clips(predictor, source, root, count=verify_clips, exclude=calibrated)
    return clips


def _print(report, model, out, stream, precision, format, height, width):
    if stream:
        typer.echo(f"{out}: {precision} streaming step, {report['states']} state tensors ({report['state_bytes'] / 1024:.0f} "
                   f"KiB per stream); over {report['steps']} steps max |exported - PyTorch fp32| / logit scale "
                   f"{report['max_scaled_diff']:.2e}, top-1 agreement {report['top1_agree']:.0%}")
        return
    for name, check in report["checks"].items():
        agreement = (f"top-5 agreement {check['top5_agree']:.0%}" if "top5_agree" in check
                     else f"top-1 agreement {check['top1_agree']:.0%}")
        typer.echo(f"  {name:9s} max |onnxruntime fp32 - PyTorch fp32| {check['max_abs_diff']:.2e}  {agreement}")
    if "openvino_fp32" in report:
        typer.echo(f"  OpenVINO fp32: max |OpenVINO - PyTorch| {report['openvino_fp32']['max_abs_diff']:.2e}")
    held = report.get("held_out")
    if held:
        line = (f"  {precision} on {held['clips']} held-out clips of {held['source']}: top-1 agreement "
                f"{held['top1_agree']:.1%}, probability difference mean {held['mean_prob_diff']:.3f} max "
                f"{held['max_prob_diff']:.3f}")
        if "accuracy_fp32" in held:
            line += f"; accuracy fp32 {held['accuracy_fp32']:.1%} -> {precision} {held['accuracy_exported']:.1%}"
        typer.echo(line)
        for failure in held["unreadable"]:
            typer.echo(f"  unreadable: {failure}", err=True)
    if "calibration" in report:
        typer.echo(f"  calibrated on {report['calibration']['clips']} clips of {report['calibration']['source']}")
    typer.echo(f"wrote {out} ({format}, {precision}; input: N x {model.num_segments} x 3 x {height} x {width}, normalised "
               "as the preset's test pipeline; see its metadata)")
