"""Frame folders (rawframes): JPEG files decoded with libjpeg-turbo through torchvision, batched."""
import io
import os
import warnings

import numpy as np
import torch

from .reader import MediaError, first_line


def read_rawframes(directory, filename_tmpl, indices):
    """indices are absolute frame numbers (start index and offset already added). Repeated indices are
    decoded once."""
    unique, inverse = np.unique(np.asarray(indices), return_inverse=True)
    datas = []
    for index in unique.tolist():
        path = os.path.join(directory, filename_tmpl.format(index))
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise MediaError(path, f"cannot read frame ({e.strerror or e})") from None
        if not data:
            raise MediaError(path, "empty frame file")
        datas.append(data)
    try:
        images = _decode_jpegs(datas)
    except (RuntimeError, OSError, ValueError) as e:
        raise MediaError(directory, f"cannot decode a frame ({first_line(e)})") from None
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1:
        raise MediaError(directory, f"frames have different sizes {sorted(shapes)}")
    # (N, H, W, 3) storage seen as (N, 3, H, W), as decord's frames are: resizing is faster so
    _, h, w = images[0].shape
    frames = torch.empty((len(inverse), h, w, 3), dtype=torch.uint8)
    for position, which in enumerate(inverse.reshape(-1).tolist()):
        frames[position].copy_(images[which].permute(1, 2, 0))
    return frames.permute(0, 3, 1, 2)


def _decode_jpegs(datas):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:  # libjpeg-turbo, batched: faster than Pillow, identical pixels (docs/benchmarks.md, "Video decoders");
            # imported here, at the first frame folder read: importing torchvision costs seconds of start-up
            from torchvision.io import ImageReadMode, decode_jpeg
        except ImportError:  # torchvision has announced the removal of its image codecs
            decode_jpeg = None
        if decode_jpeg is not None:
            tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
            return decode_jpeg(tensors, mode=ImageReadMode.RGB)
    from PIL import Image

    return [torch.from_numpy(np.asarray(Image.open(io.BytesIO(d)).convert("RGB"))).permute(2, 0, 1)
            for d in datas]
