"""decord (the extra `tsm[decord]`; wheels for Linux x86_64 and Windows only): mmaction2 0.x's decoder."""
from .reader import MediaError, VideoReader, first_line


def check():
    _decord()


def _decord():
    """decord, with its and FFmpeg's own log messages off: failures reach the user as MediaError, once,
    naming the file."""
    import decord
    import decord.logging

    decord.logging.set_level(decord.logging.QUIET)
    return decord


def open_reader(path, threads=1, size=None):
    decord = _decord()
    _probe(path)
    scale = {"height": size[0], "width": size[1]} if size else {}
    try:
        reader = decord.VideoReader(path, num_threads=threads, **scale)
    except Exception as e:  # noqa: BLE001 - decord raises its own DECORDError and RuntimeError
        raise MediaError(path, f"cannot open video ({first_line(e)})") from None
    return DecordReader(path, reader, threads)


def _probe(path):
    """A file FFmpeg cannot open fails here, as a MediaError, quietly: decord's C++ logger would write
    the failure to file descriptor 2 itself, besides the exception we report. Silencing that descriptor
    would silence every other thread of the process meanwhile. A PyAV open reads only the header: decord's
    training fetch ran at 14.1 clips/s with it, 13.7 without (docs/benchmarks.md, "Video decoders")."""
    from .pyav_backend import open_reader as open_with_pyav

    open_with_pyav(path).close()


class DecordReader(VideoReader):

    def __init__(self, path, reader, threads):
        self.path, self._reader, self._threads = path, reader, threads
        self.fps = float(reader.get_avg_fps() or 30.0)

    @property
    def frame_size(self):  # decord reports no header size: its first frame's
        return tuple(self._reader[0].shape[:2])

    def __len__(self):
        return len(self._reader)

    def get_array(self, indices):
        import numpy as np

        try:
            frames = self._reader.get_batch(np.asarray(indices, dtype=np.int64)).asnumpy()
        except Exception as e:  # noqa: BLE001 - a truncated stream fails here, not at open
            raise MediaError(self.path, f"cannot decode frames ({first_line(e)})") from None
        return frames

    def frames(self, size=None):
        """decord scales while decoding (FFmpeg's bilinear swscale) when size is given."""
        reader = open_reader(self.path, self._threads, size)._reader if size else self._reader
        reader.seek(0)
        for i in range(len(reader)):
            try:
                frame = reader.next().asnumpy()
            except StopIteration:
                return
            except Exception as e:  # noqa: BLE001 - decord signals a broken stream with its own errors
                raise MediaError(self.path, f"decoding stopped at frame {i} ({first_line(e, 120)})") from None
            yield i / self.fps, frame
