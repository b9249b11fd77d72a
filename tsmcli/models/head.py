"""TSM head: spatial average pool, dropout, fc, then the mean over a clip's segments."""
from torch import nn


class TSMHead(nn.Module):
    def __init__(self, in_channels, num_classes, num_segments, dropout=0.5, init_std=0.001):
        super().__init__()
        self.num_segments = num_segments
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, num_classes)
        nn.init.normal_(self.fc.weight, std=init_std)
        nn.init.zeros_(self.fc.bias)

    def forward(self, features):
        """(N*T, C, h, w) -> (N, num_classes)."""
        x = features.mean(dim=(2, 3))
        x = self.fc(self.dropout(x))
        return x.view(-1, self.num_segments, x.shape[-1]).mean(dim=1)
