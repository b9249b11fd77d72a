"""Our test pipeline + model against mmaction2 0.24.1's own inference on the shared media
(tests/data/mmaction/pipeline.json): same frames, same pixels up to resize/JPEG rounding, same top-5."""
import json

import pytest
import torch
from conftest import SHARED, TESTS
from reference_weights import fill_state_dict

import tsmcli
from tsmcli.data import Pipeline, Record
from tsmcli.video import available_decoders

FIXTURE = json.loads((TESTS / "data/mmaction/pipeline.json").read_text())
STD = 57.12  # the smallest of the Normalize stds: one uint8 step is at most 1/STD after normalisation


@pytest.fixture(scope="module")
def checkpoint(module_dir):
    path = module_dir("ckpt") / "mm_r50.pth"
    torch.save({"state_dict": fill_state_dict(FIXTURE["keys"])}, path)
    return path


def run_case(name, checkpoint, decoder="auto"):
    case = FIXTURE[name]
    preset = tsmcli.load_preset(case["config"])
    data = preset["data"]
    steps = [dict(s) for s in data["test"]["pipeline"]]
    if name == "video_resized":
        next(s for s in steps if s["type"] == "Resize")["scale"] = [-1, 320]
    pipeline = Pipeline(steps, data["format"], data["filename_tmpl"], data["start_index"], decoder)
    record = (Record(str(SHARED / "fixtures/videos/demo.mp4"), [0]) if data["format"] == "videos"
              else Record(str(SHARED / "fixtures/frames"), [0], total_frames=10))
    clip = pipeline(record)
    model = tsmcli.load_model(checkpoint, preset=case["config"])
    with torch.no_grad():
        probs = model(clip.imgs[None])[0]
    return case, clip, probs


DECODERS = [pytest.param(d, marks=pytest.mark.skipif(d not in available_decoders(), reason=f"{d} not installed"))
            for d in ("decord", "pyav", "torchcodec")]


@pytest.mark.slow
@pytest.mark.parametrize("decoder", DECODERS)  # mmaction2 decodes with decord; pyav is our default
@pytest.mark.parametrize("name, max_step, max_rel_prob", [
    ("video", 0, 1e-5),            # the same pixels as decord's and 340x256 needs no resize: exact
    ("video_resized", 1, 1e-3),    # bilinear resize: cv2's fixed-point vs torch's float, +-1 level
    ("rawframes", 1, 1e-3),        # 320x240 frames resized to short side 256: the same rounding
])
def test_same_clip_and_scores_as_mmaction(name, max_step, max_rel_prob, decoder, checkpoint):
    if name == "rawframes" and decoder != "decord":
        pytest.skip("frame folders are read by libjpeg-turbo whatever the video decoder")
    case, clip, probs = run_case(name, checkpoint, decoder)
    assert clip.meta["frame_inds"] == case["frame_inds"]
    assert list(clip.imgs.shape) == case["shape"]
    pixel_diff = (clip.imgs[:, :, ::16, ::16] - torch.tensor(case["pixels"])).abs().max().item()
    assert pixel_diff <= max_step / STD + 1e-5
    expected = torch.tensor(case["probs"])
    assert ((probs - expected).abs() / expected).max().item() < max_rel_prob
    assert probs.argsort(descending=True)[:5].tolist() == case["top5"]
