"""MobileNetV2 (Sandler et al., 2018) in torchvision's layout: the same module names (features.N, a
block's conv[i], classifier.1), so torchvision's ImageNet weights and mmcls's converted ones load
unchanged, and the same order of construction and initialisation, so a seed gives the same random
weights as torchvision.models.mobilenet_v2. Defined here for the reason models/resnet.py gives.
"""
from torch import nn

# (expansion, output channels, blocks, stride of the first block) per stage
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def round_channels(channels, divisor=8):
    """The nearest multiple of `divisor`, never below it nor more than 10 % under `channels`."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


class ConvBNReLU6(nn.Sequential):
    """conv (no bias), BatchNorm, ReLU6: torchvision's Conv2dNormActivation as MobileNetV2 uses it."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=(kernel_size - 1) // 2,
                                   groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6(inplace=True))
        self.out_channels = out_channels


class InvertedResidual(nn.Module):
    """1x1 expansion (unless expand_ratio is 1), 3x3 depthwise, linear 1x1 projection; a residual
    connection where the shape allows."""

    def __init__(self, in_channels, out_channels, stride, expand_ratio):
        super().__init__()
        self.stride = stride
        hidden = int(round(in_channels * expand_ratio))
        self.use_res_connect = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = [ConvBNReLU6(in_channels, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_channels

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        in_channels = round_channels(32 * width_mult)
        self.last_channel = round_channels(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [ConvBNReLU6(3, in_channels, stride=2)]
        for expand_ratio, channels, blocks, stride in STAGES:
            out_channels = round_channels(channels * width_mult)
            for i in range(blocks):
                features.append(InvertedResidual(in_channels, out_channels, stride if i == 0 else 1, expand_ratio))
                in_channels = out_channels
        features.append(ConvBNReLU6(in_channels, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))
