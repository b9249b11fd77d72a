"""ONNX export: every architecture the presets use, verified by onnxruntime; the streaming step over 32
steps with its state fed back; a failed verification keeps nothing."""
import subprocess
import sys

import pytest
from conftest import SHARED
from random_models import calibrated
from reference_weights import non_local_cases, non_local_checkpoint

import tsmcli
from tsmcli.errors import JobFailed

pytest.importorskip("onnxruntime")
DEMO = SHARED / "fixtures/videos/demo.mp4"
from tsmcli.export.whole import export_model  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tsm_r50_1x1x8_50e_k400", "tsm_mobilenetv2_dense_1x1x8_100e_k400",
                                    "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400", "tsm_nl_gaussian_r50_1x1x8_50e_k400",
                                    "tsm_nl_dot_product_r50_1x1x8_50e_k400", "tsm_temporal_pool_r50_1x1x8_50e_k400",
                                    "tsm_r18_1x1x8_toy"])
def test_every_architecture_exports_and_matches_pytorch(preset, tmp_path):
    model = calibrated(preset, model__num_classes=10)
    report = export_model(model, tmp_path / "m.onnx", 64, 64)
    assert (tmp_path / "m.onnx").is_file() and report["max_abs_diff"] <= 1e-4
    assert report["output_moves_with_input"] > 1e-3  # so a graph frozen to constants would have failed
    assert all(check["top5_agree"] == 1.0 for check in report["checks"].values())
    assert list(tmp_path.iterdir()) == [tmp_path / "m.onnx"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tsm_r50_1x1x8_50e_k400", "tsm_mobilenetv2_dense_1x1x8_100e_k400",
                                    "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400", "tsm_temporal_pool_r50_1x1x8_50e_k400"])
def test_fp16_graphs_hold_fp16_weights_and_match_the_fp32_model(preset, tmp_path):
    import onnx

    model = calibrated(preset, model__num_classes=10)
    report = export_model(model, tmp_path / "fp16.onnx", 64, 64, precision="fp16")
    assert 0 < report["max_abs_diff"] <= report["tolerance"] == 5e-2
    assert report["output_moves_with_input"] > report["tolerance"]  # so a graph frozen to constants would fail
    graph = onnx.load(tmp_path / "fp16.onnx").graph
    sizes = {}
    for tensor in graph.initializer:
        kind = onnx.TensorProto.DataType.Name(tensor.data_type)
        sizes[kind] = sizes.get(kind, 0) + len(tensor.raw_data)
    assert sizes["FLOAT16"] > 20 * sizes.get("FLOAT", 0)  # fp32: the classifier (and folded shapes) only
    assert [i.type.tensor_type.elem_type for i in list(graph.input) + list(graph.output)] == [onnx.TensorProto.FLOAT] * 4
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert (tmp_path / "fp16.onnx").stat().st_size < 0.6 * fp32_bytes


@pytest.mark.slow
def test_a_graph_that_differs_from_pytorch_is_not_kept(tmp_path, monkeypatch):
    import tsmcli.export.whole as whole

    class Off(whole.OnnxRuntimeEngine):  # onnxruntime giving outputs 1e-3 away from PyTorch's
        def run(self, feeds):
            return [out + 1e-3 for out in super().run(feeds)]

    monkeypatch.setattr(whole, "OnnxRuntimeEngine", Off)
    with pytest.raises(JobFailed, match="differs from PyTorch by 0.001.*nothing was written"):
        export_model(calibrated("tsm_r18_1x1x8_toy", model__num_classes=10), tmp_path / "m.onnx", 64, 64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_export_command_whole_and_streaming_step(tmp_path):
    model = calibrated("tsm_r18_1x1x8_toy", model__shift_mode="online", model__num_classes=10)
    tsmcli.save_checkpoint(tmp_path / "online.pth", model, model.preset, labels=["a", "b", "c", "d"] + list("efghij"))
    video = SHARED / "fixtures/videos/test.mp4"
    whole = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "online.pth", "--out",
                            tmp_path / "m.onnx", "--video", video], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    assert "real      max |onnxruntime fp32 - PyTorch fp32|" in whole.stdout
    step = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "online.pth", "--stream",
                           "--out", tmp_path / "step.onnx", "--video", video, "--json"], capture_output=True, text=True)
    assert step.returncode == 0, step.stderr
    import json

    report = json.loads(step.stdout)
    assert report["steps"] >= 32 and report["max_scaled_diff"] <= 1e-4 and report["top1_agree"] == 1.0
    import onnx

    meta = json.loads({p.key: p.value for p in onnx.load(tmp_path / "step.onnx").metadata_props}["tsm"])
    assert meta["labels"][:2] == ["a", "b"] and len(meta["state_shapes"]) == report["states"] == 8
    refused = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "online.pth", "--out",
                              tmp_path / "m.txt"], capture_output=True, text=True)
    assert refused.returncode == 2 and "name an .onnx or an OpenVINO .xml file" in refused.stderr


@pytest.mark.slow
def test_export_command_fp16_streaming_step_and_bf16_refusal(tmp_path):
    import json

    import onnx

    model = calibrated("tsm_r18_1x1x8_toy", model__shift_mode="online", model__num_classes=10)
    tsmcli.save_checkpoint(tmp_path / "online.pth", model, model.preset)
    step = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "online.pth", "--stream",
                           "--precision", "fp16", "--out", tmp_path / "step.onnx", "--json"],
                          capture_output=True, text=True)
    assert step.returncode == 0, step.stderr
    report = json.loads(step.stdout)
    assert report["precision"] == "fp16" and 0 < report["max_scaled_diff"] <= 5e-2 and report["top1_agree"] == 1.0
    graph = onnx.load(tmp_path / "step.onnx").graph
    states = [i.type.tensor_type.elem_type for i in graph.input if i.name.startswith("state_in")]
    assert states == [onnx.TensorProto.FLOAT16] * report["states"]
    assert json.loads({p.key: p.value for p in onnx.load(tmp_path / "step.onnx").metadata_props}["tsm"])[
        "state_dtype"] == "float16"
    refused = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "online.pth", "--precision",
                              "bf16", "--out", tmp_path / "m.onnx"], capture_output=True, text=True)
    assert refused.returncode == 2 and "no bfloat16 type" in refused.stderr and not (tmp_path / "m.onnx").exists()


def test_tracing_works_with_autograd_on():
    """torch.jit.trace used to stop in the shift's autograd function unless run under no_grad."""
    import warnings

    import torch

    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=10)
    clip = torch.randn(1, 8, 3, 64, 64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, clip)
    other = torch.randn(2, 8, 3, 64, 64)
    assert torch.allclose(traced(other), model(other), atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["tsm_r50_1x1x8_50e_k400", "tsm_mobilenetv2_dense_1x1x8_100e_k400",
                                    "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400", "tsm_temporal_pool_r50_1x1x8_50e_k400"])
def test_openvino_models_match_pytorch_and_keep_their_metadata(preset, tmp_path):
    pytest.importorskip("openvino")
    from tsmcli.runtime.exported import open_exported

    model = calibrated(preset, model__num_classes=10)
    report = export_model(model, tmp_path / "m.xml", 64, 64, format="openvino", other_sizes=[(80, 80)])
    assert report["openvino_fp32"]["max_abs_diff"] <= 1e-4 and report["output_moves_with_input"] > 1e-3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]
    exported = open_exported(tmp_path / "m.xml")
    assert exported.preset == model.preset and exported.num_segments == model.num_segments
    import torch

    clip = torch.randn(2, 2 * model.num_segments, 3, 80, 80)  # two views, the other verified size
    with torch.no_grad():
        assert torch.allclose(exported(clip), model(clip), atol=1e-4)


@pytest.mark.slow
def test_a_reduced_precision_export_below_the_agreement_threshold_is_not_kept(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    import tsmcli.export.whole as whole
    from tsmcli.export.clips import ClipSet

    def half_agree(model, run, clips):
        return {"clips": len(clips), "source": clips.source, "top1_agree": 0.5, "mean_prob_diff": 0.3,
                "max_prob_diff": 0.9, "unreadable": []}

    monkeypatch.setattr(whole, "agreement", half_agree)
    import torch

    clips = ClipSet([torch.randn(1, 8, 3, 64, 64)] * 4, [None] * 4, ["a"] * 4, "clips", [])
    with pytest.raises(JobFailed, match="agrees with the fp32 model on 50.0% of 4 held-out clips.*nothing was written"):
        export_model(calibrated("tsm_r18_1x1x8_toy", model__num_classes=10), tmp_path / "m.xml", 64, 64,
                     format="openvino", precision="bf16", held_out=clips)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_backend_exports_a_checkpoint_once_and_predicts_as_pytorch(tmp_path):
    pytest.importorskip("openvino")
    import json
    import os

    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4, model__shift_mode="online")
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset, labels=list("abcd"))
    env = {**os.environ, "TSM_EXPORT_CACHE": str(tmp_path / "cache")}
    video = SHARED / "fixtures/videos/test.mp4"

    def predict(*args):
        done = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", video, "--ckpt", tmp_path / "m.pth",
                               "--json", *args], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout), done.stderr

    reference, _ = predict()
    first, said = predict("--backend", "openvino")
    assert "exporting" in said and len(list((tmp_path / "cache").glob("*.xml"))) == 1
    again, said = predict("--backend", "openvino")
    assert "exporting" not in said
    onnx_run, _ = predict("--backend", "onnxruntime")
    for got in (first, again, onnx_run):
        assert [t["label"] for t in got["top"]] == [t["label"] for t in reference["top"]]
        assert max(abs(a - b) for a, b in zip(got["scores"], reference["scores"])) <= 1e-4
    timed = subprocess.run([sys.executable, "-m", "tsmcli.cli", "benchmark", "model", "--model",
                            next((tmp_path / "cache").glob("*.xml")), "--iters", "2", "--json"],
                           capture_output=True, text=True, env=env)
    assert timed.returncode == 0, timed.stderr
    assert json.loads(timed.stdout)[0]["backend"] == "openvino" and json.loads(timed.stdout)[0]["videos_per_s"] > 0
    streams = [subprocess.run([sys.executable, "-m", "tsmcli.cli", "stream", video, "--ckpt", tmp_path / "m.pth",
                               "--json", *extra], capture_output=True, text=True, env=env) for extra in
               ([], ["--backend", "openvino"])]
    assert all(s.returncode == 0 for s in streams), streams[1].stderr
    assert "incremental mode" in streams[1].stderr and len(list((tmp_path / "cache").glob("*-stream_step-*.xml"))) == 1
    steps = [[json.loads(line) for line in s.stdout.splitlines()] for s in streams]
    assert len(steps[0]) == len(steps[1]) > 0
    assert max(abs(a["prob"] - b["prob"]) for x, y in zip(*steps) for a, b in zip(x["top"], y["top"])) <= 1e-4
    refused = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", video, "--ckpt", tmp_path / "m.pth",
                              "--backend", "tensorrt"], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "use one of torch, onnxruntime, openvino" in refused.stderr


NON_LOCAL = non_local_cases()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded_gaussian", "gaussian", "dot_product"])
def test_non_local_zoo_models_export_and_give_mmactions_probabilities_on_the_real_clip(mode, tmp_path):
    """Each non-local mode, with weights like a trained model's (noise drives the dot-product one to
    overflow), exports to ONNX and OpenVINO, verified on the real Kinetics clip as
    `tsm export --video` runs it; the graph's probabilities on that clip are mmaction2's own (1e-4)."""
    import torch

    from tsmcli.runtime.exported import open_exported

    checkpoint = non_local_checkpoint(mode, tmp_path / "mm.pth")
    preset = f"tsm_nl_{mode}_r50_1x1x8_50e_k400"
    predictor = tsmcli.load_predictor(checkpoint, preset=preset, fast=False)
    clip = predictor.transform(str(DEMO), "efficient").imgs[None]
    expected = torch.tensor(NON_LOCAL[mode]["probs"])
    with torch.no_grad():
        assert torch.allclose(predictor.model(clip), expected, atol=1e-4, rtol=0)  # the checkpoint loads as mmaction2's
    for name in ["m.onnx"] + (["m.xml"] if _has("openvino") else []):
        done = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", checkpoint, "-p", preset, "--out",
                               tmp_path / name, "--video", DEMO], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        got = torch.from_numpy(open_exported(tmp_path / name).engine.run({"clip": clip.numpy()})[0])
        assert torch.allclose(got, expected, atol=1e-4, rtol=0), (name, float((got - expected).abs().max()))


@pytest.mark.slow
def test_a_graph_with_a_non_local_block_left_out_or_its_input_frozen_is_not_kept(tmp_path, monkeypatch):
    """The float64 judgement lets float32 rounding pass, never a graph that computes something else: one
    exported without a non-local block's contribution, or one that answers every input alike."""
    import copy

    import torch

    import tsmcli.export.whole as whole

    model = tsmcli.load_model(non_local_checkpoint("embedded_gaussian", tmp_path / "mm.pth"),
                              preset="tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400")

    def without_a_block(model, precision):
        broken = copy.deepcopy(model)
        block = next(m for m in broken.modules() if type(m).__name__ == "NonLocal3d")
        with torch.no_grad():
            block.out_bn.weight.zero_()
            block.out_bn.bias.zero_()
        return broken, whole.FP32_TOLERANCE

    with monkeypatch.context() as patched:
        patched.setattr(whole, "at_precision", without_a_block)
        with pytest.raises(JobFailed, match="from a float64 run of the model by .*more than float32 rounding"):
            export_model(model, tmp_path / "broken.onnx", 64, 64)

    class Frozen(whole.OnnxRuntimeEngine):  # the first clip's answer whatever the input
        def run(self, feeds):
            self.first = getattr(self, "first", None) or super().run(feeds)
            return [out[:1].repeat(len(feeds["clip"]), 0) for out in self.first]

    monkeypatch.setattr(whole, "OnnxRuntimeEngine", Frozen)
    with pytest.raises(JobFailed, match="nothing was written"):
        export_model(model, tmp_path / "frozen.onnx", 64, 64)
    assert not list(tmp_path.glob("*.onnx"))


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.slow
def test_export_stream_of_a_bidirectional_model_says_what_export_can_do(tmp_path):
    model = calibrated("tsm_r18_1x1x8_toy", model__num_classes=4)
    tsmcli.save_checkpoint(tmp_path / "m.pth", model, model.preset)
    refused = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", tmp_path / "m.pth", "--stream", "--out",
                              tmp_path / "step.onnx"], capture_output=True, text=True)
    assert refused.returncode == 2 and "shifts both ways" in refused.stderr
    assert "--mode" not in refused.stderr and "without --stream" in refused.stderr  # export has no --mode
    assert not (tmp_path / "step.onnx").exists()
