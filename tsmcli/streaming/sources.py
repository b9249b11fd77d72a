"""Where frames come from: a video file, a folder of frames, a camera, or raw RGB frames on stdin.
Each source yields (time in seconds, frame as uint8 (H, W, 3)) and knows its frame rate."""
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import OptionError, UserError

DEFAULT_FPS = 30.0
log = logging.getLogger(__name__)


class Source:
    fps = DEFAULT_FPS

    def __iter__(self):
        raise NotImplementedError


class VideoSource(Source):
    """A file (through the chosen decoder) or a camera (/dev/videoN, or N; through PyAV)."""

    def __init__(self, path, camera=False, decoder="auto"):
        from ..video import MediaError, open_camera, open_video

        self.path = str(path)
        try:
            self.reader = open_camera(self.path) if camera else open_video(self.path, decoder, threads=0)
        except MediaError as e:
            raise UserError(f"{'no camera at' if camera else 'cannot open video'} {self.path} ({e.reason})") from None
        self.fps = self.reader.fps

    def __iter__(self):
        from ..video import MediaError

        try:
            yield from self.reader.frames()
        except MediaError as e:  # a truncated file ends the stream where it breaks
            log.warning("%s: stream ends early (%s)", self.path, e.reason)


class FrameFolderSource(Source):
    def __init__(self, path, fps=None):
        self.files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not self.files:
            raise UserError(f"{path}: no .jpg or .png frames in this folder")
        self.fps = fps or DEFAULT_FPS

    def __iter__(self):
        from PIL import Image

        for i, path in enumerate(self.files):
            with Image.open(path) as image:
                yield i / self.fps, np.asarray(image.convert("RGB"))


class RawStdinSource(Source):
    """Raw rgb24 frames of a known size on standard input (e.g. `ffmpeg ... -f rawvideo -pix_fmt rgb24 -`)."""

    def __init__(self, size, fps=None, stream=None):
        if not size:
            raise UserError("SOURCE - reads raw RGB frames: give their size with --size WIDTHxHEIGHT")
        self.width, self.height = size
        self.fps = fps or DEFAULT_FPS
        self.stream = stream or sys.stdin.buffer

    def __iter__(self):
        frame_bytes = self.width * self.height * 3
        i = 0
        while True:
            data = self.stream.read(frame_bytes)
            if len(data) < frame_bytes:
                return
            # a bytearray: the frame's array is writable, as torch.from_numpy expects (bytes would warn)
            yield i / self.fps, np.frombuffer(bytearray(data), np.uint8).reshape(self.height, self.width, 3)
            i += 1


def open_source(spec, fps=None, size=None, decoder="auto"):
    """A video file, a folder of frames, /dev/videoN or a camera index, or '-' for raw frames on stdin."""
    spec = str(spec)
    if spec == "-":
        return RawStdinSource(size, fps)
    if spec.isdigit() or spec.startswith("/dev/video"):
        device = f"/dev/video{spec}" if spec.isdigit() else spec
        if not os.path.exists(device):
            raise UserError(f"no camera at {device} (cameras here: "
                            f"{', '.join(sorted(str(p) for p in Path('/dev').glob('video*'))) or 'none'})")
        return VideoSource(device, camera=True)
    if os.path.isdir(spec):
        return FrameFolderSource(spec, fps)
    if not os.path.isfile(spec):
        raise UserError(f"{spec}: no such video file, frame folder or camera")
    source = VideoSource(spec, decoder=decoder)
    if fps:
        source.fps = fps
    return source


def parse_size(text):
    if text is None:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
        return width, height
    except ValueError:
        raise OptionError("size", text, "expected WIDTHxHEIGHT, e.g. 640x480") from None
