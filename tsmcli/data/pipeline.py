"""A preset's pipeline (its list of steps) as one callable: record -> Clip.

The first step samples frame indices; decoding is implicit (videos or rawframes, from data.format);
the remaining steps transform the uint8 clip; Normalize, where present, makes it float.
"""
import numpy as np

from ..video import MediaError, open_video, read_rawframes
from .augment import AUGMENTATIONS
from .sampling import SAMPLERS
from .transforms import TRANSFORMS, Clip

STEP_TYPES = {**TRANSFORMS, **AUGMENTATIONS}


class Pipeline:
    def __init__(self, steps, data_format, filename_tmpl="img_{:05d}.jpg", start_index=None, decoder="auto"):
        if not steps or steps[0]["type"] not in SAMPLERS:
            raise ValueError("a pipeline starts with SampleFrames or DenseSampleFrames")
        first = dict(steps[0])
        self.sampler = SAMPLERS[first.pop("type")](**first)
        self.transforms = []
        for step in steps[1:]:
            params = dict(step)
            kind = params.pop("type")
            self.transforms.append(STEP_TYPES[kind](**params))
        self.data_format = data_format
        self.filename_tmpl = filename_tmpl
        self.decoder = decoder
        self.start_index = start_index if start_index is not None else (1 if data_format == "rawframes" else 0)

    @property
    def test_mode(self):
        return self.sampler.test_mode

    def load(self, record, rng):
        """Sample and decode: a Clip of uint8 frames (N, 3, H, W) plus meta (frame_inds, path, fps: None
        for frame folders)."""
        fps = None
        if self.data_format == "videos":
            with open_video(record.path, self.decoder) as reader:
                num_frames, fps = len(reader), float(reader.fps)
                inds = self.sampler(num_frames, rng)
                imgs = reader.get(inds)
        else:
            num_frames = record.total_frames
            inds = self.sampler(num_frames, rng)
            imgs = read_rawframes(record.path, self.filename_tmpl, inds + self.start_index + record.offset)
        meta = {"path": record.path, "frame_inds": (inds + self.start_index).tolist(),
                "total_frames": int(num_frames), "views": self.sampler.views, "fps": fps}
        return Clip(imgs, record.label, meta)

    def __call__(self, record, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        clip = self.load(record, rng)
        for transform in self.transforms:
            clip = transform(clip, rng)
        return clip


def read_clip(path, steps, filename_tmpl="img_{:05d}.jpg", rng=None, decoder="auto"):
    """One video file, or a folder of JPEG frames (img_00001.jpg ... or the preset's filename_tmpl),
    through pipeline steps -> Clip. Raises MediaError when it cannot be read."""
    import os

    from .annotations import Record

    if os.path.isdir(path):
        count = len([f for f in os.listdir(path) if f.lower().endswith((".jpg", ".jpeg"))])
        template = filename_tmpl if os.path.exists(os.path.join(path, filename_tmpl.format(1))) else "img_{:05d}.jpg"
        return Pipeline(steps, "rawframes", template)(Record(str(path), [0], total_frames=count), rng)
    return Pipeline(steps, "videos", decoder=decoder)(Record(str(path), [0]), rng)


_CROPS = ("CenterCrop", "ThreeCrop", "TenCrop")


def output_size(steps):
    """(height, width) of the frames a pipeline (its list of steps) gives the model: its last crop or
    fixed-size resize. Models are timed and exported at this size."""
    size = None
    for step in steps:
        if step["type"] in _CROPS or step["type"] == "MultiScaleCrop":
            value = step.get("crop_size", step.get("input_size"))
            size = (value, value) if isinstance(value, int) else (value[1], value[0])
        elif step["type"] == "Resize" and not step.get("keep_ratio", True):
            size = (int(step["scale"][1]), int(step["scale"][0]))
    if size is None:
        raise ValueError("the pipeline has no crop or fixed-size resize: its output size depends on the video")
    return size


__all__ = ["Pipeline", "MediaError", "output_size", "read_clip"]
