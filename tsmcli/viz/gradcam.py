"""Grad-CAM (Selvaraju et al., ICCV 2017) for TSM: where in each sampled frame the model looks for a class.

A TSM backbone sees a clip as N*T frames: a layer's activations are (N*T, C, h, w) and every frame's
features already hold the shifted channels of its neighbours. Each frame gets its own channel weights
(its gradient averaged over h, w), and the class score's gradient flows back through the shift, so a
frame's map also shows what it contributed to the others. Written here rather than taken from the
`grad-cam` package: the method is these few lines, and that package would bring OpenCV, scikit-learn
and ttach along to reshape a tensor.
"""
import torch
import torch.nn.functional as F

from ..errors import OptionError


def default_layer(model):
    """The last stage: ResNet's layer4, MobileNetV2's last 1x1 convolution."""
    backbone = model.backbone
    return "backbone.layer4" if hasattr(backbone, "layer4") else f"backbone.features.{len(backbone.features) - 1}"


def find_layer(model, name):
    modules = dict(model.named_modules())
    if name not in modules:
        stages = [n for n in modules if n.count(".") == 1 and n.startswith("backbone.")]
        raise OptionError("layer", name, f"the model has no such module; e.g. {', '.join(stages[:8])}")
    return modules[name]


def grad_cam(model, clip, target=None, layer=None):
    """clip: (1, T, 3, H, W), normalised as the model expects (one view).

    Returns (maps, class index, probability): maps is (T, H, W) in [0, 1], one per input frame, scaled
    together (the clip's strongest point is 1), upsampled to the input size. target: a class index
    [default: the predicted class]. A layer after a temporal pool has T/2 maps; each covers 2 frames.
    """
    layer_name = layer or default_layer(model)
    module = find_layer(model, layer_name)
    seen = {}

    def keep(_, __, output):
        seen["activations"] = output

    handle = module.register_forward_hook(keep)  # a hook also turns the fused inference path off
    try:
        with torch.enable_grad():
            scores = model.logits(clip).mean(dim=1)[0]  # (K,), views averaged
            index = int(scores.argmax()) if target is None else int(target)
            activations = seen.get("activations")
            if not isinstance(activations, torch.Tensor) or activations.dim() != 4:
                raise OptionError("layer", layer_name, "not a layer with (frames, channels, h, w) activations")
            # the gradient of the class score for these activations only: the model's .grad stay as they were
            gradients, = torch.autograd.grad(scores[index], activations)
    finally:
        handle.remove()
    activations = activations.detach()
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # one weight per frame and channel
    maps = F.relu((weights * activations).sum(dim=1))  # (T', h, w)
    frames = clip.shape[1]
    if maps.shape[0] != frames:  # temporal pooling halved the frames
        maps = maps.repeat_interleave(frames // maps.shape[0], dim=0)
    maps = F.interpolate(maps[:, None], size=clip.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    maps = maps / maps.max().clamp_min(1e-12)
    probability = float(scores.detach().softmax(dim=0)[index])
    return maps.cpu(), index, probability
