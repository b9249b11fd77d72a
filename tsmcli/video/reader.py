"""Opening a video with one of the decoders, behind one interface.

    reader = open_video("clip.mp4", decoder="auto")
    len(reader), reader.fps
    reader.get([0, 10, 20])        # uint8 (3, 3, H, W), memory (3, H, W, 3)
    reader.get_array([0, 10, 20])  # the same frames as a NumPy array (3, H, W, 3), without loading torch
    for time, frame in reader.frames(): ...   # every frame in order, uint8 (H, W, 3)

Frames come back as uint8 tensors (T, 3, H, W) whose memory is (T, H, W, 3) (channels-last): that is how
decoders produce them, and torch's uint8 bilinear resize is faster on it (docs/benchmarks.md, "Video
decoders").
"""
import functools
import importlib

import numpy as np

from ..errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")

# "auto" takes the first installed decoder of AUTO_ORDER: the fastest on the training fetch, pixels equal
# to decord's on H.264 (benchmarks/decoders.py, docs/benchmarks.md)
DECODERS = ("auto", "pyav", "torchcodec", "decord")
AUTO_ORDER = ("pyav", "torchcodec", "decord")
_BACKENDS = {"pyav": ".pyav_backend", "torchcodec": ".torchcodec_backend", "decord": ".decord_backend"}
INSTALL = {
    "pyav": "pip install av (a dependency of tsm: reinstall tsm)",
    "decord": "pip install 'tsm[decord]' (wheels for Linux x86_64 and Windows only)",
    "torchcodec": "pip install 'tsm[torchcodec]', and FFmpeg's shared libraries 4 to 7 from the system "
                  "(Debian/Ubuntu: apt-get install libavcodec59 libavformat59 libavfilter8 libswscale6 or "
                  "newer; macOS: brew install ffmpeg; conda: conda install ffmpeg)",
}


class MediaError(Exception):
    """A video or frame folder that cannot be read; the dataset skips (training) or reports (test) it."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def first_line(error, limit=200):
    return (str(error).splitlines() or [type(error).__name__])[0][:limit]


class VideoReader:
    """What every decoder gives: len(reader) frames, fps, frame_size, get(indices), frames()."""

    fps = 30.0

    @property
    def frame_size(self):
        """(height, width) of the decoded frames."""
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError

    def get(self, indices):
        """Frames at these indices (any order, repeats allowed) -> uint8 (N, 3, H, W), channels-last memory."""
        return as_clip(self.get_array(indices))

    def get_array(self, indices):
        """get's frames as uint8 NumPy (N, H, W, 3): what a process that only checks decoding needs (each of
        `tsm prepare`'s workers would otherwise load PyTorch, seconds apiece)."""
        raise NotImplementedError

    def frames(self, size=None):
        """Every frame in order as (time in seconds, uint8 (H, W, 3)); size=(h, w) scales while decoding."""
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def as_clip(frames_hwc):
    """uint8 (N, H, W, 3) array -> (N, 3, H, W) tensor over the same channels-last memory."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(frames_hwc)).permute(0, 3, 1, 2)


@functools.cache
def _backend(name):
    """The backend module, or the reason it cannot be used (a string)."""
    try:
        module = importlib.import_module(_BACKENDS[name], __package__)
        module.check()
        return module
    except (ImportError, OSError, RuntimeError) as e:
        return f"{type(e).__name__}: {first_line(e, 300)}"


def available_decoders():
    """The decoders that work in this installation, in auto's order of preference."""
    return [name for name in AUTO_ORDER if not isinstance(_backend(name), str)]


def resolve_decoder(decoder="auto"):
    """'auto' or a decoder's name -> the name of a working decoder; UserError (with what to install) if none."""
    decoder = decoder or "auto"
    if decoder not in DECODERS:
        raise UserError(f"decoder {decoder!r}: use one of {', '.join(DECODERS)} (data.decoder, --decoder)")
    if decoder == "auto":  # the first that works; the others are not imported (torchcodec loads PyTorch)
        found = next((name for name in AUTO_ORDER if not isinstance(_backend(name), str)), None)
        if found is None:
            raise UserError("no video decoder works here: " + "; ".join(
                f"{n} ({_backend(n)}; {INSTALL[n]})" for n in AUTO_ORDER))
        return found
    module = _backend(decoder)
    if isinstance(module, str):
        raise UserError(f"decoder {decoder} is not usable here ({module}): {INSTALL[decoder]}; or use "
                        f"--decoder auto (installed: {', '.join(available_decoders()) or 'none'})")
    return decoder


def open_video(path, decoder="auto", threads=1):
    """A VideoReader for the file; MediaError when it is missing, empty or cannot be opened."""
    import os

    path = str(path)
    module = _backend(resolve_decoder(decoder))
    if not os.path.isfile(path):
        raise MediaError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file")
    reader = module.open_reader(path, threads)
    if len(reader) == 0:
        reader.close()
        raise MediaError(path, "no frames")
    return reader


def probe_video(path, decoder="auto"):
    """Number of frames, or raise MediaError when the video cannot be decoded to its end."""
    with open_video(path, decoder) as reader:
        reader.get_array([0, len(reader) - 1])  # a truncated stream fails at its end
        return len(reader)
