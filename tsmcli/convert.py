"""State-dict key conversion from mmaction2 0.x and the original mit-han-lab TSM code to ours.

Ours: `backbone.*` is torchvision's ResNet / MobileNetV2 naming (a shifted conv keeps its plain key),
non-local blocks are `layerX.i.block.*` + `layerX.i.non_local.*`, the classifier is `head.fc.*`.
"""
import re

from .errors import UserError

# Number of inverted-residual blocks in each of mmaction's / mmcls's MobileNetV2 layer1..layer7.
_MOBILENET_LAYER_BLOCKS = (1, 2, 3, 4, 3, 3, 1)
_LAST_FEATURE = 1 + sum(_MOBILENET_LAYER_BLOCKS)  # torchvision features.18 is the final 1x1 conv


def detect_format(state_dict):
    """'ours', 'mmaction' or 'original' from the key names."""
    keys = list(state_dict)
    if any(k.startswith("cls_head.") for k in keys) or any(k.startswith("backbone.conv1.conv.") for k in keys):
        return "mmaction"
    if any(k.startswith(("module.base_model.", "base_model.")) for k in keys):
        return "original"
    if any(k.startswith("head.fc.") for k in keys):
        return "ours"
    raise UserError("checkpoint has neither our keys (head.fc.*), mmaction2's (cls_head.*) nor the "
                    "original TSM code's (module.base_model.*); first keys: " + ", ".join(keys[:5]))


def to_ours(state_dict):
    fmt = detect_format(state_dict)
    if fmt == "mmaction":
        return mmaction_to_ours(state_dict)
    if fmt == "original":
        return original_to_ours(state_dict)
    return dict(state_dict)


def _is_mobilenet(keys):
    return any(re.match(r"(backbone\.)?conv2\.conv\.", k) for k in keys) or any(
        re.match(r"(module\.)?base_model\.features\.", k) for k in keys)


def mmaction_to_ours(state_dict):
    if _is_mobilenet(state_dict):
        out = {}
        for key, value in state_dict.items():
            if key.startswith("backbone."):
                out.update(mmcls_mobilenet_v2_to_torchvision({key[len("backbone."):]: value}, "backbone."))
            else:
                out[_mmaction_head_key(key)] = value
        return out
    return {_mmaction_resnet_key(k): v for k, v in state_dict.items()}


def _mmaction_head_key(key):
    if key.startswith("cls_head.fc_cls."):
        return "head.fc." + key[len("cls_head.fc_cls."):]
    raise UserError(f"unexpected key {key!r} in an mmaction2 TSM checkpoint")


_RESNET_RULES = [
    (r"^backbone\.conv1\.conv\.", "backbone.conv1."),
    (r"^backbone\.conv1\.bn\.", "backbone.bn1."),
    (r"^backbone\.layer2\.net\.", "backbone.layer2."),  # temporal-pool wrapper
    (r"\.conv(\d)\.conv\.(net\.)?", r".conv\1."),  # blockres shift wraps the conv as `.net`
    (r"\.conv(\d)\.bn\.", r".bn\1."),
    (r"\.downsample\.conv\.", ".downsample.0."),
    (r"\.downsample\.bn\.", ".downsample.1."),
    (r"\.non_local_block\.(g|theta|phi)\.(0\.)?conv\.", r".non_local.\1."),
    (r"\.non_local_block\.conv_out\.conv\.", ".non_local.out_conv."),
    (r"\.non_local_block\.conv_out\.bn\.", ".non_local.out_bn."),
]


def _mmaction_resnet_key(key):
    if key.startswith("cls_head."):
        return _mmaction_head_key(key)
    for pattern, repl in _RESNET_RULES:
        key = re.sub(pattern, repl, key)
    return key


def mmcls_mobilenet_v2_to_torchvision(state_dict, prefix=""):
    """mmcls / mmaction MobileNetV2 backbone keys (conv1, layer1..7, conv2) -> torchvision `features.*`.

    Keys outside the backbone (an mmcls classifier head) are dropped.
    """
    starts = [1]
    for count in _MOBILENET_LAYER_BLOCKS[:-1]:
        starts.append(starts[-1] + count)
    out = {}
    for key, value in state_dict.items():
        key = key[len("backbone."):] if key.startswith("backbone.") else key
        m = re.match(r"conv([12])\.(conv|bn)\.(.+)$", key)
        if m:
            index = 0 if m.group(1) == "1" else _LAST_FEATURE
            out[f"{prefix}features.{index}.{0 if m.group(2) == 'conv' else 1}.{m.group(3)}"] = value
            continue
        m = re.match(r"layer(\d)\.(\d+)\.conv\.(\d)\.(?:net\.)?(conv|bn)\.(.+)$", key)
        if not m:
            continue
        layer, block, module, kind, rest = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4), m.group(5)
        expands = layer != 1  # layer1 has expand ratio 1: depthwise + linear only
        last = 2 if expands else 1
        if module < last:
            sub = f"{module}.{0 if kind == 'conv' else 1}"
        else:  # the linear 1x1 conv and its BN sit flat in torchvision's block
            sub = str(last + (0 if kind == "conv" else 1))
        out[f"{prefix}features.{starts[layer - 1] + block}.conv.{sub}.{rest}"] = value
    return out


_ORIGINAL_NON_LOCAL = [  # the original's NL3DWrapper `.nl.` (embedded Gaussian, sub-sampled) -> ours
    (r"\.nl\.g\.0\.", ".non_local.g."),
    (r"\.nl\.theta\.", ".non_local.theta."),
    (r"\.nl\.phi\.0\.", ".non_local.phi."),
    (r"\.nl\.W\.0\.", ".non_local.out_conv."),
    (r"\.nl\.W\.1\.", ".non_local.out_bn."),
]


def original_to_ours(state_dict):
    """mit-han-lab/temporal-shift-module checkpoints (ResNet, with or without non-local blocks, or
    MobileNetV2 base models)."""
    out = {}
    mobilenet = _is_mobilenet(state_dict)
    for key, value in state_dict.items():
        key = re.sub(r"^module\.", "", key)
        if key.startswith("new_fc."):
            out["head.fc." + key[len("new_fc."):]] = value
            continue
        if not key.startswith("base_model."):
            raise UserError(f"unexpected key {key!r} in an original TSM checkpoint")
        key = "backbone." + key[len("base_model."):]
        key = key.replace(".net.", ".")  # the shift wrapper around conv1 / the expansion conv
        for pattern, repl in _ORIGINAL_NON_LOCAL:
            key = re.sub(pattern, repl, key)
        if mobilenet:
            key = _original_mobilenet_key(key)
        out[key] = value
    return _fold_non_local_out_bias(out)


def _fold_non_local_out_bias(state):
    """The original's non-local output conv has a bias, ours (as mmaction2's) none: a constant before a
    BatchNorm moves its running mean, BN(Wy + b) = BN'(Wy) with running_mean' = running_mean - b (exact in
    eval mode; in training the batch mean absorbs it)."""
    for key in [k for k in state if k.endswith(".non_local.out_conv.bias")]:
        bias = state.pop(key)
        mean_key = key.replace("out_conv.bias", "out_bn.running_mean")
        state[mean_key] = state[mean_key] - bias
    return state


# Class orders of the original code's category files where they differ from the datasets' (ours): its
# tools/gen_label_sthv1.py sorts the labels CSV (and is used for Jester too); Kinetics, UCF101 and
# Something-Something V2 keep the published order.
ORIGINAL_SORTED_CLASSES = ("sthv1", "jester")


def original_to_our_class_order(state, labels):
    """Permute an original checkpoint's classifier rows from its sorted class order to `labels`' order."""
    original = sorted(labels)
    rows = [original.index(name) for name in labels]
    for key in ("head.fc.weight", "head.fc.bias"):
        if key in state:
            state[key] = state[key][rows]
    return state


def _original_mobilenet_key(key):
    # Original blocks are flat: [conv, bn, relu6] x 3 (or x 2 without expansion); torchvision nests them.
    m = re.match(r"(backbone\.features\.(\d+)\.conv\.)(\d)\.(.+)$", key)
    if not m or m.group(2) == "0":
        return key
    block, flat, rest = int(m.group(2)), int(m.group(3)), m.group(4)
    expands = block != 1
    nested = ({0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"} if expands
              else {0: "0.0", 1: "0.1", 3: "1", 4: "2"})[flat]
    return f"{m.group(1)}{nested}.{rest}"
