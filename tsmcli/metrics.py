"""Evaluation metrics on class scores (N, K) and integer labels (N,), NumPy arrays or tensors."""
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
