"""The decoders behind open_video: the same frames as decord's (mmaction2's decoder) for every fetch the
pipeline makes, on real media and on a copy with short GOPs; errors that name the file; the choice of
decoder and what to install; the writer's atomic files."""
import os

import numpy as np
import pytest
import torch
from conftest import SHARED

import tsmcli
from tsmcli.data.benchmark import video_records
from tsmcli.data.sampling import DenseSampleFrames, SampleFrames
from tsmcli.errors import UserError
from tsmcli.video import (
    MediaError,
    VideoWriter,
    available_decoders,
    open_video,
    probe_video,
    reader,
    resize_video,
    resolve_decoder,
)

VIDEOS = SHARED / "fixtures/videos"
H264 = ["demo.mp4", "test.mp4", "part_0.mp4"]
OTHERS = [d for d in available_decoders() if d != "decord"]
needs_decord = pytest.mark.skipif("decord" not in available_decoders(), reason="decord (tsm[decord]) not installed")
FETCHES = [SampleFrames(8), SampleFrames(8, test_mode=True), SampleFrames(8, test_mode=True, twice_sample=True),
           DenseSampleFrames(8, sample_range=64)]


@pytest.fixture(scope="module")
def gop16(module_dir):
    """demo.mp4 re-encoded as `tsm prepare --resize-videos` writes it: a keyframe every 16 frames."""
    path = module_dir("gop") / "demo_gop16.mp4"
    resize_video(str(VIDEOS / "demo.mp4"), str(path), lambda h, w: (h, w), gop=16)
    return path


def fetch(path, decoder, indices):
    with open_video(path, decoder) as video:
        return video.get(indices).numpy()


@pytest.mark.slow
@needs_decord
@pytest.mark.parametrize("decoder", OTHERS)
@pytest.mark.parametrize("name", H264 + ["gop16"])
def test_every_fetch_gives_decords_pixels_on_h264(decoder, name, gop16):
    path = str(gop16 if name == "gop16" else VIDEOS / name)
    with open_video(path, "decord") as video:
        frames = len(video)
    with open_video(path, decoder) as video:
        assert len(video) == frames
    rng = np.random.default_rng(0)
    for sampler in FETCHES:
        indices = sampler(frames, rng)
        np.testing.assert_array_equal(fetch(path, decoder, indices), fetch(path, "decord", indices))
    unordered = [frames - 1, 0, frames // 2, 0]
    np.testing.assert_array_equal(fetch(path, decoder, unordered), fetch(path, "decord", unordered))


@pytest.mark.slow
@needs_decord
def test_pyav_reads_every_frame_in_order_as_decord_does():
    for name in H264 + ["test.avi"]:
        path = str(VIDEOS / name)
        with open_video(path, "pyav") as ours, open_video(path, "decord") as theirs:
            mine = np.stack([frame for _, frame in ours.frames()])
            np.testing.assert_array_equal(mine, np.stack([frame for _, frame in theirs.frames()]))
            np.testing.assert_array_equal(ours.get(range(len(ours))).permute(0, 2, 3, 1).numpy(), mine)


def test_avi_with_packed_b_frames_is_read_by_decode_order():
    """AVI packets carry no presentation times to plan from (test.avi: MPEG-4 with packed B-frames):
    PyAV counts the decoder's frames, so random access gives the sequential decode's frames."""
    path = str(VIDEOS / "test.avi")
    with open_video(path, "pyav") as video:
        everything = np.stack([frame for _, frame in video.frames()])
        assert len(video) == len(everything) == 164
        picked = video.get([0, 5, 163, 5]).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(picked, everything[[0, 5, 163, 5]])


def test_frames_come_channels_last_as_the_transforms_expect():
    with open_video(str(VIDEOS / "demo.mp4"), "pyav") as video:
        clip = video.get([3, 1])
    assert clip.shape == (2, 3, 256, 340) and clip.dtype == torch.uint8
    assert clip.permute(0, 2, 3, 1).is_contiguous()


@pytest.mark.parametrize("decoder", available_decoders())
def test_frame_size_is_the_decoded_frames_size(decoder):
    for name in H264 + ["test.avi"]:
        with open_video(str(VIDEOS / name), decoder) as video:
            assert video.frame_size == tuple(video.get([0]).shape[2:])


def test_broken_files_are_media_errors_naming_the_file(tmp_path):
    empty, garbage, cut = tmp_path / "empty.mp4", tmp_path / "garbage.mp4", tmp_path / "cut.mp4"
    empty.write_bytes(b"")
    garbage.write_bytes(os.urandom(5000))
    data = (VIDEOS / "test.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    for decoder in available_decoders():
        for path, reason in ((tmp_path / "missing.mp4", "file not found"), (empty, "empty file"),
                             (garbage, "cannot")):
            with pytest.raises(MediaError) as error:
                open_video(str(path), decoder)
            assert error.value.path == str(path) and reason in error.value.reason
        with pytest.raises(MediaError) as error:
            probe_video(str(cut), decoder)  # the second half of the frames is gone
        assert error.value.path == str(cut)


def test_decoder_names_and_what_to_install(monkeypatch):
    with pytest.raises(UserError, match="use one of auto, pyav, torchcodec, decord"):
        resolve_decoder("ffmpeg")
    assert resolve_decoder("auto") == available_decoders()[0] == "pyav"
    monkeypatch.setitem(reader._BACKENDS, "decord", ".no_such_backend")
    reader._backend.cache_clear()
    try:
        with pytest.raises(UserError, match=r"decoder decord is not usable here .*pip install 'tsm\[decord\]'"):
            resolve_decoder("decord")
        # auto passes over what does not work to the next that does, whatever this machine has installed:
        # decord stands in as working (PyAV's module), pyav and torchcodec are missing
        for name, module in (("pyav", ".no_such_backend"), ("torchcodec", ".no_such_backend"),
                             ("decord", ".pyav_backend")):
            monkeypatch.setitem(reader._BACKENDS, name, module)
        reader._backend.cache_clear()
        assert resolve_decoder("auto") == "decord" and available_decoders() == ["decord"]
        monkeypatch.setitem(reader._BACKENDS, "decord", ".no_such_backend")
        reader._backend.cache_clear()
        with pytest.raises(UserError, match=r"no video decoder works here: pyav .*pip install av.*; torchcodec "
                                            r".*tsm\[torchcodec\].*; decord .*tsm\[decord\]"):
            resolve_decoder("auto")
    finally:
        monkeypatch.undo()
        reader._backend.cache_clear()


def test_the_preset_key_chooses_the_decoder(monkeypatch):
    import tsmcli.data.pipeline as pipeline

    with pytest.raises(UserError, match="data.decoder' must be one of"):
        tsmcli.load_preset("tsm_r18_1x1x8_toy", ["data.decoder=opencv"])
    used = []
    real = pipeline.open_video
    monkeypatch.setattr(pipeline, "open_video", lambda path, decoder: used.append(decoder) or real(path, decoder))
    steps = tsmcli.load_preset("tsm_r18_1x1x8_toy")["data"]["test"]["pipeline"]
    pipeline.read_clip(str(VIDEOS / "test.mp4"), steps, decoder="pyav")
    dataset = tsmcli.data.build_dataset("tsm_r18_1x1x8_toy", "test", data__decoder=available_decoders()[-1],
                                        records=video_records([VIDEOS / "part_0.mp4"]))
    dataset[0]
    assert used == ["pyav", available_decoders()[-1]]


def test_a_checkpoint_written_before_the_decoder_key_loads_with_auto():
    old = tsmcli.load_preset("tsm_r18_1x1x8_toy")
    del old["data"]["decoder"]
    assert tsmcli.presets.resolve_preset(old)["data"]["decoder"] == "auto"


def test_the_writer_makes_complete_files_or_none(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (5, 31, 45, 3), dtype=np.uint8)
    with VideoWriter(tmp_path / "odd.mp4", fps=10) as video:
        for frame in frames:
            video.write(frame)
    with open_video(str(tmp_path / "odd.mp4")) as written:
        assert len(written) == 5 and written.get([0]).shape == (1, 3, 30, 44)
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "failed.mp4", fps=10) as video:
            video.write(frames[0])
            raise RuntimeError("the source broke")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"]


@needs_decord
def test_decord_opens_of_broken_files_leave_other_threads_output_alone(tmp_path):
    """A broken file opened with decord is one MediaError and nothing on stderr from decord, while a
    second thread's writes to stderr all arrive (file descriptor 2 is never redirected)."""
    import subprocess
    import sys

    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 100)
    script = f"""
import os, threading
from tsmcli.video import MediaError, open_video
done = threading.Event()
def ping():
    sent = 0
    while not done.is_set():
        os.write(2, b"ping\\n"); sent += 1
    print(sent)
thread = threading.Thread(target=ping); thread.start()
failed = 0
for path in [{str(tmp_path / "broken.mp4")!r}, {str(tmp_path / "missing.mp4")!r}] * 100:
    try:
        open_video(path, "decord")
    except MediaError:
        failed += 1
done.set(); thread.join()
print(failed)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    sent, failed = map(int, run.stdout.split())
    assert failed == 200
    lines = run.stderr.splitlines()
    assert lines.count("ping") == sent and len(lines) == sent, [x for x in lines if x != "ping"][:3]


def test_a_camera_gives_the_frames_of_its_stream_as_rgb(monkeypatch):
    """No camera here: FFmpeg's v4l2 input is stood in by a file, whose YUV frames the camera reader
    converts as the file reader does (without PyAV's per-thread converter, which forked workers inherit)."""
    import av

    from tsmcli.video import open_camera

    real_open = av.open
    monkeypatch.setattr(av, "open", lambda device, format=None: real_open(str(VIDEOS / "demo.mp4")))
    camera = open_camera("/dev/video0")
    frames = [rgb for _, (_, rgb) in zip(range(3), camera.frames())]
    with open_video(str(VIDEOS / "demo.mp4"), "pyav") as video:
        expected = video.get([0, 1, 2]).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(np.stack(frames), expected)


@pytest.mark.parametrize("decoder", [d for d in available_decoders() if d != "torchcodec"])  # torchcodec is torch's
def test_checking_that_a_video_decodes_does_not_load_pytorch(decoder):
    """`tsm prepare custom`'s workers only check each video: loading PyTorch cost each of them seconds."""
    import subprocess
    import sys

    script = (f"import sys; from tsmcli.video import probe_video\n"
              f"print(probe_video({str(VIDEOS / 'demo.mp4')!r}, {decoder!r}), 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(len(open_video(str(VIDEOS / "demo.mp4")))), "False"]
