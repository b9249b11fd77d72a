"""`tsm test`: a checkpoint on a test list under one of the zoo's evaluation schemes (data/schemes.py),
loaded through the inference home and scored as validation scores (scoring.py)."""
import copy
import json
from pathlib import Path

import torch
import torch.distributed as dist

from .data import build_dataset, build_loader
from .errors import UserError
from .export.cache import load_predictor_on
from .inference import decoder_override
from .metrics import confusion_matrix, per_class_average_precision
from .scoring import compute_metrics, score_videos


@torch.no_grad()
def test_checkpoint(checkpoint, preset=None, scheme="preset", ann_file=None, data_prefix=None, device="cpu",
                    batch_size=None, workers=None, progress=None,
                    metric_names=None, fast=False, amp=None, decoder=None, backend="torch"):
    """Evaluate (metric_names: default, the preset's evaluation.metrics); under several processes
    (torchrun, SLURM, `tsm test --gpus N`) each scores the videos rank, rank + world, ... and rank 0
    gathers them: every video exactly once, in list order."""
    from .distributed import every_nth, join_process_group

    world, rank, device = join_process_group(device)
    predictor = load_predictor_on(backend, checkpoint, preset=preset, device=device, fast=fast, amp=amp,
                                  say=print if rank == 0 else None, **decoder_override(decoder))
    if predictor.model.average_clips is None:
        raise UserError("model.average_clips: null returns per-view scores, which tsm test cannot rank; set "
                        "model.average_clips=prob (or score)")
    cfg = copy.deepcopy(predictor.preset)
    cfg["data"]["test"]["pipeline"] = predictor.clip_transform(scheme).steps
    dataset = every_nth(build_dataset(cfg, "test", ann_file=ann_file, data_prefix=data_prefix), world, rank)
    loader = build_loader(dataset, batch_size or cfg["data"]["test_videos_per_gpu"],
                          cfg["data"]["workers_per_gpu"] if workers is None else workers, shuffle=False)
    scores, labels, metas = score_videos(predictor.probabilities, loader, predictor.model.num_classes, world,
                                         progress)
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
    names = predictor.labels
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
            "confusion_matrix": None if matrix is None else matrix.tolist(), "labels": predictor.model.labels,
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


def launch_test(checkpoint, nproc, out, master_port=29500, **kwargs):
    """Run test_checkpoint in nproc processes (tsmcli.launch); rank 0 writes `out`."""
    from .launch import run_workers

    run_workers(_test_worker, (str(checkpoint), kwargs, str(out) if out else None), nproc, master_port=master_port,
                run_id="tsm-test")
