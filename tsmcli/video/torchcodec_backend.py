"""torchcodec (the extra `tsm[torchcodec]`: PyTorch's decoder, wheels for Linux x86_64/aarch64, macOS arm64
and Windows). It loads the system's FFmpeg libraries (4 to 7) at first use; without them check() fails
and `auto` moves on to the next decoder."""
import warnings

from .reader import MediaError, VideoReader, first_line


def check():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torchcodec._core import ops

    if not ops._FFMPEG_AVAILABLE:  # torchcodec imports without FFmpeg and fails at the first video
        raise ImportError("torchcodec found no FFmpeg shared libraries (4 to 7) on this system")


def open_reader(path, threads=1):
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(path, num_ffmpeg_threads=threads, dimension_order="NHWC", seek_mode="exact")
    except Exception as e:  # noqa: BLE001 - torchcodec raises RuntimeError and ValueError for broken files
        raise MediaError(path, f"cannot open video ({first_line(e)})") from None
    return TorchcodecReader(path, decoder)


class TorchcodecReader(VideoReader):

    def __init__(self, path, decoder):
        self.path, self._decoder = path, decoder
        self.fps = float(decoder.metadata.average_fps or 30.0)

    @property
    def frame_size(self):
        return self._decoder.metadata.height, self._decoder.metadata.width

    def __len__(self):
        return len(self._decoder)

    def get(self, indices):
        try:
            frames = self._decoder.get_frames_at([int(i) for i in indices]).data
        except Exception as e:  # noqa: BLE001 - a truncated stream fails here, not at open
            raise MediaError(self.path, f"cannot decode frames ({first_line(e)})") from None
        return frames.permute(0, 3, 1, 2)

    def get_array(self, indices):
        return self.get(indices).permute(0, 2, 3, 1).numpy()

    def frames(self, size=None):
        import torch.nn.functional as F

        for i in range(len(self._decoder)):
            try:
                frame = self._decoder.get_frame_at(i)
            except Exception as e:  # noqa: BLE001
                raise MediaError(self.path, f"decoding stopped at frame {i} ({first_line(e, 120)})") from None
            data = frame.data
            if size:  # torchcodec does not scale: torch's bilinear resize (pixels differ from swscale's)
                data = F.interpolate(data.permute(2, 0, 1)[None].float(), size=size, mode="bilinear",
                                     align_corners=False).round().clamp(0, 255).byte()[0].permute(1, 2, 0)
            yield float(frame.pts_seconds), data.numpy()
