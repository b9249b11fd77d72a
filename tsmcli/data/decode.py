"""Reading frames: videos with decord (one reader per item, one batched fetch), rawframe folders with
libjpeg-turbo through torchvision. Frames come back as uint8 tensors (T, 3, H, W) whose memory is (T, H, W, 3) (channels-last): that is
how decoders produce them, and torch's uint8 bilinear resize is ~2x faster on it."""
import contextlib
import functools
import io
import os
import sys
import threading
import warnings

import numpy as np
import torch

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")

try:  # libjpeg-turbo, batched: 1.3x Pillow's speed with identical pixels (benchmarks/video_decoding.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg
except ImportError:  # torchvision has announced the removal of its image codecs
    decode_jpeg = None


class MediaError(Exception):
    """A video or frame folder that cannot be read; the dataset skips (training) or reports (test) it."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@functools.lru_cache(maxsize=None)
def _decord():
    """decord, with its and FFmpeg's own stderr messages off: failures reach the user as MediaError,
    once, naming the file."""
    import decord
    import decord.logging

    decord.logging.set_level(decord.logging.QUIET)
    return decord


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _stderr_silenced():
    """decord's C++ logger writes a failed open to file descriptor 2 itself; the same text is in the
    exception we report, so while a reader opens, that descriptor points at /dev/null."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def open_video(path):
    decord = _decord()
    if not os.path.isfile(path):
        raise MediaError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError(path, "empty file")
    try:
        with _stderr_silenced():
            reader = decord.VideoReader(path, num_threads=1)
    except Exception as e:  # noqa: BLE001 - decord raises its own DECORDError and RuntimeError
        raise MediaError(path, f"cannot open video ({str(e).splitlines()[0][:200]})") from None
    if len(reader) == 0:
        raise MediaError(path, "no frames")
    return reader


def read_video_frames(reader, path, indices):
    try:
        frames = reader.get_batch(np.asarray(indices, dtype=np.int64)).asnumpy()
    except Exception as e:  # noqa: BLE001 - a truncated stream fails here, not at open
        raise MediaError(path, f"cannot decode frames ({str(e).splitlines()[0][:200]})") from None
    return torch.from_numpy(frames).permute(0, 3, 1, 2)


def read_rawframes(directory, filename_tmpl, indices):
    """indices are absolute frame numbers (start index and offset already added). Repeated indices are
    decoded once."""
    unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
    datas = []
    for index in unique.tolist():
        path = os.path.join(directory, filename_tmpl.format(index))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise MediaError(path, f"cannot read frame ({e.strerror or e})") from None
        if not data:
            raise MediaError(path, "empty frame file")
        datas.append(data)
    try:
        images = _decode_jpegs(datas)
    except (RuntimeError, OSError, ValueError) as e:
        raise MediaError(directory, f"cannot decode a frame ({str(e).splitlines()[0][:200]})") from None
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1:
        raise MediaError(directory, f"frames have different sizes {sorted(shapes)}")
    # (N, H, W, 3) storage seen as (N, 3, H, W), as decord's frames are: resizing is ~2x faster so
    _, h, w = images[0].shape
    frames = torch.empty((len(inverse), h, w, 3), dtype=torch.uint8)
    for position, which in enumerate(inverse.reshape(-1).tolist()):
        frames[position].copy_(images[which].permute(1, 2, 0))
    return frames.permute(0, 3, 1, 2)


def _decode_jpegs(datas):
    if decode_jpeg is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
            return decode_jpeg(tensors, mode=ImageReadMode.RGB)
    from PIL import Image

    return [torch.from_numpy(np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))).permute(2, 0, 1)
            for d in datas]
