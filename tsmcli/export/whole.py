"""The whole recognizer as an exported file: clip (N, T, 3, H, W), normalised as the preset's test
pipeline leaves it -> class probabilities "probs" (N, K) (the model's own view averaging for one view),
the view's "logits" (N, K) and its pooled per-frame "features" (N, T', C), which `tsm extract` reads.
The input layout, normalisation, the resolved preset and the class names
are written into the file's metadata, so every command can run it without the checkpoint.

ONNX (onnxruntime) or OpenVINO IR, at fp32, fp16 (ONNX, for GPU runtimes), bf16 (OpenVINO's inference
precision) or int8 (calibrated on real clips). Each file is kept only once verified on inputs like a
model's (a real clip, and image-like synthetic clips at each size: smooth content, moving, normalised as
the preset's pipeline normalises; Gaussian noise drives some models far from anything they see, where
float32 rounding alone moves their answers): the fp32 graph against PyTorch within 1e-4, or, where
PyTorch's own float32 answer is that uncertain, within ROUNDING_MARGIN times its distance from a float64
run of the same model; a reduced-precision one, in addition, by its top-1 agreement with the fp32 model
on held-out real clips (agreement.py)."""
import copy
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import JobFailed
from ..models.recognizer import at_least_fp32, pool_frames, probabilities
from ..runtime.engines import OnnxRuntimeEngine, OpenVinoEngine, onnx_modules, openvino_module
from . import FP32_TOLERANCE, at_precision
from .agreement import DEFAULT_MIN_AGREEMENT, agreement, check_agreement


def input_layout(model, height, width):
    normalize = [s for s in model.preset["data"]["test"]["pipeline"] if s["type"] == "Normalize"]
    return {"kind": "whole", "input": ["batch", model.num_segments, 3, height, width],
            "layout": "N, T (frames per view), RGB, H, W",
            "normalize": {k: normalize[0][k] for k in ("mean", "std", "to_bgr")} if normalize else
            (model.preset["model"].get("normalize") and {**model.preset["model"]["normalize"], "in_model": True}),
            "labels": model.labels, "preset": model.preset["name"], "preset_config": model.preset,
            "sampling": model.preset["data"]["test"]["pipeline"][0], "outputs": list(OUTPUTS)}


def scheme_sizes(preset):
    """The frame sizes tsm test's schemes give this preset's model (the graph is verified at each)."""
    from ..data.pipeline import output_size
    from ..data.schemes import SCHEMES, scheme_pipeline
    from ..errors import UserError

    sizes = set()
    for scheme in SCHEMES:
        try:
            sizes.add(tuple(output_size(scheme_pipeline(preset["data"], scheme))))
        except UserError:  # dense on a preset that does not sample densely
            pass
    return sorted(sizes)


OUTPUTS = ("probs", "logits", "features")
# A graph may differ from the float64 answer by this many times what float32 rounding moves PyTorch's own
# answer: onnxruntime and OpenVINO order their sums differently, which costs the same order of rounding; a
# graph that computes something else (a block left out, the input frozen) differs by orders of magnitude.
ROUNDING_MARGIN = 10.0
GRAIN = 0.5  # the share of per-pixel texture in image_like_clip's frames


def image_like_clip(model, shape, generator):
    """A clip of `shape` (N, T, 3, H, W) like a model's inputs: smooth random content at three scales,
    moving a little from frame to frame, with a grain of its own in each frame (texture: without it some
    models answer every smooth clip alike), as pixels 0-255 normalised as the preset's test pipeline
    normalises (raw pixels where the model normalises itself)."""
    n, t, c, h, w = shape
    image = sum(weight * torch.nn.functional.interpolate(
        torch.rand(n, c, max(1, h // scale), max(1, w // scale), generator=generator), size=(h, w),
        mode="bilinear", align_corners=False) for scale, weight in ((32, 1.0), (8, 0.5), (2, 0.25))) / 1.75
    frames = [(1 - GRAIN) * torch.roll(image, shifts=(k, 2 * k), dims=(2, 3))
              + GRAIN * torch.rand(image.shape, generator=generator) for k in range(t)]
    clip = 255 * torch.stack(frames, dim=1)
    normalize = [step for step in model.preset["data"]["test"]["pipeline"] if step["type"] == "Normalize"]
    if normalize:
        mean, std = (torch.tensor(normalize[0][k], dtype=torch.float32).view(1, 1, 3, 1, 1) for k in ("mean", "std"))
        clip = (clip - mean) / std
    return clip.contiguous()


class _OneView(nn.Module):
    """The recognizer on one view: (probabilities as its forward gives them, logits, pooled features)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clip):
        features = self.model.forward_features(clip)
        logits = self.model.classify_features(features)
        averaged = {"prob": probabilities(logits, self.model.multi_label), "score": logits}.get(
            self.model.average_clips, logits)
        return averaged[:, 0], logits[:, 0], features[:, 0]


def export_model(model, path, height, width, real_clip=None, seed=0, precision="fp32", format="onnx",
                 calibration=None, held_out=None, min_agreement=DEFAULT_MIN_AGREEMENT, other_sizes=()):
    """Export, verify, keep. The graph takes any frame size; it is verified at (height, width) and at each
    of `other_sizes` (e.g. the preset's test crop, 256 where the efficient scheme's is 224).
    calibration: a ClipSet for int8; held_out: the ClipSet that judges bf16 and int8 (clips not
    calibrated on). Returns the verification report."""
    onnx, _ = onnx_modules()
    model = model.eval()
    graph_precision = "fp16" if precision == "fp16" else "fp32"
    exported, tolerance = at_precision(model, graph_precision)
    generator = torch.Generator().manual_seed(seed)
    example = image_like_clip(model, (1, model.num_segments, 3, height, width), generator)
    clips = {"image_1": example, "image_2": image_like_clip(model, example.shape, generator),
             "batch_2": image_like_clip(model, (2,) + example.shape[1:], generator)}
    for h, w in other_sizes:
        if (h, w) != (height, width):
            clips[f"{h}x{w}"] = image_like_clip(model, (1, model.num_segments, 3, h, w), generator)
    if real_clip is not None:
        clips["real"] = real_clip
    meta = {**input_layout(model, height, width), "precision": precision,
            "verified_sizes": sorted({(height, width), *map(tuple, other_sizes)})}
    with _scratch_beside(path) as scratch:
        graph_path = Path(scratch) / "model.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(_OneView(exported).eval(), (example,), str(graph_path), input_names=["clip"],
                              output_names=list(OUTPUTS), opset_version=17, dynamo=False,
                              dynamic_axes={"clip": {0: "batch", 3: "height", 4: "width"},
                                            **{name: {0: "batch"} for name in OUTPUTS}})
        graph = onnx.load(str(graph_path))
        graph.metadata_props.add(key="tsm", value=json.dumps(meta))
        onnx.save(graph, str(graph_path))
        report = {"path": str(path), "format": format, "precision": precision, "tolerance": tolerance}
        answers = _PyTorchAnswers(model)
        report.update(_compare(answers, OnnxRuntimeEngine(graph_path, metadata=meta), clips, tolerance, path))
        if format == "openvino":
            ov_model = openvino_module().convert_model(str(graph_path))
            ov_model.set_rt_info(json.dumps(meta), ["tsm"])
            graph_path = Path(scratch) / "model.xml"
            openvino_module().save_model(ov_model, str(graph_path), compress_to_fp16=False)
            fp32 = OpenVinoEngine(graph_path, metadata=meta, precision="fp32")
            report["openvino_fp32"] = _compare(answers, fp32, clips, tolerance, path)
        if precision == "int8":
            graph_path = _quantized(graph_path, format, calibration, scratch, meta)
            report["calibration"] = {"clips": len(calibration), "source": calibration.source}
        if precision in ("bf16", "int8"):
            engine = _engine(graph_path, format, meta)
            report["held_out"] = agreement(model, lambda clip: engine.run({"clip": clip.numpy()})[0], held_out)
            check_agreement(report["held_out"], min_agreement, f"{path} ({precision})")
        _keep(graph_path, Path(path))
    return report


class _PyTorchAnswers:
    """PyTorch's answers on the verification clips, computed once for every engine compared with them:
    the recognizer's own forward (not the graph's module: an independent reference) with the pooled
    features of the same pass; at float64 (a copy of the model) only where a graph's difference needs it."""

    def __init__(self, model):
        self.models, self.known = {torch.float32: model}, {}

    def at(self, name, clip, dtype=torch.float32):
        if (name, dtype) not in self.known:
            if dtype not in self.models:
                self.models[dtype] = copy.deepcopy(self.models[torch.float32]).to(dtype)
            self.known[name, dtype] = _forward(self.models[dtype], clip.to(dtype))
        return self.known[name, dtype]


def _forward(model, clip):
    """(the recognizer's output, forward_features' (N, T', C) of the first view) from one pass: the
    backbone's feature maps are caught on their way to the head rather than computed a second time."""
    maps = []
    hook = model.backbone.register_forward_hook(lambda module, inputs, output: maps.append(output))
    try:
        with torch.no_grad():
            output = model(clip)
    finally:
        hook.remove()
    features = pool_frames(maps[0], clip.shape[0], clip.shape[1] // model.num_segments)[:, 0]
    return at_least_fp32(output).numpy(), features.numpy()


def _compare(answers, engine, clips, tolerance, path):
    """The engine's probabilities beside PyTorch's on each clip, and its features relative to their
    scale (fp32 graphs only; an fp16 backbone's features are reported, its probabilities judged); fails
    above `tolerance`, except for an fp32 graph whose difference float32 rounding explains: judged then
    against a float64 run of the model (ROUNDING_MARGIN)."""
    checks, outputs = {}, {}
    worst, excess = 0.0, 0.0  # the largest difference from PyTorch; the largest over what is allowed
    for name, clip in clips.items():
        expected, features = answers.at(name, clip)
        got, _, got_features = engine.run({"clip": clip.numpy()})
        outputs[name] = (expected, got)
        diffs = {"max_abs_diff": float(np.abs(got - expected).max()),
                 "features_scaled_diff": _scaled(got_features, features)}
        top_ours, top_theirs = np.argsort(-expected, 1)[:, :5], np.argsort(-got, 1)[:, :5]
        checks[name] = {**diffs, "top1_agree": float(np.mean(top_ours[:, 0] == top_theirs[:, 0]))}
        if expected.shape[1] > 5:  # with 5 classes or fewer the top 5 are every class: they always agree
            checks[name]["top5_agree"] = float(np.mean([set(a) == set(b) for a, b in zip(top_ours, top_theirs)]))
        judged = diffs if tolerance <= FP32_TOLERANCE else {"max_abs_diff": diffs["max_abs_diff"]}
        ratio = max(d / tolerance for d in judged.values()) if all(map(np.isfinite, judged.values())) else np.inf
        if ratio > 1 and tolerance <= FP32_TOLERANCE and np.isfinite(ratio):
            checks[name]["float64"] = _against_float64(answers.at(name, clip, torch.float64), expected, features, got,
                                                       got_features, tolerance)
            ratio = checks[name]["float64"]["ratio"]
        worst, excess = max(worst, *judged.values()), max(excess, ratio)
    if excess > 1 or not np.isfinite(excess):
        rounding = [c["float64"] for c in checks.values() if "float64" in c]
        detail = (f" and from a float64 run of the model by {max(r['graph'] for r in rounding):.3g}, more than "
                  f"float32 rounding explains (it moves PyTorch's own answer by {max(r['pytorch'] for r in rounding):.3g})"
                  if rounding else f" (> {tolerance:g})")
        raise JobFailed(f"{path} ({engine.backend}): {engine.backend} differs from PyTorch by {worst:.3g}{detail}; "
                        "nothing was written")
    # A graph with the input frozen into constants gives one output for both image clips; PyTorch's moves
    # by `moved`, so the comparison fails it whenever `moved` exceeds the tolerance (reported).
    moved = float(np.abs(outputs["image_1"][0] - outputs["image_2"][0]).max())
    return {"checks": checks, "output_moves_with_input": moved, "max_abs_diff": worst}


def _scaled(got, expected):
    return float(np.abs(got - expected).max() / max(1.0, np.abs(expected).max()))


def _against_float64(exact_answers, expected, features, got, got_features, tolerance):
    """How far the graph and PyTorch's float32 answer are from the float64 one, and the graph's distance
    over what it may be: ROUNDING_MARGIN x PyTorch's, at least the tolerance."""
    exact, exact_features = exact_answers
    graph = max(float(np.abs(got - exact).max()), _scaled(got_features, exact_features))
    pytorch = max(float(np.abs(expected - exact).max()), _scaled(features, exact_features))
    allowed = max(tolerance, ROUNDING_MARGIN * pytorch)
    return {"graph": graph, "pytorch": pytorch, "allowed": allowed, "ratio": graph / allowed}


def _engine(path, format, meta):
    return OpenVinoEngine(path, metadata=meta) if format == "openvino" else OnnxRuntimeEngine(path, metadata=meta)


def _quantized(path, format, calibration, scratch, meta):
    from .quantize import quantize_onnx, quantize_openvino

    if format == "onnx":
        out = Path(scratch) / "int8.onnx"
        quantize_onnx(path, out, calibration)
        return out
    ov = openvino_module()
    quantized = quantize_openvino(ov.Core().read_model(str(path)), calibration)
    quantized.set_rt_info(json.dumps(meta), ["tsm"])
    out = Path(scratch) / "int8.xml"
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def _scratch_beside(path):
    """A hidden folder beside `path` for the files being built and verified (same file system, and gone,
    whatever stops the export)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent)


def _keep(built, target):
    """Move the verified file(s) onto `target`: an OpenVINO model's .bin first, then its .xml, each
    atomically, so a reader never finds an .xml without its weights."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if built.suffix == ".xml":
        with atomic_path(target.with_suffix(".bin")) as tmp:
            shutil.copyfile(built.with_suffix(".bin"), tmp)
    with atomic_path(target) as tmp:
        shutil.copyfile(built, tmp)
