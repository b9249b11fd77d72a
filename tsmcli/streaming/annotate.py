"""The annotated video of `tsm stream --out`: every source frame, with the current label and its
probability drawn in a dark band at the top, encoded as it arrives (H.264 through PyAV)."""
from ..video import VideoWriter
from ..video.writer import draw_label


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
