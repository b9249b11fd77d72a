"""Pictures: training curves (curves.py), Grad-CAM (gradcam.py, explain.py) and the confusion matrix
(confusion.py), drawn with matplotlib (`pip install tsm[plots]`)."""
from ..errors import UserError


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no screen), or a UserError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("pictures need matplotlib: pip install 'tsm[plots]' (or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, path):
    """PNG, SVG or PDF by the file's extension; the figure is closed afterwards."""
    plt = pyplot()
    path = str(path)
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise UserError(f"{path}: pictures are written as .png, .svg or .pdf")
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
