"""Same checkpoint, same input -> same test-mode output as mmaction2 0.24.1 (fixtures from
tools/mmaction_reference/generate.py; weights are regenerated here from the key names)."""
import pytest
import torch
from reference_weights import fill_state_dict, input_clip

import tsmcli
from tsmcli.checkpoint import read_checkpoint

CASES = ["r50_two_views", "r50_16seg", "r101", "mobilenetv2", "nl_embedded_gaussian", "nl_gaussian",
         "nl_dot_product", "temporal_pool"]


def _preset_for(case):
    return case["config"], {}  # every config is a preset (alias), the temporal pool one included


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_same_output_as_mmaction(name, mmaction_outputs, tmp_path):
    case = mmaction_outputs[name]
    path = tmp_path / "mm.pth"
    torch.save({"meta": {"epoch": 50}, "state_dict": fill_state_dict(case["keys"], case["norm_scale"])}, path)
    preset, overrides = _preset_for(case)
    model = tsmcli.load_model(path, preset=preset, **overrides)
    assert model.checkpoint_format == "mmaction"
    x = input_clip(case["input_shape"])
    with torch.no_grad():
        logits = model.logits(x).flatten(0, 1)
        out = model(x)
    expected_logits = torch.tensor(case["cls_score"])
    scale = expected_logits.abs().max().item()
    assert scale > 0.1  # the fixture is informative, not all-zero
    tolerance = 1e-4 * max(1.0, scale)
    assert torch.allclose(logits, expected_logits, atol=tolerance, rtol=0)
    assert torch.allclose(out, torch.tensor(case["output"]), atol=1e-4, rtol=0)
    with torch.no_grad():  # the fixture can tell a wrong shift from a right one: time order matters
        reversed_time = model.logits(x.flip(1)).flatten(0, 1)
    assert (reversed_time - logits).abs().max() > 20 * tolerance


@pytest.mark.slow
def test_every_key_is_used(mmaction_outputs, tmp_path):
    """Conversion maps each mmaction2 key to exactly one of ours, for every architecture."""
    for name in CASES:
        case = mmaction_outputs[name]
        path = tmp_path / f"{name}.pth"
        torch.save({"state_dict": fill_state_dict(case["keys"])}, path)
        converted = read_checkpoint(path)["state_dict"]
        assert len(converted) == len(case["keys"])
        preset, overrides = _preset_for(case)
        model = tsmcli.build_model(preset, pretrained=False, **overrides)
        assert set(converted) == set(model.state_dict())
