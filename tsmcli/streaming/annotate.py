"""The annotated video of `tsm stream --out`: every source frame, with the current label and its
probability drawn in a dark band at the top, encoded as it arrives (H.264 through PyAV)."""
import os
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..prepare.video_io import add_h264_stream


def band_height(height):
    return max(18, height // 12)


def draw_label(frame, text):
    """frame uint8 (H, W, 3) -> a copy with `text` in white on a dark band across the top."""
    image = Image.fromarray(frame)
    band = band_height(image.height)
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle([0, 0, image.width, band], fill=(0, 0, 0, 170))
    font = ImageFont.load_default(size=max(10, int(band * 0.7)))
    draw.text((max(4, band // 4), band // 2), text, fill=(255, 255, 255, 255), font=font, anchor="lm")
    return np.asarray(image)


class AnnotatedVideo:
    """Write frames with their label to `path` (.mp4), at the source's frame rate; the file appears
    complete or not at all."""

    def __init__(self, path, fps):
        self.path, self.fps = str(path), fps
        self.tmp = f"{self.path}.tmp-{os.getpid()}.mp4"
        self.container = self.stream = None
        self.frames = 0

    def write(self, frame, text):
        import av

        if self.container is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self.container = av.open(self.tmp, "w", format="mp4")
            height, width = frame.shape[:2]
            self.size = (width - width % 2, height - height % 2)  # yuv420p needs even sides
            self.stream = add_h264_stream(self.container, Fraction(self.fps).limit_denominator(1001), *self.size)
        frame = draw_label(frame[:self.size[1], :self.size[0]], text)
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self.container.mux(packet)
        self.frames += 1

    def close(self, keep=True):
        if self.container is None:
            return
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        if keep:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.unlink(self.tmp)
