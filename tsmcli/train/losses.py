"""The training loss of a preset: cross-entropy for single-label data (soft targets under mixup/cutmix),
binary cross-entropy with logits for multi-label data (data.multi_label), each scaled by
model.loss_weight, as mmaction2 0.x's heads compute them."""
import torch.nn.functional as F


def soft_cross_entropy(logits, target):
    if target.ndim == 1:
        return F.cross_entropy(logits, target)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def multi_label_loss(logits, target, label_smooth_eps=0.0):
    """BCE with logits of multi-hot (or blended) targets; label_smooth_eps moves each target towards
    1 / K: (1 - eps) * target + eps / K (mmaction2's multi-class label smoothing)."""
    if label_smooth_eps:
        target = (1 - label_smooth_eps) * target + label_smooth_eps / target.shape[1]
    return F.binary_cross_entropy_with_logits(logits, target)


def training_loss(model_cfg, multi_label):
    """loss(logits, target) for a preset's model section."""
    weight, eps = model_cfg["loss_weight"], model_cfg["label_smooth_eps"]
    if multi_label:
        return lambda logits, target: weight * multi_label_loss(logits, target.float(), eps)
    return lambda logits, target: weight * soft_cross_entropy(logits, target)
