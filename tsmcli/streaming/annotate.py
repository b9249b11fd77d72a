"""The annotated video of `tsm stream --out`: every source frame, with the current label and its
probability drawn in a dark band at the top, encoded as it arrives (H.264 through PyAV)."""
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..video import VideoWriter


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
        self.video = VideoWriter(path, fps)

    @property
    def frames(self):
        return self.video.frames

    def write(self, frame, text):
        height, width = frame.shape[:2]
        self.video.write(draw_label(frame[:height - height % 2, :width - width % 2], text))

    def close(self, keep=True):
        self.video.close(keep)
