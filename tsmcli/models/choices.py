"""The values the models' options take (the presets' schema checks preset files against them). Light to
import: no PyTorch."""
BACKBONES = ("resnet", "mobilenetv2")
RESNET_DEPTHS = (18, 34, 50, 101, 152)
SHIFT_PLACES = ("blockres", "block")  # shift the residual branch's first conv, or the block's input
SHIFT_MODES = ("bidirectional", "online")  # online: causal, both folds from the previous frame
NON_LOCAL_MODES = ("embedded_gaussian", "gaussian", "dot_product")
AVERAGE_CLIPS = ("prob", "score", None)  # how eval mode averages a video's views; None: per view
