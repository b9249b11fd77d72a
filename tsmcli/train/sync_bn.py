"""Synchronised BatchNorm for `--sync-bn`: batch statistics over the whole global batch.

On GPUs torch's own SyncBatchNorm is used. It refuses CPU tensors, so CPU processes (Gloo) get
ProcessBatchNorm below: the per-channel count, sum and then sum of squared deviations are summed over
the processes by an all-reduce whose backward is again an all-reduce, which makes the statistics and
their gradients those of one process holding the whole batch.
"""
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _SumOverProcesses(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class ProcessBatchNorm(_BatchNorm):
    """BatchNorm of any dimensionality whose training statistics span all processes of the group."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        xf = x.float()  # statistics in float32 also under bf16 autocast
        # Two passes (mean, then squared deviations) as single-process BN does: E[x^2] - E[x]^2 loses
        # precision on the near-constant channels that video frames produce.
        sums = _SumOverProcesses.apply(torch.cat([xf.new_tensor([x.numel() / x.shape[1]]), xf.sum(dims)]))
        count = sums[0]
        mean = (sums[1:] / count).view(shape)
        var = _SumOverProcesses.apply(((xf - mean) ** 2).sum(dims)) / count
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None
            assert self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / self.num_batches_tracked.item() if self.momentum is None else self.momentum
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.flatten().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = (xf - mean) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of `module` synchronised across processes (parameters and buffers kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, _BatchNorm) and not isinstance(module, ProcessBatchNorm):
        synced = ProcessBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                  module.track_running_stats)
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, device))
    return module
