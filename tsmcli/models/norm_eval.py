from torch import nn


class NormEvalMixin(nn.Module):
    """`norm_eval`: BatchNorm layers stay in eval mode (running statistics frozen) while the rest trains."""

    norm_eval = False

    def train(self, mode=True):
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
