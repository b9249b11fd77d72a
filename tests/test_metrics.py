import json

import numpy as np
import pytest
import torch
from conftest import TESTS

from tsmcli.metrics import confusion_matrix, mean_class_accuracy, top_k_accuracy

CASES = json.loads((TESTS / "data/mmaction/metrics.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"n{len(c['labels'])}-all{c['every_class_labelled']}")
def test_top_k_equals_mmactions(case):
    scores, labels = np.array(case["scores"]), np.array(case["labels"])
    assert top_k_accuracy(scores, labels, 1) == pytest.approx(case["top1"], abs=1e-12)
    assert top_k_accuracy(torch.tensor(scores), torch.tensor(labels), 5) == pytest.approx(case["top5"], abs=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c["every_class_labelled"]])
def test_mean_class_equals_mmactions_when_every_class_occurs(case):
    assert mean_class_accuracy(np.array(case["scores"]), np.array(case["labels"])) == pytest.approx(
        case["mean_class_accuracy"], abs=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if not c["every_class_labelled"]])
def test_mean_class_over_labelled_classes_only(case):
    """mmaction2 adds predicted-only classes as 0; ours averages over labelled classes, so it is at least
    as high, and equals the plain mean of per-class recalls."""
    scores, labels = np.array(case["scores"]), np.array(case["labels"])
    ours = mean_class_accuracy(scores, labels)
    pred = scores.argmax(1)
    recalls = [(pred[labels == c] == c).mean() for c in np.unique(labels)]
    assert ours == pytest.approx(np.mean(recalls))
    assert ours > case["mean_class_accuracy"]


def test_confusion_matrix():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert confusion_matrix(scores, [0, 1, 1]).tolist() == [[1, 0], [1, 1]]
