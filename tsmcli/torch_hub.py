"""torch.hub's entry points (hubconf.py at the repository's root): one per built-in preset.

    torch.hub.load("OWNER/tsm", "tsm_r50_1x1x8_50e_k400", pretrained=True)   # the zoo's checkpoint, eval mode
    torch.hub.load("OWNER/tsm", "tsm_r18_1x1x8_toy")                          # random weights, to train
"""
from .errors import OptionError


def published_checkpoints():
    """{preset name: the file name of its checkpoint in mmaction2's model zoo}, for the presets it publishes."""
    from .presets import find_preset_file, zoo_checkpoints
    from .presets.store import stem

    found = {}
    for file, published in sorted(zoo_checkpoints().items()):
        found.setdefault(stem(find_preset_file(published["config"])), file)
    return found


def entry_point(preset, checkpoint=None):
    def load(pretrained=False, **overrides):
        if not pretrained:
            from .api import build_model

            return build_model(preset, pretrained=False, **overrides)
        if checkpoint is None:
            raise OptionError("pretrained", True, f"mmaction2 publishes no checkpoint of {preset}; load it with "
                                                  "pretrained=False and train it, or load your own checkpoint "
                                                  "with tsmcli.load_model")
        from .api import load_model

        return load_model(checkpoint, **overrides)

    load.__name__ = load.__qualname__ = preset
    load.__doc__ = (f"The {preset} model: pretrained=True loads the model zoo's {checkpoint} (downloaded once, "
                    "in eval mode); pretrained=False builds it with random weights. Keyword overrides as in "
                    "tsmcli.build_model (model__num_classes=10)." if checkpoint else
                    f"The {preset} model with random weights (the zoo publishes no checkpoint of it). Keyword "
                    "overrides as in tsmcli.build_model.")
    return load


def entry_points():
    from .presets import preset_names

    published = published_checkpoints()
    return {name: entry_point(name, published.get(name)) for name in preset_names()}
