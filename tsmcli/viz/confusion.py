"""The confusion matrix of `tsm test --plot`: the whole matrix with class names up to FULL_MATRIX_CLASSES
classes; beyond that (Kinetics' 400), the most confused pairs."""
import numpy as np

from . import pyplot, save

FULL_MATRIX_CLASSES = 51  # HMDB51's names are still legible at this size
CONFUSED_PAIRS = 25


def plot_confusion(matrix, path, labels=None, title=""):
    matrix = np.asarray(matrix, dtype=np.float64)
    labels = labels or [str(i) for i in range(len(matrix))]
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    figure = (_full(matrix, rows, labels, title) if len(matrix) <= FULL_MATRIX_CLASSES
              else _pairs(matrix, rows, labels, title))
    save(figure, path)


def _full(matrix, rows, labels, title):
    plt = pyplot()
    k = len(rows)
    side = max(4.5, 0.22 * k + 2.5)
    figure, ax = plt.subplots(figsize=(side + 1.2, side), constrained_layout=True)
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    font = 9 if k <= 20 else 7 if k <= 35 else 6
    ax.set_xticks(range(k), labels, rotation=90, fontsize=font)
    counts = matrix.sum(axis=1).astype(int)  # a share of 1 video and of 100 are not the same evidence
    ax.set_yticks(range(k), [f"{label} ({n})" for label, n in zip(labels, counts)], fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (its videos)")
    if k <= 12:  # the shares themselves, where they fit
        for i in range(k):
            for j in range(k):
                if rows[i, j] > 0:
                    ax.text(j, i, f"{rows[i, j]:.2f}\n{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                            color="white" if rows[i, j] > 0.6 else "black")
    figure.colorbar(image, ax=ax, label="share of the true class's videos", shrink=0.8)
    ax.set_title(title or "confusion matrix")
    return figure


def _pairs(matrix, rows, labels, title):
    plt = pyplot()
    off = rows.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:CONFUSED_PAIRS]
    pairs = [(int(i), int(j)) for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]
    figure, ax = plt.subplots(figsize=(9, 0.32 * max(len(pairs), 3) + 1.5), constrained_layout=True)
    ax.barh(range(len(pairs)), [off[i, j] for i, j in pairs], color="tab:blue")
    ax.set_yticks(range(len(pairs)), [f"{labels[i]} → {labels[j]} ({int(matrix[i, j])})" for i, j in pairs],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share of the true class's videos predicted as the other class")
    ax.set_title((title + ": " if title else "") + f"the {len(pairs)} most confused pairs of {len(matrix)} classes")
    ax.grid(axis="x", alpha=0.3)
    return figure
