"""`tsm explain`: Grad-CAM heat maps over the frames a model samples from a video, as a PNG grid and
optionally an MP4."""
import math

import numpy as np
import torch

from ..errors import OptionError, UserError
from ..inference import Predictor
from . import pyplot, save
from .gradcam import default_layer, grad_cam

OVERLAY_ALPHA = 0.45


def explain_video(predictor, path, target=None, layer=None):
    """-> {"frames": uint8 (T, H, W, 3) as the model saw them (one view: the centre crop of one clip),
    "maps": (T, H, W) in [0, 1], "index", "label", "prob", "layer", "frame_inds"}. predictor: an
    inference.Predictor of a PyTorch model (gradients flow through it), or the model, run as it is."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor(predictor)
    model = predictor.model
    if model.exported:
        raise UserError(f"{model.describe()}: Grad-CAM needs the model's gradients; explain the checkpoint")
    transform = predictor.clip_transform("efficient", normalize=False)
    clip = transform(path)
    frames = clip.imgs  # uint8 (T, 3, H, W)
    maps, index, prob = grad_cam(model, transform.normalize(frames)[None].to(predictor.device),
                                 _class_index(model, target), layer)
    labels = predictor.labels
    return {"frames": frames.permute(0, 2, 3, 1).contiguous().numpy(), "maps": maps.numpy(), "index": index,
            "label": labels[index], "prob": prob, "layer": layer or default_layer(model),
            "frame_inds": clip.meta["frame_inds"]}


def _class_index(model, target):
    if target is None:
        return None
    labels = model.labels or []
    if target in labels:
        return labels.index(target)
    if str(target).isdigit() and int(target) < model.head.fc.out_features:
        return int(target)
    close = [name for name in labels if str(target).lower() in name.lower()][:5]
    raise OptionError("target", target, "not a class of this model"
                      + (f"; did you mean {', '.join(map(repr, close))}?" if close else
                         f" ({model.head.fc.out_features} classes: a name from its label map or an index)"),
                      flag="--class")


def overlay(frames, maps):
    """Frames (T, H, W, 3) uint8 blended with the maps in matplotlib's 'jet' colours -> uint8."""
    import matplotlib

    heat = matplotlib.colormaps["jet"](maps)[..., :3] * 255
    return (frames * (1 - OVERLAY_ALPHA) + heat * OVERLAY_ALPHA).clip(0, 255).astype(np.uint8)


def draw_grid(result, path, title=""):
    """The frames with their heat maps, 4 to a row, titled with the class and the layer, beside a colour
    bar of the map's scale; -> the figure (written to path)."""
    plt = pyplot()
    t = len(result["frames"])
    columns = min(t, 4)
    rows = math.ceil(t / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns + 0.8, 3 * rows + 0.6), squeeze=False,
                                constrained_layout=True)
    blended = overlay(result["frames"], result["maps"])
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < t:
            ax.imshow(blended[i])
            ax.set_title(f"frame {result['frame_inds'][i]}", fontsize=10)
    import matplotlib

    scale = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap="jet")
    bar = figure.colorbar(scale, ax=axes, shrink=0.8, alpha=OVERLAY_ALPHA)
    bar.set_label("Grad-CAM, relative to the clip's strongest")
    figure.suptitle(f"{title + ': ' if title else ''}Grad-CAM for '{result['label']}' "
                    f"(p = {result['prob']:.1%}), layer {result['layer']}", fontsize=12)
    save(figure, path)
    return figure


def write_overlay_video(result, path, seconds_per_frame=0.5, min_side=224):
    """Each sampled frame with its heat map for `seconds_per_frame`, scaled up to at least min_side,
    with the class, its probability and the frame's index written across the top."""
    from ..video import write_video
    from ..video.writer import draw_label

    blended = torch.from_numpy(overlay(result["frames"], result["maps"])).permute(0, 3, 1, 2)
    h, w = blended.shape[-2:]
    scale = max(1.0, min_side / min(h, w))
    size = [2 * round(h * scale / 2), 2 * round(w * scale / 2)]  # H.264 wants even sides
    big = torch.nn.functional.interpolate(blended.float(), size=size, mode="nearest").byte().permute(0, 2, 3, 1)
    labelled = np.stack([draw_label(frame, f"{result['label']} {result['prob']:.0%} | frame {index}")
                         for frame, index in zip(big.numpy(), result["frame_inds"])])
    fps = 8
    repeats = max(1, round(seconds_per_frame * fps))
    write_video(path, labelled.repeat(repeats, axis=0), fps=fps)
