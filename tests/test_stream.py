"""Streaming: the online shift, incremental steps equal to the offline forward, window mode, the
`tsm stream` command and its annotated video."""
import json
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from conftest import SHARED

import tsmcli
from tsmcli.errors import UserError
from tsmcli.inference import FrameTransform
from tsmcli.models.fast import prepare_for_inference
from tsmcli.models.shift import temporal_shift
from tsmcli.streaming import IncrementalStream, WindowStream, per_frame_logits, resolve_mode, stream

DEMO = SHARED / "fixtures/videos/demo.mp4"


def online_model(preset="tsm_r18_1x1x8_toy", **overrides):
    torch.manual_seed(0)
    model = tsmcli.build_model(preset, pretrained=False, model__shift_mode="online", **overrides).eval()
    torch.nn.init.normal_(model.head.fc.weight, std=2 / model.head.fc.in_features ** 0.5)  # logits of order 1
    return model


def test_online_shift_moves_both_folds_from_the_past_and_its_gradient_is_the_adjoint():
    x = torch.randn(2 * 4, 16, 3, 3, requires_grad=True)
    out = temporal_shift(x, 4, 8, online=True).view(2, 4, 16, 3, 3)
    frames = x.detach().view(2, 4, 16, 3, 3)
    assert torch.equal(out[:, 1:, :4], frames[:, :-1, :4]) and not out[:, 0, :4].any()
    assert torch.equal(out[:, :, 4:], frames[:, :, 4:])
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    reference = torch.zeros_like(frames)  # d/dx of sum(w * shift(x)): w moved back in time
    reference[:, :, 4:] = weights[:, :, 4:]
    reference[:, :-1, :4] = weights[:, 1:, :4]
    assert torch.equal(x.grad.view_as(reference), reference)
    with torch.no_grad():  # the export path gives the same values
        from tsmcli.models.shift import _shift_as_graph

        assert torch.equal(_shift_as_graph(x.detach(), 4, 2, online=True), out.reshape(8, 16, 3, 3))
        assert torch.equal(_shift_as_graph(x.detach(), 4, 2, online=False), temporal_shift(x.detach(), 4, 8))


def test_online_shift_is_causal():
    model = online_model()
    clip = torch.randn(1, 8, 3, 56, 56)
    changed = clip.clone()
    changed[:, 5:] = torch.randn(1, 3, 3, 56, 56)  # other future frames
    with torch.no_grad():
        a, b = per_frame_logits(model, clip), per_frame_logits(model, changed)
    assert torch.equal(a[:, :5], b[:, :5]) and not torch.allclose(a[:, 5:], b[:, 5:])


@pytest.mark.parametrize("preset, overrides", [
    ("tsm_r18_1x1x8_toy", {}),
    ("tsm_r18_1x1x8_toy", {"model__shift_place": "block"}),
    ("tsm_mobilenetv2_dense_1x1x8_100e_k400", {}),
    ("tsm_r50_1x1x8_50e_k400", {"model__num_classes": 10}),
])
def test_incremental_steps_equal_the_offline_forward(preset, overrides):
    model = online_model(preset, **overrides)
    clip = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        offline = per_frame_logits(model, clip)
    runner = IncrementalStream(model)
    online = torch.stack([runner.step(clip[:, t]) for t in range(8)], dim=1)
    scale = offline.abs().max().clamp_min(1e-30)
    assert float((online - offline).abs().max()) <= 1e-5 * max(1.0, float(scale)) and float(scale) > 0
    with torch.no_grad():  # and their average is the model's own (segment-averaged) output
        assert torch.allclose(model.logits(clip)[:, 0], offline.mean(dim=1), atol=1e-5)


def test_incremental_steps_on_the_bf16_fast_path_keep_bf16_state():
    model = online_model()
    clip = torch.randn(2, 8, 3, 64, 64)
    fp32 = IncrementalStream(model)
    fp32_logits = torch.stack([fp32.step(clip[:, t]) for t in range(8)], dim=1)
    prepare_for_inference(model, dtype=torch.bfloat16)
    with torch.no_grad():
        offline = per_frame_logits(model, clip)
    runner = IncrementalStream(model)
    online = torch.stack([runner.step(clip[:, t]) for t in range(8)], dim=1)
    assert online.dtype == torch.float32 and {s.dtype for s in runner.state} == {torch.bfloat16}
    assert runner.state_bytes() * 2 == fp32.state_bytes()
    scale = float(offline.abs().max())
    assert float((online - offline).abs().max()) <= 0.02 * scale
    assert 0 < float((online - fp32_logits).abs().max()) <= 0.05 * scale


def real_frames(count, spacing):
    """Frames of the Kinetics demo clip, `spacing` apart, through the toy preset's validation steps."""
    with av.open(str(DEMO)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][::spacing][:count]
    return frames


def test_stream_of_a_real_video_equals_the_offline_forward_on_its_frames():
    model = online_model()
    frames = real_frames(16, spacing=5)
    results = list(stream(model, frames, every=1, average=1, top=4))
    prepare = FrameTransform(model.preset)
    clip = torch.cat([prepare(f) for f in frames])[None]
    # one model of 16 segments: the same weights, the online shift does not depend on T
    model16 = tsmcli.build_model(model.preset, pretrained=False, model__num_segments=16).eval()
    model16.load_state_dict(model.state_dict())
    with torch.no_grad():
        offline = per_frame_logits(model16, clip)[0].softmax(-1)
    streamed = torch.stack([r.probs for r in results])
    assert len(results) == 16 and float((streamed - offline).abs().max()) <= 1e-5
    assert [r.frame_index for r in results] == list(range(16))
    # averaging T steps from the start gives the offline model's own output on those T frames
    eighth = list(stream(model, frames, every=1))[7]
    with torch.no_grad():
        expected = model(clip[:, :8])[0]
    assert float((eighth.probs - expected).abs().max()) <= 1e-6 and float(expected.max()) < 0.99


@pytest.mark.parametrize("preset", ["tsm_r18_1x1x8_toy", "tsm_temporal_pool_r50_1x1x8_50e_k400",
                                    "tsm_nl_embedded_gaussian_r50_1x1x8_50e_k400"])
def test_window_mode_equals_the_offline_model_on_each_window(preset):
    torch.manual_seed(0)
    model = tsmcli.build_model(preset, pretrained=False, model__num_classes=5).eval()
    assert resolve_mode(model, "auto") == "window"
    runner = WindowStream(model, every=2)
    frames = torch.randn(11, 1, 3, 64, 64)
    outputs = [runner.step(f) for f in frames]
    assert [i for i, o in enumerate(outputs) if o is not None] == [7, 9]  # full after 8, then every 2nd
    with torch.no_grad():
        for i in (7, 9):
            window = frames[i - 7:i + 1].transpose(0, 1)
            assert torch.equal(outputs[i], model.logits(window)[:, 0])


def test_incremental_is_refused_where_it_would_not_be_exact():
    bidirectional = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    with pytest.raises(UserError, match="--set model.shift_mode=online"):
        resolve_mode(bidirectional, "incremental")
    pooled = tsmcli.build_model("tsm_temporal_pool_r50_1x1x8_50e_k400", pretrained=False,
                                model__shift_mode="online")
    with pytest.raises(UserError, match="temporal pooling.*--mode window"):
        resolve_mode(pooled, "incremental")
    assert resolve_mode(online_model(), "auto") == "incremental"


def tsm(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *map(str, args)], capture_output=True, **kwargs)


@pytest.fixture(scope="module")
def online_checkpoint(module_dir):
    path = module_dir("online") / "online.pth"
    model = online_model()
    tsmcli.save_checkpoint(path, model, model.preset, labels=model.labels)
    return path


@pytest.mark.slow
def test_stream_command_writes_a_watchable_annotated_video(online_checkpoint, tmp_path):
    run = tsm("stream", DEMO, "--ckpt", online_checkpoint, "--out", tmp_path / "annotated.mp4", "--json", text=True)
    assert run.returncode == 0, run.stderr
    steps = [json.loads(line) for line in run.stdout.splitlines()]
    with av.open(str(DEMO)) as container:
        source = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        written = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(written) == len(source) and written[0].shape == source[0].shape
    every = 5  # toy preset: 16 frames at 12 fps over 8 segments, at the demo's 28 fps
    assert len(steps) == -(-len(source) // every) and steps[1]["frame"] - steps[0]["frame"] == every
    assert {"step", "frame", "time", "top", "latency_ms"} <= set(steps[0]) and len(steps[0]["top"]) == 4  # --top 5 of 4
    band = max(18, source[0].shape[0] // 12)
    a, b = np.asarray(written[100], np.float32), np.asarray(source[100], np.float32)
    assert np.abs(a[:band] - b[:band]).mean() > 30  # the label is drawn there
    assert np.abs(a[band + 4:] - b[band + 4:]).mean() < 6  # and nowhere else (H.264 noise only)


@pytest.mark.slow
def test_stream_reads_raw_frames_from_stdin_and_says_when_there_is_no_camera(online_checkpoint):
    frames = real_frames(12, spacing=1)
    raw = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    height, width = frames[0].shape[:2]
    run = tsm("stream", "-", "--ckpt", online_checkpoint, "--size", f"{width}x{height}", "--every", "4", "--json",
              input=raw)
    assert run.returncode == 0, run.stderr.decode()
    assert b"not writable" not in run.stderr  # PyTorch's warning about frames read from a bytes buffer
    assert [json.loads(line)["frame"] for line in run.stdout.decode().splitlines()] == [0, 4, 8]
    camera = tsm("stream", "/dev/video9", "--ckpt", online_checkpoint, text=True)
    assert camera.returncode == 2 and "no camera at /dev/video9" in camera.stderr


def test_timeline_windows_tile_the_video_and_merge_into_segments():
    from tsmcli.streaming.timeline import merge, timeline

    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False).eval()
    result = timeline(model, str(DEMO), every=5, top=2)
    windows = result["windows"]
    assert len(windows) == 280 // (8 * 5)  # 280 frames, windows of 8 frames 5 apart
    assert all(a["end"] == pytest.approx(b["start"], abs=1e-3) for a, b in zip(windows, windows[1:]))
    assert result["segments"][0]["start"] == 0.0 and result["segments"][-1]["end"] == windows[-1]["end"]
    hand = [{"start": i, "end": i + 1, "top": [{"index": k, "label": str(k), "prob": p}]}
            for i, (k, p) in enumerate([(1, .8), (1, .6), (2, .9), (1, .5)])]
    assert merge(hand) == [{"start": 0, "end": 2, "label": "1", "index": 1, "score": 0.7},
                           {"start": 2, "end": 3, "label": "2", "index": 2, "score": 0.9},
                           {"start": 3, "end": 4, "label": "1", "index": 1, "score": 0.5}]


@pytest.mark.slow
def test_predict_timeline_command(online_checkpoint):
    run = tsm("predict", DEMO, "--ckpt", online_checkpoint, "--timeline", "--json", text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["segments"] and {"start", "end", "label", "score"} <= set(result["segments"][0])


@pytest.mark.slow
def test_realtime_drops_the_frames_a_slow_model_missed(monkeypatch):
    import time

    model = online_model()
    real_step = IncrementalStream.step

    def slow(self, frame):  # 60 ms per step against a 100 fps source
        time.sleep(0.06)
        return real_step(self, frame)

    monkeypatch.setattr(IncrementalStream, "step", slow)
    frames = [np.zeros((64, 64, 3), np.uint8)] * 40
    kept = list(stream(model, frames, fps=100, every=1, realtime=True))
    every = list(stream(model, frames, fps=100, every=1))
    assert len(every) == 40 and 2 <= len(kept) < 20
    assert kept[-1].dropped == kept[-1].frame_index + 1 - len(kept)  # every frame before it was stepped or dropped


@pytest.mark.slow
def test_window_mode_says_it_fills_its_first_frames_before_the_first_output(tmp_path):
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)  # bidirectional: window mode
    tsmcli.save_checkpoint(tmp_path / "toy.pth", model, model.preset)
    run = tsm("stream", tsmcli.sample_video(), "--ckpt", tmp_path / "toy.pth", "--every", "1", text=True)
    assert run.returncode == 0, run.stderr
    assert "the first output comes once the model has its first 8 frames (about 0.7 s of the source)" in run.stderr
    assert len(run.stdout.splitlines()) == 17 - 7  # the sample's 17 frames, one output from the 8th on
