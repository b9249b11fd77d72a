"""Reading and writing video: the one home of decoding and encoding in tsm.

Reading (reader.py): `open_video(path, decoder)` over three decoders, chosen by `data.decoder` /
`--decoder` (auto | pyav | torchcodec | decord; auto takes the fastest installed one), cameras
(pyav_backend.open_camera) and frame folders (rawframes.py). Writing (writer.py): H.264 through PyAV,
always atomically; transcode.py resizes videos. Names load on first use, so that importing the presets'
schema (which needs DECODERS) does not import torch.
"""
from ..lazy import lazy_names

_HOMES = {
    "AUTO_ORDER": "reader", "DECODERS": "reader", "INSTALL": "reader", "VIDEO_SUFFIXES": "reader",
    "MediaError": "reader", "VideoReader": "reader", "available_decoders": "reader", "open_video": "reader",
    "probe_video": "reader", "resolve_decoder": "reader", "read_rawframes": "rawframes",
    "VideoWriter": "writer", "add_h264_stream": "writer", "write_video": "writer", "resize_video": "transcode",
    "open_camera": "pyav_backend", "sample_video": "samples",
}
__all__ = sorted(_HOMES)
__getattr__ = lazy_names(__name__, {name: f".{home}" for name, home in _HOMES.items()})
