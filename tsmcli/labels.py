"""Class names: the label maps shipped in tsmcli/label_maps/, one per dataset, in the presets' class order."""
from pathlib import Path


def label_map(dataset):
    """The class names of a dataset we ship a label map for, in the presets' class order, or None."""
    if not dataset:
        return None
    path = Path(__file__).parent / "label_maps" / f"{dataset}.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]
