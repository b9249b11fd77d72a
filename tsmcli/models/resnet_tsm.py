"""ResNet-TSM: ResNet (torchvision's layout, models/resnet.py) with temporal shift, optional temporal pool and non-local blocks."""
import torch
from torch import nn

from .choices import RESNET_DEPTHS, SHIFT_PLACES
from .non_local import BlockWithNonLocal
from .norm_eval import NormEvalMixin
from .pretrained import check_pretrained
from .resnet import ResNet
from .shift import ShiftedBlock, ShiftedConv2d, temporal_max_pool
from .shift_fusion import has_hooks, run_blocks


class ResNetTSM(NormEvalMixin, nn.Module):
    """Returns the last feature map, (N*T', C, h, w) with T' = T // 2 when temporal_pool is set.

    non_local: four sequences of 0/1, one per stage, marking the blocks followed by a non-local block.
    """

    def __init__(self, depth=50, num_segments=8, shift=True, shift_div=8, shift_place="blockres",
                 temporal_pool=False, non_local=None, non_local_cfg=None, norm_eval=False,
                 pretrained_state_dict=None, online=False, frozen_stages=-1):
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"ResNet depth must be one of {RESNET_DEPTHS}, got {depth}")
        base = ResNet(depth)
        if pretrained_state_dict is not None:
            check_pretrained(base, {k: v for k, v in pretrained_state_dict.items()
                                    if not k.startswith("fc.")}, "fc.")
        self.conv1, self.bn1, self.relu, self.maxpool = base.conv1, base.bn1, base.relu, base.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = base.layer1, base.layer2, base.layer3, base.layer4
        self.out_channels = base.fc.in_features
        self.num_segments = num_segments
        self.temporal_pool = temporal_pool
        self.norm_eval = norm_eval
        self.fuse_shift = not online  # the fused path (shift_fusion.py) shifts both ways
        stage_segments = [num_segments] + [num_segments // 2 if temporal_pool else num_segments] * 3
        if stage_segments[-1] <= 0:
            raise ValueError("temporal_pool needs at least 2 segments")
        stages = [self.layer1, self.layer2, self.layer3, self.layer4]
        if shift:
            # Deep nets (ResNet-101/152: >= 23 blocks in stage 3) shift every other block, as TSM does.
            every = 2 if len(self.layer3) >= 23 else 1
            for stage, segments in zip(stages, stage_segments):
                for i in range(0, len(stage), every):
                    if shift_place == "blockres":
                        stage[i].conv1 = ShiftedConv2d(stage[i].conv1, segments, shift_div, online)
                    elif shift_place == "block":
                        stage[i] = ShiftedBlock(stage[i], segments, shift_div, online)
                    else:
                        raise ValueError(f"shift_place must be one of {SHIFT_PLACES}, got {shift_place!r}")
        if non_local:
            for stage, marks, segments in zip(stages, non_local, stage_segments):
                for i, mark in enumerate(marks):
                    if mark:
                        channels = _block_out_channels(stage[i])
                        stage[i] = BlockWithNonLocal(stage[i], channels, segments, **(non_local_cfg or {}))
        self.freeze_stages(frozen_stages)

    def stages(self):
        """The stem, then the four stages (frozen_stages counts them so, as mmaction2's ResNet does)."""
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        stages = [self.layer1, self.layer2, self.layer3, self.layer4]
        # Without autograd each shift is written together with the previous block's output
        # (shift_fusion.py), across stages too, but not across the temporal pool after layer1.
        fused = (self.fuse_shift and not torch.is_grad_enabled() and not torch.jit.is_tracing()
                 and not any(map(has_hooks, stages)))
        runs = [stages[:1], stages[1:]] if self.temporal_pool else [stages]
        for k, run in enumerate(runs):
            if k:
                x = temporal_max_pool(x, self.num_segments)
            if fused:
                x = run_blocks([block for stage in run for block in stage], x)
            else:
                for stage in run:
                    x = stage(x)
        return x


def _block_out_channels(block):
    block = getattr(block, "net", block)
    last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
    return last_bn.num_features

