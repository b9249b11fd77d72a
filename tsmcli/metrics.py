"""Evaluation metrics on class scores (N, K) and integer labels (N,), or multi-hot labels (N, K) for the
multi-label ones (mean average precision); NumPy arrays or tensors."""
import numpy as np


def _numpy(x):
    if hasattr(x, "detach"):  # a tensor; bf16/fp16 scores become float32 first (numpy has no bfloat16)
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return np.asarray(x)


def top_k_accuracy(scores, labels, k=1):
    """Share of samples whose label is among the k highest scores."""
    scores, labels = _numpy(scores), _numpy(labels).astype(np.int64)
    if len(labels) == 0:
        return 0.0
    top = np.argsort(scores, axis=1)[:, -k:]  # mmaction2's ranking, so that ties resolve as in its reports
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(scores, labels, num_classes=None):
    """(K, K) counts: rows are true classes, columns predicted ones."""
    scores, labels = _numpy(scores), _numpy(labels).astype(np.int64)
    num_classes = num_classes or scores.shape[1]
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, scores.argmax(axis=1)), 1)
    return matrix


def mean_class_accuracy(scores, labels):
    """Mean over the classes that occur in `labels` of each class's top-1 accuracy.

    Equal to mmaction2 0.x's whenever every class occurs in `labels`. Where some never does, mmaction2
    also averages in each class that is only predicted, as 0; we leave such classes out, since a class
    with no video has no accuracy (a wrong prediction already counts against its true class)."""
    matrix = confusion_matrix(scores, labels)
    present = matrix.sum(axis=1) > 0
    if not present.any():
        return 0.0
    return float((np.diag(matrix)[present] / matrix.sum(axis=1)[present]).mean())


def average_precision(scores, positives):
    """Area under the step precision-recall curve of one ranking (mmaction2's, and sklearn's
    average_precision_score): the sum over the distinct score thresholds, highest first, of the precision
    at each one times the recall it adds. nan when there is no positive."""
    scores, positives = _numpy(scores).astype(np.float64), _numpy(positives) == 1
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    scores, positives = scores[order], positives[order]
    last_of_tie = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # ties share one threshold
    true = np.cumsum(positives)[last_of_tie]
    precision = true / (last_of_tie + 1)
    recall_gain = np.diff(np.r_[0, true]) / true[-1]
    return float((precision * recall_gain).sum())


def per_class_average_precision(scores, labels):
    """(K,) average precision of each class over the videos (nan for a class without positives)."""
    scores, labels = _numpy(scores), _numpy(labels)
    return np.array([average_precision(scores[:, c], labels[:, c]) for c in range(scores.shape[1])])


def mean_average_precision(scores, labels):
    """Multi-label: the mean over classes with at least one positive video of their average precision
    (scores (N, K), labels (N, K) multi-hot); equal to mmaction2 0.x's. 0.0 when no class has one."""
    ap = per_class_average_precision(scores, labels)
    return float(np.nanmean(ap)) if not np.isnan(ap).all() else 0.0


def mmit_mean_average_precision(scores, labels):
    """Multi-label, as Multi-Moments in Time reports it: the average precision of each video's ranking
    of the classes, averaged over videos. Equal to mmaction2 0.x's when every video has a label; a video
    without one has no ranking to judge and is left out (mmaction2's mean becomes nan)."""
    scores, labels = _numpy(scores), _numpy(labels)
    ap = np.array([average_precision(s, y) for s, y in zip(scores, labels)])
    return float(np.nanmean(ap)) if len(ap) and not np.isnan(ap).all() else 0.0


def top1_hits(scores, labels):
    """Share of samples whose highest score is a label of theirs: top-1 accuracy, and for multi-hot
    labels the share whose best class is one of their labels (the training log's top1)."""
    if labels.ndim == 1:
        return top_k_accuracy(scores, labels, 1)
    best = _numpy(scores).argmax(axis=1)
    return float((_numpy(labels)[np.arange(len(best)), best] > 0).mean()) if len(best) else 0.0
