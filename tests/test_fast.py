"""The inference fast path (BatchNorm folded, channels-last): the same outputs as the model as loaded, on
every architecture and through the commands that use it by default."""
import json
import subprocess
import sys

import pytest
import torch
from conftest import SHARED
from random_models import calibrated

import tsmcli
from tsmcli.models.fast import fold_batchnorm, prepare_for_inference


@pytest.mark.parametrize("preset, batchnorms", [
    ("tsm_r50_1x1x8_50e_k400", 53), ("tsm_mobilenetv2_dense_1x1x8_100e_k400", 52),
    ("tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400", 53), ("tsm_temporal_pool_r50_1x1x8_50e_k400", 53),
    ("tsm_r18_1x1x8_toy", 20)])
def test_fast_path_gives_the_same_outputs(preset, batchnorms):
    model = calibrated(preset, model__num_classes=10)
    clip = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        before = model.logits(clip)
    prepare_for_inference(model)
    with torch.no_grad():
        after = model.logits(clip)
    assert model.fast_path == f"{batchnorms} BatchNorms folded, channels-last"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert float((after - before).abs().max()) <= 1e-4 * max(1.0, float(before.abs().max()))
    assert fold_batchnorm(model) == 0  # nothing left to fold


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tsm_r50_1x1x8_50e_k400", "tsm_mobilenetv2_dense_1x1x8_100e_k400",
                                    "tsm_nl_dot_product_r50_1x1x8_50e_k400", "tsm_temporal_pool_r50_1x1x8_50e_k400"])
def test_bf16_backbone_is_as_close_to_fp32_as_autocast(preset):
    """Random deep models amplify rounding (R50: 0.17 in probability under either), so the reference for
    the converted backbone is autocast on the same model; trained models are measured in docs/benchmarks.md."""
    model = calibrated(preset, model__num_classes=10)
    clip = torch.randn(4, 8, 3, 64, 64)
    prepare_for_inference(model)
    with torch.no_grad():
        fp32 = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = model(clip).float()
        prepare_for_inference(model, dtype=torch.bfloat16)
        converted = model(clip)
    assert model.fast_path.endswith("bfloat16 backbone") and converted.dtype == torch.float32
    assert {p.dtype for p in model.backbone.parameters()} == {torch.bfloat16}
    assert model.head.fc.weight.dtype == torch.float32
    error, reference = (float((x - fp32).abs().max()) for x in (converted, autocast))
    assert 0 < error <= 1.25 * reference + 2e-3


def test_bf16_is_a_fast_path_option_only(tmp_path):
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    with pytest.raises(tsmcli.UserError, match="fast=True"):
        tsmcli.load_model(tmp_path / "m.pth", amp="bf16")
    assert tsmcli.load_model(tmp_path / "m.pth", fast=True, amp="bf16").compute_dtype == torch.bfloat16


@pytest.mark.slow
def test_predict_fast_and_plain_agree_on_real_video(tmp_path):
    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=10)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset, labels=[str(i) for i in range(10)])
    scores = {}
    for flag in ("--fast", "--no-fast"):
        run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", SHARED / "fixtures/videos/demo.mp4",
                              "--ckpt", tmp_path / "m.pth", "--json", flag], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        scores[flag] = torch.tensor(json.loads(run.stdout)["scores"])
    assert float((scores["--fast"] - scores["--no-fast"]).abs().max()) <= 1e-5
    bf16 = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", SHARED / "fixtures/videos/demo.mp4",
                           "--ckpt", tmp_path / "m.pth", "--json", "--amp", "bf16"], capture_output=True, text=True)
    assert bf16.returncode == 0, bf16.stderr
    bf16_scores = torch.tensor(json.loads(bf16.stdout)["scores"])
    assert 0 < float((bf16_scores - scores["--fast"]).abs().max()) <= 0.05  # bf16 did run, and is close
    loaded = tsmcli.load_model(tmp_path / "m.pth", fast=True)
    assert loaded.fast_path and loaded.channels_last


@pytest.mark.slow
def test_benchmark_model_on_onnxruntime():
    pytest.importorskip("onnxruntime")
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "benchmark", "model", "-p", "tsm_r18_1x1x8_toy",
                          "--backend", "onnxruntime", "--iters", "2", "--batch", "1", "--batch", "2", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert [r["batch"] for r in results] == [1, 2] and results[0]["input"] == [1, 8, 3, 56, 56]
    assert all(r["videos_per_s"] > 0 and r["backend"] == "onnxruntime" for r in results)
