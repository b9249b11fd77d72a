"""The whole recognizer as an ONNX graph: clip (N, T, 3, H, W), normalised as the preset's test pipeline
leaves it -> class probabilities (N, K) (the model's own view averaging for one view). The input layout,
mean/std and class names are written into the graph's metadata."""
import json
import warnings

import numpy as np
import torch

from ..atomic import atomic_path

from . import at_precision, check_verified, onnx_modules, session


def input_layout(model, height, width):
    normalize = [s for s in model.preset["data"]["test"]["pipeline"] if s["type"] == "Normalize"]
    return {"input": ["batch", model.num_segments, 3, height, width], "layout": "N, T (frames per view), RGB, H, W",
            "normalize": {k: normalize[0][k] for k in ("mean", "std", "to_bgr")} if normalize else
            (model.preset["model"].get("normalize") and {**model.preset["model"]["normalize"], "in_model": True}),
            "labels": model.labels, "preset": model.preset["name"],
            "sampling": model.preset["data"]["test"]["pipeline"][0]}


def export_model(model, path, height, width, real_clip=None, seed=0, precision="fp32"):
    """Export, verify with onnxruntime on a random clip, a second random clip (the output must move with
    the input: nothing frozen into constants), a batch of 2 (dynamic batch) and `real_clip` (a decoded
    video, (1, T, 3, H, W)) against the fp32 model; keep the file only within 1e-4 (fp32) or 5e-2 (fp16).
    Returns the comparison."""
    onnx, _ = onnx_modules()
    model = model.eval()
    exported, tolerance = at_precision(model, precision)
    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(1, model.num_segments, 3, height, width, generator=generator)
    with atomic_path(path) as tmp:  # kept only when verified
        tmp = str(tmp)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(exported, (example,), tmp, input_names=["clip"], output_names=["probs"], opset_version=17,
                              dynamo=False, dynamic_axes={"clip": {0: "batch"}, "probs": {0: "batch"}})
        graph = onnx.load(tmp)
        layout = {**input_layout(model, height, width), "precision": precision}
        graph.metadata_props.add(key="tsm", value=json.dumps(layout))
        onnx.save(graph, tmp)
        clips = {"random": example, "random_2": torch.randn(example.shape, generator=generator),
                 "batch_2": torch.randn((2,) + example.shape[1:], generator=generator)}
        if real_clip is not None:
            clips["real"] = real_clip
        runner = session(tmp)
        report, outputs = {}, {}
        for name, clip in clips.items():
            with torch.no_grad():
                expected = model(clip).float().numpy()
            got = runner.run(None, {"clip": clip.numpy()})[0]
            outputs[name] = (expected, got)
            top_ours, top_theirs = np.argsort(-expected, 1)[:, :5], np.argsort(-got, 1)[:, :5]
            report[name] = {"max_abs_diff": float(np.abs(got - expected).max()),
                            "top5_agree": float(np.mean([set(a) == set(b) for a, b in zip(top_ours, top_theirs)])),
                            "top1_agree": float(np.mean(top_ours[:, 0] == top_theirs[:, 0]))}
        # A graph with the input frozen into constants gives one output for both random clips; PyTorch's moves
        # by `moved`, so the comparison above fails it whenever `moved` exceeds the tolerance (reported).
        moved = float(np.abs(outputs["random"][0] - outputs["random_2"][0]).max())
        worst = max(r["max_abs_diff"] for r in report.values())
        check_verified(worst, tolerance, str(path))
    return {"path": str(path), "precision": precision, "tolerance": tolerance, "checks": report,
            "output_moves_with_input": moved, "max_abs_diff": worst}
