"""PyAV (FFmpeg inside its wheels, for every platform): random access planned from the packet index.

On open nothing is decoded. The first len() or get() reads every packet of the video stream once
(demuxing only, a small part of one decode), which gives the frame count, each frame's presentation order
and the keyframes. get() then decodes each wanted frame from the last keyframe before it, continuing
forward instead of seeking when that is closer, and tells the decoder to skip non-reference frames
nobody asked for (they can change no other frame). Only the wanted frames are converted to RGB, with
the same swscale conversion decord uses (identical pixels on H.264).

Containers whose packets carry no trustworthy presentation times (AVI's packed B-frames, for one) are
read sequentially instead: the i-th frame is the i-th the decoder returns, as decord counts them.
"""
import bisect

import numpy as np

from .reader import MediaError, VideoReader, first_line

INDEXED_FORMATS = ("mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm")


def check():
    import av  # noqa: F401


def open_reader(path, threads=1):
    return PyAVReader(path, threads)


class _Unordered(Exception):
    """The decoder returned frames out of presentation order: the packet times cannot be trusted."""


class PyAVReader(VideoReader):

    def __init__(self, path, threads=1):
        import av
        from av.video.reformatter import VideoReformatter

        self.path, self._av, self._threads = path, av, threads
        self._reformatter = VideoReformatter()  # one for all frames: it keeps its swscale context
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            raise MediaError(path, f"cannot open video ({first_line(e)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise MediaError(path, "no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = threads
        self.fps = float(self._stream.average_rate or self._stream.guessed_rate or 30.0)
        formats = set(self._container.format.name.split(","))
        self._sequential = not formats & set(INDEXED_FORMATS)
        self._packets = None

    def _index(self):
        if self._packets is not None:
            return
        try:
            packets = [p for p in self._container.demux(self._stream) if p.size]
        except self._av.error.FFmpegError as e:
            raise MediaError(self.path, f"cannot read the video's packets ({first_line(e)})") from None
        self._packets = packets
        pts = [p.pts for p in packets]
        if None in pts or len(set(pts)) != len(pts):
            self._sequential = True
        if not self._sequential:
            order = sorted(pts)
            self._frame_of_pts = {t: i for i, t in enumerate(order)}
            self._keys = [k for k, p in enumerate(packets) if p.is_keyframe] or [0]
            self._key_frames = [self._frame_of_pts[packets[k].pts] for k in self._keys]

    @property
    def frame_size(self):  # from the stream's header: nothing decoded
        return self._stream.codec_context.height, self._stream.codec_context.width

    def __len__(self):
        self._index()
        return len(self._packets)

    def get_array(self, indices):
        self._index()
        wanted = sorted(set(int(i) for i in indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= len(self._packets)):
            raise IndexError(f"{self.path}: frame {wanted[0] if wanted[0] < 0 else wanted[-1]} of "
                             f"{len(self._packets)}")
        try:
            try:
                found = self._sequential_decode(wanted) if self._sequential else self._indexed_decode(wanted)
            except _Unordered:
                self._sequential = True
                found = self._sequential_decode(wanted)
        except self._av.error.FFmpegError as e:
            raise MediaError(self.path, f"cannot decode frames ({first_line(e)})") from None
        return np.stack([found[int(i)] for i in indices])

    def _indexed_decode(self, wanted):
        codec = self._stream.codec_context
        wanted_set, found = set(wanted), {}
        position, last, drained = None, -1, False
        for target in wanted:
            if target in found:
                continue
            gop = max(bisect.bisect_right(self._key_frames, target) - 1, 0)
            start = self._keys[gop]
            if position is None or start > position or last >= target:  # the target's keyframe is ahead: jump
                codec.flush_buffers()
                position, last, drained = start, -1, False
            while target not in found:
                if position < len(self._packets):
                    packet = self._packets[position]
                    position += 1
                    codec.skip_frame = "DEFAULT" if self._frame_of_pts[packet.pts] in wanted_set else "NONREF"
                    frames = codec.decode(packet)
                elif not drained:
                    codec.skip_frame = "DEFAULT"
                    frames, drained = codec.decode(None), True
                else:
                    raise MediaError(self.path, f"frame {target} of {len(self._packets)} does not decode "
                                                "(the stream ends before it)")
                for frame in frames:
                    index = self._frame_of_pts.get(frame.pts)
                    if index is None:
                        continue
                    if index <= last:
                        raise _Unordered()
                    last = index
                    if index in wanted_set:
                        found[index] = self._rgb(frame)
        codec.skip_frame = "DEFAULT"
        return found

    def _sequential_decode(self, wanted):
        codec = self._stream.codec_context
        codec.flush_buffers()
        codec.skip_frame = "DEFAULT"
        wanted_set, found, count = set(wanted), {}, 0
        for packet in self._packets + [None]:
            for frame in codec.decode(packet):
                if count in wanted_set:
                    found[count] = self._rgb(frame)
                count += 1
            if len(found) == len(wanted_set):
                break
        missing = wanted_set - set(found)
        if missing:
            raise MediaError(self.path, f"frame {min(missing)} of {len(self._packets)} does not decode "
                                        f"(the stream gives {count} frames)")
        codec.flush_buffers()
        return found

    def _rgb(self, frame, width=None, height=None):
        interpolation = "BILINEAR" if width else None  # scaling as decord does (FFmpeg's bilinear swscale)
        return self._reformatter.reformat(frame, width, height, "rgb24", interpolation=interpolation).to_ndarray()

    def frames(self, size=None):
        av = self._av
        container = av.open(self.path)  # a fresh demuxer: get() may have consumed this one's
        try:
            stream = container.streams.video[0]
            stream.thread_count = self._threads
            if self._threads != 1:
                stream.thread_type = "AUTO"
            height, width = size or (None, None)
            for i, frame in enumerate(container.decode(stream)):
                time = float(frame.time) if frame.time is not None else i / self.fps
                yield time, self._rgb(frame, width, height)
        except av.error.FFmpegError as e:
            raise MediaError(self.path, f"decoding stopped ({first_line(e)})") from None
        finally:
            container.close()

    def close(self):
        self._container.close()


class CameraReader:
    """A camera through FFmpeg's v4l2 input: frames as they arrive (len and get do not apply)."""

    def __init__(self, device):
        import av

        self.path = device
        try:
            self._container = av.open(device, format="v4l2")
        except (av.error.FFmpegError, OSError) as e:
            raise MediaError(device, f"no camera ({e.__class__.__name__}: {first_line(e, 120)})") from None
        stream = self._container.streams.video[0]
        self.fps = float(stream.average_rate or stream.guessed_rate or 30.0)

    def frames(self, size=None):
        import av
        from av.video.reformatter import VideoReformatter

        scaler = VideoReformatter()  # the reader's own, not to_ndarray's per-thread one (VideoWriter.write says why)
        try:
            for i, frame in enumerate(self._container.decode(video=0)):
                time = float(frame.time) if frame.time is not None else i / self.fps
                yield time, scaler.reformat(frame, format="rgb24").to_ndarray()
        except av.error.FFmpegError as e:
            raise MediaError(self.path, f"the camera stopped ({first_line(e, 120)})") from None
        finally:
            self._container.close()


def open_camera(device):
    return CameraReader(device)
