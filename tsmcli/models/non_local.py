"""Non-local block (Wang et al., CVPR 2018) as the TSM non-local presets use it.

Applied on a clip as a whole: (N*T, C, H, W) is viewed as (N, C, T, H, W), attention runs over all
T*H*W positions. Modes: embedded_gaussian, gaussian, dot_product. sub_sample max-pools the key/value
side spatially by 2.
"""
import torch
from torch import nn

from .choices import NON_LOCAL_MODES


class NonLocal3d(nn.Module):
    def __init__(self, in_channels, mode="embedded_gaussian", sub_sample=True, use_scale=False,
                 reduction=2):
        super().__init__()
        if mode not in NON_LOCAL_MODES:
            raise ValueError(f"non-local mode must be one of {NON_LOCAL_MODES}, got {mode!r}")
        self.mode = mode
        self.use_scale = use_scale
        self.inter_channels = max(in_channels // reduction, 1)
        self.g = nn.Conv3d(in_channels, self.inter_channels, 1)
        if mode != "gaussian":
            self.theta = nn.Conv3d(in_channels, self.inter_channels, 1)
            self.phi = nn.Conv3d(in_channels, self.inter_channels, 1)
        self.pool = nn.MaxPool3d(kernel_size=(1, 2, 2)) if sub_sample else nn.Identity()
        self.out_conv = nn.Conv3d(self.inter_channels, in_channels, 1, bias=False)
        self.out_bn = nn.BatchNorm3d(in_channels)
        for conv in (self.g, getattr(self, "theta", None), getattr(self, "phi", None)):
            if conv is not None:
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # these convolutions have a bias
        nn.init.zeros_(self.out_bn.weight)  # the block starts as the identity

    def forward(self, x):
        n, c = x.shape[:2]
        value = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (n, positions', inter)
        if self.mode == "gaussian":
            query = x.flatten(2).transpose(1, 2)
            key = self.pool(x).flatten(2)
        else:
            query = self.theta(x).flatten(2).transpose(1, 2)
            key = self.pool(self.phi(x)).flatten(2)
        affinity = torch.matmul(query, key)  # (n, positions, positions')
        if self.mode == "dot_product":
            affinity = affinity / affinity.shape[-1]
        else:
            if self.use_scale and self.mode == "embedded_gaussian":
                affinity = affinity / query.shape[-1] ** 0.5
            affinity = affinity.softmax(dim=-1)
        y = torch.matmul(affinity, value).transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.out_bn(self.out_conv(y))


class BlockWithNonLocal(nn.Module):
    """A residual block followed by a non-local block over the clip's frames."""

    def __init__(self, block: nn.Module, channels: int, num_segments: int, **non_local_args):
        super().__init__()
        self.block = block
        self.non_local = NonLocal3d(channels, **non_local_args)
        self.num_segments = num_segments

    def forward(self, x):
        x = self.block(x)
        nt, c, h, w = x.shape
        x = x.view(-1, self.num_segments, c, h, w).transpose(1, 2)
        x = self.non_local(x)
        return x.transpose(1, 2).reshape(-1, c, h, w)
