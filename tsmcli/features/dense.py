"""Dense features of a long video: window k holds the source frames k*stride + j*every (j < T), read in
one sequential pass and preprocessed as `tsm stream` does (the predictor's frame_transform: the preset's
validation resize and centre crop); each window is one forward of the whole model, batched. Windows lie inside the video; a video
shorter than one window gives one window padded with its last frame."""
import numpy as np
import torch

from ..errors import OptionError, UserError
from ..streaming import frame_spacing, frames_of
from .extract import Features, clip_features


def window_frames(k, stride, every, frames_per_window):
    return [k * stride + j * every for j in range(frames_per_window)]


@torch.no_grad()
def dense_features(predictor, video, stride=None, every=None, layer=None, batch_size=8):
    model, device = predictor.model, predictor.device
    fps, frames = frames_of(video, decoder=predictor.preset["data"]["decoder"])
    every = every or frame_spacing(predictor.preset, fps)
    frames_per_window = model.num_segments
    span = (frames_per_window - 1) * every  # first to last frame of a window
    stride = stride or frames_per_window * every
    if stride < 1 or every < 1:
        raise OptionError("stride" if stride < 1 else "every", stride if stride < 1 else every, "must be at least 1 source frame")
    preprocess = predictor.frame_transform
    kept, pending, outputs, starts = {}, [], [], []
    count = 0
    for index, (_, frame) in enumerate(frames):
        count = index + 1
        first = max(0, -(-(index - span) // stride))  # the windows that may hold this frame
        if any((index - k * stride) % every == 0 for k in range(first, index // stride + 1)):
            kept[index] = preprocess(frame)[0]
        if index >= span and (index - span) % stride == 0:  # window k is complete
            k = (index - span) // stride
            pending.append(torch.stack([kept[i] for i in window_frames(k, stride, every, frames_per_window)]))
            starts.append(k * stride)
            for i in [i for i in kept if i < (k + 1) * stride]:
                del kept[i]
            if len(pending) == batch_size:
                outputs.append(_run(model, pending, layer, device))
                pending = []
    if count == 0:
        raise UserError(f"{video}: no frames could be read")
    if not starts:  # shorter than one window: its frames, then the last one repeated
        inds = [max(i for i in kept if i <= j) for j in window_frames(0, stride, every, frames_per_window)]
        pending.append(torch.stack([kept[i] for i in inds]))
        starts.append(0)
    if pending:
        outputs.append(_run(model, pending, layer, device))
    array = torch.cat(outputs).cpu().numpy().astype(np.float32)
    frame_lists = [[min(i, count - 1) for i in window_frames(s // stride, stride, every, frames_per_window)]
                   for s in starts]
    windows = [[round(f[0] / fps, 4), round((f[-1] + 1) / fps, 4)] for f in frame_lists]
    return Features(array, "dense", fps=float(fps), windows=windows, frames=frame_lists, every=every, stride=stride)


def _run(model, windows, layer, device):
    """Windows (each T x 3 x h x w) -> their features (B, C): the mean of each window's per-frame ones."""
    clips = torch.stack(windows).to(device)
    return clip_features(model, clips, layer)[:, 0].mean(dim=1)
