"""Pictures: training curves (curves.py), Grad-CAM (gradcam.py, explain.py) and the confusion matrix
(confusion.py), drawn with matplotlib (`pip install tsm[plots]`)."""
import sys

from ..errors import UserError


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise UserError("pictures need matplotlib: pip install 'tsm[plots]' (or pip install matplotlib)") from None
    return matplotlib


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no screen), or a UserError naming the extra."""
    _matplotlib().use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure(**options):
    """A matplotlib Figure outside pyplot (no backend, no global figure list): what the training loop
    draws with, since importing pyplot alone takes a noticeable part of a second."""
    _matplotlib()
    from matplotlib.figure import Figure

    return Figure(**options)


def save(figure, path):
    """PNG, SVG or PDF by the file's extension; a pyplot figure is closed afterwards. A figure with a
    layout engine already fits its canvas; others are cropped to their contents."""
    path = str(path)
    if not path.lower().endswith((".png", ".svg", ".pdf")):
        raise UserError(f"{path}: pictures are written as .png, .svg or .pdf")
    figure.savefig(path, dpi=120, bbox_inches=None if figure.get_layout_engine() else "tight")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(figure)
