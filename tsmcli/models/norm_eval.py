from torch import nn


class NormEvalMixin(nn.Module):
    """What a backbone keeps from training, as mmaction2's backbones do:

    - `norm_eval`: BatchNorm layers stay in eval mode (running statistics frozen) while the rest trains;
    - `frozen_stages` k >= 0: the stem and the first k stages neither learn (requires_grad off) nor update
      their BatchNorm statistics (eval mode); -1 freezes nothing. Each backbone lists its stem and stages
      in `stages()`.
    """

    norm_eval = False
    frozen_stages = -1

    def stages(self):
        raise NotImplementedError

    def freeze_stages(self, frozen_stages):
        stages = self.stages()
        if not -1 <= frozen_stages < len(stages):
            raise ValueError(f"frozen_stages must be within [-1, {len(stages) - 1}] for this backbone "
                             f"(-1: none; 0: the stem; k: the stem and the first k stages), got {frozen_stages}")
        self.frozen_stages = frozen_stages
        for module in self._frozen():
            for parameter in module.parameters():
                parameter.requires_grad = False

    def _frozen(self):
        return self.stages()[:self.frozen_stages + 1]

    def train(self, mode=True):
        super().train(mode)
        if mode:
            for module in self._frozen():
                module.eval()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
