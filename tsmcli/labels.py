"""Class names: a preset's own label map file (`label_map:`), else the map we ship for its dataset
(tsmcli/label_maps/, in the presets' class order)."""
from importlib import resources
from pathlib import Path

from .errors import UserError


def label_map(dataset):
    """The class names of a dataset we ship a label map for, in the presets' class order, or None."""
    if not dataset:
        return None
    path = resources.files("tsmcli") / "label_maps" / f"{dataset}.txt"
    if not path.is_file():
        return None
    return _names(path.read_text(encoding="utf-8"))


def read_label_map(path):
    """One class name per line, in class-index order (the label_map.txt `tsm prepare` writes)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"label map {path} does not exist (key 'label_map' of the preset)") from None
    except UnicodeDecodeError:
        raise UserError(f"label map {path} is not a text file of class names, one per line") from None
    return _names(text)


def _names(text):
    return [line.strip() for line in text.splitlines() if line.strip()]


def names_or_indices(model):
    """The model's class names, or "0", "1", ... where they are unknown: what a person reads."""
    return model.labels or [str(i) for i in range(model.num_classes)]


def class_names(cfg):
    """The class names of a resolved preset, one per class of its model, or None when unknown.

    A preset's `label_map` must name exactly model.num_classes classes; a shipped dataset map is
    used only when its length fits (a user file that extends a preset may change the classes)."""
    num_classes = cfg["model"]["num_classes"]
    if cfg["label_map"]:
        names = read_label_map(cfg["label_map"])
        if len(names) != num_classes:
            raise UserError(f"label map {cfg['label_map']} names {len(names)} classes, the model has "
                            f"{num_classes} (model.num_classes): make them agree")
        return names
    names = label_map(cfg["dataset"])
    return names if names is not None and len(names) == num_classes else None
