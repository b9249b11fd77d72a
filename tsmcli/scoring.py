"""Scores of a model over a loader, and the metrics of scores: what validation during training and
`tsm test` share."""
import torch
import torch.distributed as dist

from .metrics import mean_average_precision, mean_class_accuracy, mmit_mean_average_precision, top_k_accuracy
from .presets.schema import MULTI_LABEL_METRICS, SINGLE_LABEL_METRICS

TOP_K = 5


def compute_metrics(scores, labels, metric_names=SINGLE_LABEL_METRICS):
    """The named metrics: "top1", "top5" (for models of more than 5 classes: of fewer, every label is among
    the top 5, and top-5 is always 1), "mean_class_accuracy",
    "mean_average_precision", "mmit_mean_average_precision". Multi-hot labels (N, K) have the two
    multi-label ones only (both when none of them is named)."""
    multi_hot = labels.ndim == 2
    if multi_hot:
        metric_names = [m for m in metric_names if m in MULTI_LABEL_METRICS] or MULTI_LABEL_METRICS
    metrics = {}
    if "top_k_accuracy" in metric_names:
        metrics["top1"] = top_k_accuracy(scores, labels, 1)
        if scores.shape[1] > TOP_K:
            metrics[f"top{TOP_K}"] = top_k_accuracy(scores, labels, TOP_K)
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
def score_videos(score, loader, num_classes, world=1, progress=None):
    """(scores, labels, metas) of every item, gathered from all processes of the job in dataset order
    (each process scoring its own share): every video exactly once. score: clips (N, V*T, 3, H, W) ->
    (N, K) scores on the CPU (inference.Predictor.probabilities; the training loop's model)."""
    scores, labels, metas = [], [], []
    for batch in loader:
        scores.append(score(batch["imgs"]))
        labels.append(batch["label"])
        metas += batch["meta"]
        if progress:
            progress(len(batch["meta"]))
    scores = torch.cat(scores) if scores else torch.zeros(0, num_classes)
    labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
    if world > 1:
        parts = [None] * world
        dist.all_gather_object(parts, (scores, labels, metas))
        metas = [m for p in parts for m in p[2]]
        order = sorted(range(len(metas)), key=lambda i: metas[i]["index"])
        scores, labels = torch.cat([p[0] for p in parts])[order], torch.cat([p[1] for p in parts])[order]
        metas = [metas[i] for i in order]
    return scores, labels, metas
