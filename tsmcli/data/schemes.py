"""The zoo's evaluation schemes as test pipelines: what `tsm test --scheme` and every inference command
(predict, stream, export, explain, extract) read a video through.

Schemes: `preset` (the preset's own test pipeline), `efficient` (its validation pipeline with 1 clip:
centre crop 224 for the zoo's presets), `accurate` (2 clips by twice sampling x ThreeCrop 256), `dense`
(the dense presets' 10 clips and their crops).
"""
import copy

from ..errors import OptionError

SCHEMES = ("preset", "efficient", "accurate", "dense")
_CROPS = ("CenterCrop", "ThreeCrop", "TenCrop")


def scheme_pipeline(data_cfg, scheme):
    """The test steps of a scheme, from a preset's data section.

    efficient: the preset's validation pipeline with one clip (the zoo's default: 1 clip, centre crop);
    accurate: its test sampling with twice_sample (2 clips) and ThreeCrop 256; dense: the dense presets'
    own test pipeline (10 clips); preset: the test pipeline as it is.
    """
    if scheme == "preset":
        return copy.deepcopy(data_cfg["test"]["pipeline"])
    if scheme == "efficient":
        steps = copy.deepcopy(data_cfg["val"]["pipeline"])
        if steps[0]["type"] == "SampleFrames":
            steps[0]["twice_sample"] = False
        else:  # dense: one window in the middle of the video
            steps[0].update(num_sample_positions=1, centred=True)
        return steps
    steps = copy.deepcopy(data_cfg["test"]["pipeline"])
    sampler = steps[0]
    if scheme == "dense":
        if sampler["type"] != "DenseSampleFrames":
            raise OptionError("scheme", "dense", "needs a dense preset (DenseSampleFrames)")
        return steps
    if sampler["type"] == "SampleFrames":  # accurate
        sampler["twice_sample"] = True
    else:
        sampler["num_sample_positions"] = 2
    kept = [s for s in steps if s["type"] not in _CROPS]
    normalize = [i for i, s in enumerate(kept) if s["type"] == "Normalize"]
    position = normalize[0] if normalize else len(kept)
    return kept[:position] + [{"type": "ThreeCrop", "crop_size": 256}] + kept[position:]
