"""ResNet (He et al., 2016) in torchvision's layout: the same module names, so torchvision's ImageNet
weights, mmaction2's converted checkpoints and ours load unchanged, and the same order of construction
and initialisation, so a seed gives the same random weights as torchvision.models.resnetN.

Defined here rather than imported: importing torchvision loads torch._dynamo through torchvision.ops,
about 2.5 s of every command's start-up that inference never uses (docs/benchmarks.md, "Start-up").
tests/test_models.py checks the weights and outputs against torchvision's own networks.
"""
from torch import nn

BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34)."""
    expansion = 1

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 down, 3x3 (strided, as torchvision's "ResNet v1.5"), 1x1 up (ResNet-50/101/152)."""
    expansion = 4

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, depth=50, num_classes=1000):
        super().__init__()
        block = BasicBlock if depth < 50 else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        blocks = BLOCKS_PER_STAGE[depth]
        self.layer1, channels = _stage(block, 64, 64, blocks[0], stride=1)
        self.layer2, channels = _stage(block, channels, 128, blocks[1], stride=2)
        self.layer3, channels = _stage(block, channels, 256, blocks[2], stride=2)
        self.layer4, channels = _stage(block, channels, 512, blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _stage(block, in_channels, channels, blocks, stride):
    """-> (the stage's blocks, its output channels)."""
    out_channels = channels * block.expansion
    downsample = None  # made before the stage's blocks: the order random initialisation draws in
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
    first = block(in_channels, channels, stride, downsample)
    return nn.Sequential(first, *(block(out_channels, channels) for _ in range(1, blocks))), out_channels
