"""`tsm test`: a checkpoint on a test list under one of the zoo's evaluation schemes (data/schemes.py)."""
import copy
import json
from pathlib import Path

import torch
import torch.distributed as dist

from .api import decoder_override, load_for_inference
from .data import build_dataset, build_loader
from .data.schemes import SCHEMES, scheme_pipeline
from .errors import UserError
from .labels import names_or_indices
from .metrics import (confusion_matrix, mean_average_precision, mean_class_accuracy, mmit_mean_average_precision,
                      per_class_average_precision, top_k_accuracy)
from .presets.schema import MULTI_LABEL_METRICS, SINGLE_LABEL_METRICS

def compute_metrics(scores, labels, metric_names=SINGLE_LABEL_METRICS):
    """The named metrics: "top1", "topK" (K = 5, or the class count when smaller), "mean_class_accuracy",
    "mean_average_precision", "mmit_mean_average_precision". Multi-hot labels (N, K) have the two
    multi-label ones only (both when none of them is named)."""
    multi_hot = labels.ndim == 2
    if multi_hot:
        metric_names = [m for m in metric_names if m in MULTI_LABEL_METRICS] or MULTI_LABEL_METRICS
    k = min(5, scores.shape[1])
    metrics = {}
    if "top_k_accuracy" in metric_names:
        metrics.update({"top1": top_k_accuracy(scores, labels, 1), f"top{k}": top_k_accuracy(scores, labels, k)})
    if "mean_class_accuracy" in metric_names:
        metrics["mean_class_accuracy"] = mean_class_accuracy(scores, labels)
    wanted = [name for name in MULTI_LABEL_METRICS if name in metric_names]
    if wanted:
        hot = labels if multi_hot else torch.nn.functional.one_hot(torch.as_tensor(labels), scores.shape[1])
        functions = {"mean_average_precision": mean_average_precision,
                     "mmit_mean_average_precision": mmit_mean_average_precision}
        metrics.update({name: functions[name](scores, hot) for name in wanted})
    return metrics


@torch.no_grad()
def score_videos(model, loader, device, world=1, progress=None, amp=None):
    """(scores, labels, metas) of every item, gathered from all processes of the job in dataset order
    (each process scoring its own share): every video exactly once. amp: an autocast dtype or None."""
    if getattr(model, "average_clips", "prob") is None:
        raise UserError("model.average_clips: null returns per-view scores, which validation and tsm test "
                        "cannot rank; set model.average_clips=prob (or score)")
    scores, labels, metas = [], [], []
    for batch in loader:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            scores.append(model(batch["imgs"].to(device)).float().cpu())
        labels.append(batch["label"])
        metas += batch["meta"]
        if progress:
            progress(len(batch["meta"]))
    scores = torch.cat(scores) if scores else torch.zeros(0, model.num_classes)
    labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, (scores, labels, metas))
        metas = [m for p in parts for m in p[2]]
        order = sorted(range(len(metas)), key=lambda i: metas[i]["index"])
        scores, labels = torch.cat([p[0] for p in parts])[order], torch.cat([p[1] for p in parts])[order]
        metas = [metas[i] for i in order]
    return scores, labels, metas


@torch.no_grad()
def test_checkpoint(checkpoint, preset=None, scheme="preset", ann_file=None, data_prefix=None, device="cpu",
                    batch_size=None, workers=None, progress=None,
                    metric_names=None, fast=False, amp=None, decoder=None, backend="torch"):
    """Evaluate (metric_names: default, the preset's evaluation.metrics); under several processes
    (torchrun, SLURM, `tsm test --gpus N`) each scores the videos rank, rank + world, ... and rank 0
    gathers them: every video exactly once, in list order."""
    from .distributed import every_nth, join_process_group

    if scheme not in SCHEMES:
        raise UserError(f"--scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    world, rank, device = join_process_group(device)
    model, dtype = load_for_inference(checkpoint, preset=preset, device=device, fast=fast, amp=amp, backend=backend,
                                      say=print if rank == 0 else None, **decoder_override(decoder))
    cfg = copy.deepcopy(model.preset)
    cfg["data"]["test"]["pipeline"] = scheme_pipeline(cfg["data"], scheme)
    dataset = every_nth(build_dataset(cfg, "test", ann_file=ann_file, data_prefix=data_prefix), world, rank)
    loader = build_loader(dataset, batch_size or cfg["data"]["test_videos_per_gpu"],
                          cfg["data"]["workers_per_gpu"] if workers is None else workers, shuffle=False)
    scores, labels, metas = score_videos(model, loader, device, world, progress, dtype)
    multi_hot = labels.ndim == 2
    videos = [{"index": m["index"], "path": m["path"],
               "label": torch.nonzero(label).flatten().tolist() if multi_hot else int(label),
               "scores": [round(float(x), 6) for x in s]} for m, s, label in zip(metas, scores, labels)]
    failed = [{"path": m["path"], "reason": m["failures"][0]["reason"]} for m in metas if m["failed"]]
    views = next((m["views"] for m in metas if not m["failed"]), None)
    if len(videos) == 0:
        raise UserError("the test list is empty")
    if len(failed) == len(videos):  # scores of blank frames are no result
        raise UserError(f"none of the {len(videos)} videos could be read (the first, {failed[0]['path']}: "
                        f"{failed[0]['reason']}); check the list and the data root")
    metrics = compute_metrics(scores, labels, metric_names or cfg["evaluation"]["metrics"])
    names = names_or_indices(model)
    if multi_hot:  # each class's average precision over the videos; no confusion matrix
        matrix = None
        per_class = [{"index": c, "label": names[c], "videos": int(labels[:, c].sum()), "ap": float(ap)}
                     for c, ap in enumerate(per_class_average_precision(scores, labels)) if labels[:, c].sum()]
    else:
        matrix = confusion_matrix(scores, labels, scores.shape[1])
        per_class = [{"index": c, "label": names[c], "videos": int(matrix[c].sum()),
                      "top1": float(matrix[c, c] / matrix[c].sum())} for c in range(len(matrix)) if matrix[c].sum()]
    return {"checkpoint": str(checkpoint), "preset": cfg["name"], "scheme": scheme, "views": views,
            "videos_total": len(videos), "failed": failed, "metrics": metrics, "per_class": per_class,
            "confusion_matrix": None if matrix is None else matrix.tolist(), "labels": model.labels,
            "videos": videos}


def write_result(result, path):
    Path(path).write_text(json.dumps(result, indent=1))


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
