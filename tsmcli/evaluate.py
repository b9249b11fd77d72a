"""`tsm test`: a checkpoint on a test list under the zoo's evaluation schemes.

Schemes: `preset` (the preset's own test pipeline), `efficient` (its validation pipeline with 1 clip:
centre crop 224 for the zoo's presets), `accurate` (2 clips by twice sampling x ThreeCrop 256), `dense`
(the dense presets' 10 clips and their crops).
"""
import copy
import json
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import Subset

from .api import load_model
from .data import build_dataset, build_loader
from .errors import UserError
from .metrics import confusion_matrix, mean_class_accuracy, top_k_accuracy

SCHEMES = ("preset", "efficient", "accurate", "dense")
_CROPS = ("CenterCrop", "ThreeCrop", "TenCrop")


def scheme_pipeline(data_cfg, scheme):
    """The test steps of a scheme, from a preset's data section.

    efficient: the preset's validation pipeline with one clip (the zoo's default: 1 clip, centre crop);
    accurate: its test sampling with twice_sample (2 clips) and ThreeCrop 256; dense: the dense presets'
    own test pipeline (10 clips); preset: the test pipeline as it is.
    """
    if scheme == "preset":
        return copy.deepcopy(data_cfg["test"]["pipeline"])
    if scheme == "efficient":
        steps = copy.deepcopy(data_cfg["val"]["pipeline"])
        if steps[0]["type"] == "SampleFrames":
            steps[0]["twice_sample"] = False
        else:
            steps[0]["num_sample_positions"] = 1
        return steps
    steps = copy.deepcopy(data_cfg["test"]["pipeline"])
    sampler = steps[0]
    if scheme == "dense":
        if sampler["type"] != "DenseSampleFrames":
            raise UserError("--scheme dense needs a dense preset (DenseSampleFrames)")
        return steps
    if sampler["type"] == "SampleFrames":  # accurate
        sampler["twice_sample"] = True
    else:
        sampler["num_sample_positions"] = 2
    kept = [s for s in steps if s["type"] not in _CROPS]
    normalize = [i for i, s in enumerate(kept) if s["type"] == "Normalize"]
    position = normalize[0] if normalize else len(kept)
    return kept[:position] + [{"type": "ThreeCrop", "crop_size": 256}] + kept[position:]


@torch.no_grad()
def test_checkpoint(checkpoint, preset=None, scheme="preset", ann_file=None, data_prefix=None, device="cpu",
                    batch_size=None, workers=None, progress=None,
                    metric_names=("top_k_accuracy", "mean_class_accuracy")):
    """Evaluate; under several processes (torchrun, SLURM, `tsm test --gpus N`) each scores the videos
    rank, rank + world, ... and rank 0 gathers them: every video exactly once, in list order."""
    from .train.runtime import distributed_env

    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    world, rank, local_rank = distributed_env()
    if world > 1:
        device = f"cuda:{local_rank}" if str(device).startswith("cuda") else "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", world_size=world, rank=rank)
    model = load_model(checkpoint, preset=preset, device=device)
    cfg = copy.deepcopy(model.preset)
    cfg["data"]["test"]["pipeline"] = scheme_pipeline(cfg["data"], scheme)
    dataset = build_dataset(cfg, "test", ann_file=ann_file, data_prefix=data_prefix)
    if world > 1:
        dataset = Subset(dataset, list(range(rank, len(dataset), world)))
    loader = build_loader(dataset, batch_size or cfg["data"]["test_videos_per_gpu"],
                          cfg["data"]["workers_per_gpu"] if workers is None else workers, shuffle=False)
    scores, labels, videos, failed, views = [], [], [], [], None
    for batch in loader:
        out = model(batch["imgs"].to(device)).float().cpu()
        scores.append(out)
        labels.append(batch["label"])
        for meta, s, label in zip(batch["meta"], out, batch["label"]):
            views = meta["views"] if not meta["failed"] else views
            videos.append({"index": meta["index"], "path": meta["path"], "label": int(label),
                           "scores": [round(float(x), 6) for x in s]})
            if meta["failed"]:
                failed.append({"path": meta["path"], "reason": meta["failures"][0]["reason"]})
        if progress:
            progress(len(batch["meta"]))
    scores = torch.cat(scores) if scores else torch.zeros(0, model.head.fc.out_features)
    labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, (videos, scores, labels, failed, views))
        videos = [v for p in parts for v in p[0]]
        order = sorted(range(len(videos)), key=lambda i: videos[i]["index"])
        videos = [videos[i] for i in order]
        scores, labels = torch.cat([p[1] for p in parts])[order], torch.cat([p[2] for p in parts])[order]
        failed = [f for p in parts for f in p[3]]
        views = next((p[4] for p in parts if p[4] is not None), None)
    if len(videos) == 0:
        raise UserError("the test list is empty")
    k = min(5, scores.shape[1])
    metrics = {}
    if "top_k_accuracy" in metric_names:
        metrics.update({"top1": top_k_accuracy(scores, labels, 1), f"top{k}": top_k_accuracy(scores, labels, k)})
    if "mean_class_accuracy" in metric_names:
        metrics["mean_class_accuracy"] = mean_class_accuracy(scores, labels)
    matrix = confusion_matrix(scores, labels, scores.shape[1])
    names = model.labels or [str(i) for i in range(scores.shape[1])]
    per_class = [{"index": c, "label": names[c], "videos": int(matrix[c].sum()),
                  "top1": float(matrix[c, c] / matrix[c].sum())} for c in range(len(matrix)) if matrix[c].sum()]
    return {"checkpoint": str(checkpoint), "preset": cfg["name"], "scheme": scheme, "views": views,
            "videos_total": len(videos), "failed": failed, "metrics": metrics, "per_class": per_class,
            "confusion_matrix": matrix.tolist(), "labels": model.labels, "videos": videos}


def write_result(result, path):
    Path(path).write_text(json.dumps(result, indent=1))


def plot_confusion(matrix, path, title=""):
    """A PNG heatmap of the row-normalised confusion matrix (true class down, predicted across)."""
    import numpy as np
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    cell = max(2, min(24, 800 // max(len(matrix), 1)))
    heat = (255 * (1 - rows)).astype(np.uint8).repeat(cell, 0).repeat(cell, 1)
    side = heat.shape[0]
    image = Image.new("RGB", (max(side + 20, 420), side + 40), "white")
    image.paste(Image.fromarray(np.stack([heat, heat, np.full_like(heat, 255)], axis=-1)), (10, 30))
    ImageDraw.Draw(image).text((10, 8), title or "confusion matrix (rows: true, columns: predicted)", fill="black")
    image.save(path)


def _test_worker(checkpoint, kwargs, out):
    try:
        result = test_checkpoint(checkpoint, **kwargs)
        if dist.get_rank() == 0 and out:
            write_result(result, out)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch_test(checkpoint, nproc, out, master_port=29501, **kwargs):
    """Run test_checkpoint in nproc processes (tsmcli.launch); rank 0 writes `out`."""
    from .launch import run_workers

    run_workers(_test_worker, (str(checkpoint), kwargs, str(out) if out else None), nproc, master_port=master_port,
                run_id="tsm-test")
