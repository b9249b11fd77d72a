"""MobileNetV2-TSM: MobileNetV2 (torchvision's layout, models/mobilenetv2.py) with a temporal shift before
the expansion conv of every inverted-residual block that has a residual connection."""
from torch import nn

from .mobilenetv2 import ConvBNReLU6, InvertedResidual, MobileNetV2
from .norm_eval import NormEvalMixin
from .pretrained import check_pretrained
from .shift import ShiftedConv2d


class MobileNetV2TSM(NormEvalMixin, nn.Module):
    # blocks per stage of features[1:18], mmaction2's layer1 ... layer7
    STAGE_BLOCKS = (1, 2, 3, 4, 3, 3, 1)

    def __init__(self, num_segments=8, shift=True, shift_div=8, width_mult=1.0, norm_eval=False,
                 pretrained_state_dict=None, online=False, frozen_stages=-1):
        super().__init__()
        base = MobileNetV2(width_mult=width_mult)
        if pretrained_state_dict is not None:
            check_pretrained(base, {k: v for k, v in pretrained_state_dict.items()
                                    if not k.startswith("classifier.")}, "classifier.")
        self.features = base.features
        self.out_channels = base.last_channel
        self.norm_eval = norm_eval
        if shift:
            for block in self.features:
                if isinstance(block, InvertedResidual) and block.use_res_connect and len(block.conv) == 4:
                    expand = block.conv[0]
                    assert isinstance(expand, ConvBNReLU6) and isinstance(expand[0], nn.Conv2d)
                    expand[0] = ShiftedConv2d(expand[0], num_segments, shift_div, online)
        self.freeze_stages(frozen_stages)

    def stages(self):
        """The stem (features[0]), then the seven stages of inverted residual blocks (frozen_stages counts
        them so, as mmaction2's MobileNetV2 does; the last 1x1 convolution is never frozen)."""
        stages, start = [self.features[0]], 1
        for blocks in self.STAGE_BLOCKS:
            stages.append(self.features[start:start + blocks])
            start += blocks
        return stages

    def forward(self, x):
        return self.features(x)
