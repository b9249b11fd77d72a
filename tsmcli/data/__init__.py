"""The data pipeline: list files, frame sampling, decoding, transforms, datasets and loaders.

The names below are imported on first use: reading a list file (annotations.py, what `tsm prepare`
writes and checks) must not load PyTorch and torchvision (docs/benchmarks.md, "Start-up").
"""
from ..lazy import lazy_names

_EXPORTS = {
    "Record": ".annotations", "load_annotations": ".annotations", "blend_batch": ".augment",
    "VideoDataset": ".dataset", "build_dataset": ".dataset", "build_loader": ".dataset", "collate": ".dataset",
    "workers_stopped_after": ".dataset", "Pipeline": ".pipeline", "SampleFrames": ".sampling",
    "DenseSampleFrames": ".sampling", "MediaError": "..video",
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_names(__name__, _EXPORTS)
