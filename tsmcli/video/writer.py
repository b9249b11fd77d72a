"""Writing videos: H.264 (libx264, yuv420p) through PyAV's bundled FFmpeg, frame by frame or all at once.
A file appears complete under its name or not at all: it is written under a unique temporary name in
the same folder and renamed into place when closed."""
from fractions import Fraction

import numpy as np

from ..atomic import AtomicFile


def add_h264_stream(container, rate, width, height, crf=20, gop=None, reproducible=False):
    """An H.264 (libx264, yuv420p) stream; gop sets a keyframe every `gop` frames and no B-frames.
    reproducible: the same frames give the same bytes on every run, with one thread and x264's plain C
    code (its assembly gave other bytes for the same input now and then; tests/test_prepare.py catches
    it); slower, so only for small generated clips (the toy dataset, the export's check clip)."""
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": "veryfast", **({"g": str(gop), "bf": "0"} if gop else {}),
                      **({"threads": "1", "x264-params": "asm=0"} if reproducible else {})}
    return stream


class VideoWriter:
    """An .mp4 written as frames arrive: uint8 (H, W, 3) arrays or PyAV frames. The size is the first
    frame's, cut to even sides (yuv420p needs them); frames are numbered 0, 1, 2 ... at `fps`.

        with VideoWriter("out.mp4", fps=30) as video:
            for frame in frames:
                video.write(frame)
    """

    def __init__(self, path, fps, crf=20, gop=None, reproducible=False):
        self.path, self.crf, self.gop, self.reproducible = str(path), crf, gop, reproducible
        self.rate = Fraction(fps).limit_denominator(1001)
        self.container = self.stream = self.size = self.file = self.scaler = None
        self.frames = 0

    def _open(self, width, height):
        import av

        self.file = AtomicFile(self.path)
        self.container = av.open(str(self.file.tmp), "w", format="mp4")
        self.size = (width - width % 2, height - height % 2)
        self.stream = add_h264_stream(self.container, self.rate, *self.size, self.crf, self.gop, self.reproducible)
        self.stream.codec_context.time_base = 1 / self.rate

    def write(self, frame):
        import av

        if isinstance(frame, av.VideoFrame):
            if self.container is None:
                self._open(frame.width, frame.height)
            if (frame.width, frame.height) != self.size or frame.format.name != "yuv420p":
                # The writer's own scaler, not frame.reformat's, which PyAV keeps per thread: a process forked
                # later (prepare's workers, loader workers) would inherit that one with its swscale slice
                # threads gone, and block for good freeing it at its first frame of another size.
                if self.scaler is None:
                    from av.video.reformatter import VideoReformatter

                    self.scaler = VideoReformatter()
                frame = self.scaler.reformat(frame, width=self.size[0], height=self.size[1], format="yuv420p")
        else:
            frame = np.asarray(frame, dtype=np.uint8)
            if self.container is None:
                self._open(frame.shape[1], frame.shape[0])
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:self.size[1], :self.size[0]]),
                                               format="rgb24")
        frame.pts, frame.time_base = self.frames, self.stream.codec_context.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, keep=True):
        """Finish the file and move it into place (keep=True), or remove it."""
        if self.container is None:
            return
        try:
            if keep:
                for packet in self.stream.encode():
                    self.container.mux(packet)
            self.container.close()
            if keep:
                self.file.commit()
        except OSError as e:
            raise self.file.failed(e) from None
        finally:
            self.container = None
            self.file.discard()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.close(keep=kind is None)


def write_video(path, frames, fps=12, crf=20):
    """frames: uint8 array (T, H, W, 3), H and W even; the same frames give the same bytes on every run."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {frames.shape[2]}x{frames.shape[1]}")
    with VideoWriter(path, fps, crf, reproducible=True) as video:
        for frame in frames:
            video.write(frame)


def band_height(height):
    return max(18, height // 12)


def draw_label(frame, text):
    """frame uint8 (H, W, 3) -> a copy with `text` in white on a dark band across the top."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    band = band_height(image.height)
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle([0, 0, image.width, band], fill=(0, 0, 0, 170))
    font = ImageFont.load_default(size=max(10, int(band * 0.7)))
    draw.text((max(4, band // 4), band // 2), text, fill=(255, 255, 255, 255), font=font, anchor="lm")
    return np.asarray(image)
