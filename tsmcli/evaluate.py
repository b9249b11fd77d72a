"""`tsm test`: a checkpoint on a test list under the zoo's evaluation schemes.

Schemes: `preset` (the preset's own test pipeline), `efficient` (1 clip, centre crop 224), `accurate`
(2 clips by twice sampling x ThreeCrop 256), `dense` (the dense presets' 10 clips and their crops).
"""
import copy
import json
from pathlib import Path

import torch

from .api import load_model
from .data import build_dataset, build_loader
from .errors import UserError
from .metrics import mean_class_accuracy, top_k_accuracy

SCHEMES = ("preset", "efficient", "accurate", "dense")
_CROPS = ("CenterCrop", "ThreeCrop", "TenCrop")


def scheme_pipeline(steps, scheme):
    """The preset's test steps changed to a scheme."""
    steps = copy.deepcopy(steps)
    sampler = steps[0]
    if scheme == "preset":
        return steps
    if scheme == "dense":
        if sampler["type"] != "DenseSampleFrames":
            raise UserError("--scheme dense needs a dense preset (DenseSampleFrames)")
        return steps
    if sampler["type"] == "SampleFrames":
        sampler["twice_sample"] = scheme == "accurate"
    else:  # dense presets under the segment schemes: one dense clip (efficient) or two positions (accurate)
        sampler["num_sample_positions"] = 2 if scheme == "accurate" else 1
    crop = {"type": "ThreeCrop", "crop_size": 256} if scheme == "accurate" else {"type": "CenterCrop", "crop_size": 224}
    kept = [s for s in steps if s["type"] not in _CROPS]
    position = next(i for i, s in enumerate(kept) if s["type"] == "Normalize") if any(
        s["type"] == "Normalize" for s in kept) else len(kept)
    return kept[:position] + [crop] + kept[position:]


@torch.no_grad()
def test_checkpoint(checkpoint, preset=None, scheme="preset", ann_file=None, data_prefix=None, device="cpu",
                    batch_size=None, workers=None, progress=None):
    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    model = load_model(checkpoint, preset=preset, device=device)
    cfg = copy.deepcopy(model.preset)
    cfg["data"]["test"]["pipeline"] = scheme_pipeline(cfg["data"]["test"]["pipeline"], scheme)
    dataset = build_dataset(cfg, "test", ann_file=ann_file, data_prefix=data_prefix)
    loader = build_loader(dataset, batch_size or cfg["data"]["test_videos_per_gpu"],
                          cfg["data"]["workers_per_gpu"] if workers is None else workers, shuffle=False)
    scores, labels, videos, failed, views = [], [], [], [], None
    for batch in loader:
        out = model(batch["imgs"].to(device)).float().cpu()
        scores.append(out)
        labels.append(batch["label"])
        for meta, s, label in zip(batch["meta"], out, batch["label"]):
            views = meta["views"] if not meta["failed"] else views
            videos.append({"path": meta["path"], "label": int(label), "scores": [round(float(x), 6) for x in s]})
            if meta["failed"]:
                failed.append({"path": meta["path"], "reason": meta["failures"][0]["reason"]})
        if progress:
            progress(len(batch["meta"]))
    if not scores:
        raise UserError("the test list is empty")
    scores, labels = torch.cat(scores), torch.cat(labels)
    k = min(5, scores.shape[1])
    metrics = {"top1": top_k_accuracy(scores, labels, 1), f"top{k}": top_k_accuracy(scores, labels, k),
               "mean_class_accuracy": mean_class_accuracy(scores, labels)}
    return {"checkpoint": str(checkpoint), "preset": cfg["name"], "scheme": scheme, "views": views,
            "videos_total": len(videos), "failed": failed, "metrics": metrics, "labels": model.labels,
            "videos": videos}


def write_result(result, path):
    Path(path).write_text(json.dumps(result, indent=1))
