"""Writing videos (H.264 through PyAV's bundled FFmpeg) and probing them (decord)."""
import os
import tempfile

import numpy as np


def add_h264_stream(container, rate, width, height, crf=20, gop=None):
    """An H.264 (libx264, yuv420p) stream; gop sets a keyframe every `gop` frames and no B-frames."""
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": "veryfast", **({"g": str(gop), "bf": "0"} if gop else {})}
    return stream


def write_video(path, frames, fps=12, crf=20):
    """frames: uint8 array (T, H, W, 3), H and W even. Written to a temp file, then renamed into place."""
    import av

    frames = np.asarray(frames, dtype=np.uint8)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {w}x{h}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".mp4.tmp")
    os.close(fd)
    try:
        with av.open(tmp, "w", format="mp4") as container:
            stream = add_h264_stream(container, fps, w, h, crf)
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def probe_video(path):
    """Number of frames, or raise MediaError when the video cannot be decoded."""
    from ..data.decode import open_video, read_video_frames

    reader = open_video(path)
    read_video_frames(reader, path, [0, len(reader) - 1])  # a truncated stream fails at its end
    return len(reader)
