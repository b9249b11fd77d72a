"""The data pipeline: list files, frame sampling, decoding, transforms, datasets and loaders."""
from .annotations import Record, load_annotations
from .augment import blend_batch
from .dataset import VideoDataset, build_dataset, build_loader, collate, workers_stopped_after
from ..video import MediaError
from .pipeline import Pipeline
from .sampling import DenseSampleFrames, SampleFrames

__all__ = ["Record", "load_annotations", "VideoDataset", "build_dataset", "build_loader", "collate",
           "workers_stopped_after", "MediaError", "Pipeline", "SampleFrames", "DenseSampleFrames", "blend_batch"]
