"""torch.hub entry points, one per preset (tsmcli/torch_hub.py):
torch.hub.load("OWNER/tsm", "tsm_r50_1x1x8_50e_k400", pretrained=True)."""
from tsmcli.torch_hub import entry_points as _entry_points

dependencies = ["torch", "torchvision", "av", "typer", "rich", "yaml", "tqdm", "numpy"]

globals().update(_entry_points())
