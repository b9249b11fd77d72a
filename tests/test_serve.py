"""`tsm serve` as users run it: a started process, reached through a real HTTP and WebSocket client."""
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from browser import console_errors, fake_camera_clip, webcam_on_the_demo_page
from conftest import SHARED
from serving import Server, free_port, tsm

import tsmcli

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi", reason="the serve extra (pip install 'tsm[serve]')")
from websockets.sync.client import connect  # noqa: E402

VIDEO = SHARED / "fixtures/videos/test.mp4"
DEMO = SHARED / "fixtures/videos/demo.mp4"
LABELS = ["a", "b", "c", "d"]
KEY = "s3cret-key-for-tests"
MARKED = 7.25  # a clip of this value only: the failing predictor's cue


@pytest.fixture(scope="module")
def toy(module_dir):
    folder = module_dir("serve")
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(folder / "toy.pth", model, model.preset, labels=LABELS)
    return folder


@pytest.fixture(scope="module")
def server(toy):
    running = Server(toy / "toy.pth", toy, "--max-upload-mb", 2)
    yield running
    running.stop()


@pytest.mark.slow
def test_health_ready_info_and_metrics(server):
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    assert httpx.get(server.url + "/ready").status_code == 200
    info = httpx.get(server.url + "/info").json()
    assert info["classes"] == LABELS and info["frames_per_clip"] == 8 and info["input_size"] == [56, 56]
    assert info["backend"] == "torch" and info["multi_label"] is False and info["preset"] == "tsm_r18_1x1x8_toy"
    httpx.post(server.url + "/predict", files={"video": ("test.mp4", VIDEO.read_bytes(), "video/mp4")})
    text = httpx.get(server.url + "/metrics").text
    assert 'tsm_requests_total{endpoint="/predict",status="200"}' in text
    for name in ("tsm_request_seconds_bucket", "tsm_batch_size_bucket", "tsm_queue_depth", "tsm_open_streams"):
        assert name in text, name
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "getUserMedia" in page.text and "/stream" in page.text


@pytest.mark.slow
def test_predict_and_timeline_answer_what_tsm_predict_prints(server, toy):
    expected = json.loads(tsm("predict", VIDEO, "--ckpt", toy / "toy.pth", "--json", "--top", 3).stdout)
    as_form = httpx.post(server.url + "/predict?top=3", files={"video": ("clip.mp4", VIDEO.read_bytes(), "video/mp4")})
    as_body = httpx.post(server.url + "/predict?top=3", content=VIDEO.read_bytes(),
                         headers={"Content-Type": "application/octet-stream"})
    for answer, name in ((as_form, "clip.mp4"), (as_body, "upload")):
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert got["video"] == name and set(got) == set(expected)
        assert [c["index"] for c in got["top"]] == [c["index"] for c in expected["top"]]
        assert torch.allclose(torch.tensor(got["scores"]), torch.tensor(expected["scores"]), atol=1e-5, rtol=0)
        timing = dict(part.split(";")[0::len(part.split(";")) - 1] for part in answer.headers["server-timing"].split(", "))
        assert list(timing) == ["upload", "decode", "queue", "model"], timing
        assert all(float(value.removeprefix("dur=")) >= 0 for value in timing.values())
    expected = json.loads(tsm("predict", VIDEO, "--ckpt", toy / "toy.pth", "--json", "--timeline", "--top", 2).stdout)
    got = httpx.post(server.url + "/timeline?top=2", files={"video": ("clip.mp4", VIDEO.read_bytes())}).json()
    assert got["every"] == expected["every"] and len(got["windows"]) == len(expected["windows"])
    assert [s["label"] for s in got["segments"]] == [s["label"] for s in expected["segments"]]
    for ours, theirs in zip(got["windows"], expected["windows"]):
        assert [c["index"] for c in ours["top"]] == [c["index"] for c in theirs["top"]]
        assert ours["top"][0]["prob"] == pytest.approx(theirs["top"][0]["prob"], abs=1e-5)


def test_the_batcher_runs_a_lone_clip_at_once_and_batches_clips_on_their_way():
    """A clip with nothing queued and nothing on its way runs at once in the caller's thread, without
    waiting max_wait_ms; clips submitted while more are coming run as one batch, and a clip the model
    fails on fails alone."""
    import asyncio

    from tsmcli.serve.batching import Batcher

    calls = []

    def run(clips):
        calls.append((threading.current_thread().name, len(clips)))
        if any(bool((clip == MARKED).all()) for clip in clips):
            raise RuntimeError("bad clip")
        return clips.flatten(1).sum(1, keepdim=True)

    coming = {"more": False}
    batcher = Batcher(run, max_batch=3, max_wait_ms=2000, more_coming=lambda: coming["more"])
    try:
        start = time.perf_counter()
        output, timing = batcher.run_alone(torch.ones(2, 3))
        assert time.perf_counter() - start < 1 and timing.batch == 1 and float(output) == 6
        assert calls == [(threading.current_thread().name, 1)]

        async def three(values):
            return await asyncio.gather(*(batcher.submit(torch.full((2, 3), value)) for value in values),
                                        return_exceptions=True)

        start = time.perf_counter()
        assert asyncio.run(three((4.0,)))[0][1].batch == 1
        assert time.perf_counter() - start < 1  # nothing on its way: the batcher does not wait for it

        coming["more"] = True
        assert batcher.run_alone(torch.ones(2, 3)) is None  # another clip is on its way: it may join a batch

        calls.clear()
        start = time.perf_counter()
        answers = asyncio.run(three((1.0, 2.0, 3.0)))
        assert time.perf_counter() - start < 1  # the batch is full: no waiting for more
        assert calls == [("tsm-batcher", 3)] and [a[1].batch for a in answers] == [3, 3, 3]
        assert [float(a[0]) for a in answers] == [6, 12, 18]
        calls.clear()
        first, failed, last = asyncio.run(three((1.0, MARKED, 2.0)))
        assert calls == [("tsm-batcher", 3)] + [("tsm-batcher", 1)] * 3  # then clip by clip
        assert float(first[0]) == 6 and float(last[0]) == 12
        assert isinstance(failed, RuntimeError)
    finally:
        batcher.close()


def png(frame):
    """uint8 (H, W, 3) -> PNG bytes (lossless: the server decodes the frame's own pixels)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def frames_as_png(video, limit=None):
    from tsmcli.streaming import frames_of

    fps, frames = frames_of(str(video))
    for index, (_, frame) in enumerate(frames):
        if limit is not None and index >= limit:
            return
        yield png(frame)


@pytest.mark.slow
def test_a_stream_of_frames_gives_tsm_streams_classes(server, toy):
    run = tsm("stream", VIDEO, "--ckpt", toy / "toy.pth", "--json", "--every", 3, "--top", 2, "--device", "cpu")
    expected = [json.loads(line) for line in run.stdout.splitlines()]
    got = []
    with connect(f"ws://127.0.0.1:{server.port}/stream?every=3&top=2&fps=30") as stream:
        for frame in frames_as_png(VIDEO):
            stream.send(frame)
        while len(got) < len(expected):
            got.append(json.loads(stream.recv(timeout=30)))
    assert len(expected) > 2
    for ours, theirs in zip(got, expected):
        assert ours["step"] == theirs["step"] and ours["frame_index"] == theirs["frame"]
        assert [c["index"] for c in ours["top"]] == [c["index"] for c in theirs["top"]]
        assert ours["top"][0]["prob"] == pytest.approx(theirs["top"][0]["prob"], abs=1e-4)


def bad_uploads(tmp_path):
    """(what, request keyword arguments, the status it must get)."""
    import av

    truncated = DEMO.read_bytes()[:5000]
    audio_only = tmp_path / "audio.wav"
    with av.open(str(audio_only), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(torch.zeros(1, 800, dtype=torch.int16).numpy(), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    empty_video = tmp_path / "empty.mp4"  # a video stream and its header, no frame
    with av.open(str(empty_video), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
        for packet in stream.encode(None):
            out.mux(packet)
    form = lambda name, data: {"files": {"video": (name, data, "video/mp4")}}  # noqa: E731
    return [
        ("an empty body", {"content": b"", "headers": {"Content-Type": "video/mp4"}}, 400),
        ("a text file", form("notes.txt", b"just some text, not a video\n" * 20), 422),
        ("a truncated MP4", form("cut.mp4", truncated), 422),
        ("a still image", form("frame.jpg", (SHARED / "fixtures/frames/img_00001.jpg").read_bytes()), 422),
        ("no video stream", form("audio.wav", audio_only.read_bytes()), 422),
        ("zero frames", form("empty.mp4", empty_video.read_bytes()), 422),
        ("over --max-upload-mb", form("big.mp4", os.urandom(3 * 2 ** 20)), 413),
        ("over the limit, chunked", {"content": iter([os.urandom(2 ** 20)] * 3),
                                     "headers": {"Content-Type": "video/mp4"}}, 413),
        ("a wrong form field", {"files": {"clip": ("c.mp4", VIDEO.read_bytes(), "video/mp4")}}, 400),
        ("a wrong content type", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415),
        ("malformed multipart", {"content": b"--xyz\r\nnot a part", "headers": {
            "Content-Type": "multipart/form-data; boundary=xyz"}}, 400),
    ]


def test_bad_input_gets_its_4xx_and_the_server_keeps_serving(server, tmp_path):
    for what, request, status in bad_uploads(tmp_path):
        answer = httpx.post(server.url + "/predict", timeout=60, **request)
        assert answer.status_code == status, (what, answer.status_code, answer.text)
        assert answer.json()["error"], what
        assert httpx.get(server.url + "/health").status_code == 200, what
    for query, status in (("scheme=sideways", 400), ("top=0", 400), ("top=x", 400), ("threshold=2", 400)):
        answer = httpx.post(f"{server.url}/predict?{query}", files={"video": ("c.mp4", VIDEO.read_bytes())})
        assert answer.status_code == status and "error" in answer.json(), (query, answer.text)
    assert httpx.get(server.url + "/nowhere").json()["error"]
    time.sleep(0.5)
    assert server.leftovers() == []  # no temporary file left behind


@pytest.mark.slow
def test_a_stream_survives_bad_frames_size_changes_and_a_client_that_leaves(server):
    def noise(height, width):
        return png(torch.randint(0, 255, (height, width, 3), dtype=torch.uint8).numpy())

    with connect(f"ws://127.0.0.1:{server.port}/stream?every=1&top=1") as stream:
        stream.send("not an image")
        assert "binary message" in json.loads(stream.recv(timeout=30))["error"]
        stream.send(b"\x89PNG but broken")
        assert "JPEG or PNG" in json.loads(stream.recv(timeout=30))["error"]
        for index in range(10):  # frames of two sizes: each is resized and cropped as the preset says
            stream.send(noise(64, 64) if index % 2 else noise(96, 128))
        answers = [json.loads(stream.recv(timeout=30)) for _ in range(3)]
        assert all("top" in answer for answer in answers), answers
    with connect(f"ws://127.0.0.1:{server.port}/stream?every=1") as stream:
        for _ in range(4):
            stream.send(noise(64, 64))
    from websockets.exceptions import ConnectionClosedError

    with connect(f"ws://127.0.0.1:{server.port}/stream?every=1", max_size=None) as stream:
        with pytest.raises(ConnectionClosedError):  # the WebSocket's own answer: 1009, message too big
            stream.send(os.urandom(9 * 2 ** 20))
            stream.recv(timeout=30)
    assert httpx.get(server.url + "/health").status_code == 200
    assert 'tsm_open_streams 0.0' in httpx.get(server.url + "/metrics").text


@pytest.mark.slow
def test_with_an_api_key_every_endpoint_but_health_needs_it(toy):
    server = Server(toy / "toy.pth", toy, env={"TSM_API_KEY": KEY})
    try:
        assert httpx.get(server.url + "/health").status_code == 200
        for path in ("/ready", "/info", "/metrics", "/"):
            assert httpx.get(server.url + path).status_code == 401, path
            assert httpx.get(server.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert httpx.get(server.url + path, headers=server.headers).status_code == 200, path
        denied = httpx.post(server.url + "/predict", files={"video": ("c.mp4", VIDEO.read_bytes())})
        assert denied.status_code == 401 and "API key" in denied.json()["error"]
        with pytest.raises(Exception):  # noqa: B017 - closed before it opens (1008)
            with connect(f"ws://127.0.0.1:{server.port}/stream") as stream:
                stream.recv(timeout=10)
        with connect(f"ws://127.0.0.1:{server.port}/stream?every=1&access_token={KEY}") as stream:
            stream.send(next(frames_as_png(VIDEO, 1)))
        with connect(f"ws://127.0.0.1:{server.port}/stream?every=1", additional_headers=server.headers) as stream:
            stream.send(next(frames_as_png(VIDEO, 1)))
    finally:
        server.stop()
    assert KEY not in server.output(), "the key reached the log"


@pytest.mark.slow
def test_sigterm_lets_requests_in_flight_finish_then_exits_0(toy):
    server = Server(toy / "toy.pth", toy)
    results = []

    def ask():
        results.append(httpx.post(server.url + "/predict", files={"video": ("d.mp4", DEMO.read_bytes())},
                                  timeout=120).status_code)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=120)
    assert server.process.wait(timeout=60) == 0, server.output()
    assert results == [200] * 4, (results, server.output())
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=5)
    server.stop()


@pytest.mark.slow
def test_a_second_signal_stops_at_once(toy):
    server = Server(toy / "toy.pth", toy)
    pool = concurrent.futures.ThreadPoolExecutor(8)
    for _ in range(8):
        pool.submit(lambda: httpx.post(server.url + "/predict", files={"video": ("d.mp4", DEMO.read_bytes())},
                                       timeout=120))
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    server.process.send_signal(signal.SIGTERM)
    start = time.monotonic()
    server.process.wait(timeout=30)
    assert time.monotonic() - start < 15
    pool.shutdown(wait=True)
    server.stop()


@pytest.mark.slow
def test_an_engine_error_is_a_500_for_its_request_only(toy):
    """The model fails on one request's clip (here a predictor that fails on a clip of one marked value, as an engine
    may on an input it cannot take): that request gets 500, the requests batched with it their answers.
    The service runs in a thread of the test, so that the predictor can be made to fail; it is reached
    through a real HTTP client all the same."""
    import uvicorn

    from tsmcli.inference import load_predictor
    from tsmcli.serve.app import Settings, create_app

    predictor = load_predictor(toy / "toy.pth")
    run = predictor.probabilities

    def failing(clips):
        if any(bool((clip == MARKED).all()) for clip in clips):
            raise RuntimeError("the engine cannot take this input")
        return run(clips)

    predictor.probabilities = failing
    port = free_port()
    app = create_app(lambda: predictor, Settings(max_batch=8, max_wait_ms=200))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        original = predictor.transform
        blanks = []
        predictor.transform = lambda video, scheme="preset": _maybe_blank(original(video, scheme), video, blanks)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda name: httpx.post(url + "/predict", files={
                "video": (name, VIDEO.read_bytes() + (b"\0" if name == "blank.mp4" else b""))}, timeout=60),
                ["a.mp4", "blank.mp4", "b.mp4", "c.mp4"]))
        statuses = {answer.json().get("video", "blank.mp4"): answer.status_code for answer in answers}
        assert statuses == {"a.mp4": 200, "blank.mp4": 500, "b.mp4": 200, "c.mp4": 200}, statuses
        assert "the engine cannot take this input" in answers[1].json()["error"]
        assert httpx.get(url + "/health").status_code == 200 and len(blanks) == 1
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _maybe_blank(clip, video, blanks):
    with open(video, "rb") as f:
        data = f.read()
    if data.endswith(b"\0"):
        clip.imgs = torch.full_like(clip.imgs, MARKED)
        blanks.append(video)
    return clip


@pytest.mark.slow
def test_500_requests_at_concurrency_16_all_answered_without_a_leak(toy, tmp_path):
    server = Server(toy / "toy.pth", toy, "--max-queue", 64)
    bad = {"video": ("bad.mp4", b"not a video at all" * 50, "video/mp4")}
    good = {"video": ("ok.mp4", tsmcli.sample_video().read_bytes(), "video/mp4")}  # small: the server is tested

    def rss():
        return int(next(line.split()[1] for line in open(f"/proc/{server.process.pid}/status")
                        if line.startswith("VmRSS")))

    client = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=16))  # one client, as a program has

    def ask(index):
        return client.post(server.url + "/predict", files=bad if index % 5 == 0 else good).status_code

    try:
        with client, concurrent.futures.ThreadPoolExecutor(16) as pool:
            first = list(pool.map(ask, range(50)))
            after_50 = rss()
            rest = list(pool.map(ask, range(50, 500)))
        statuses = first + rest
        assert len(statuses) == 500 and not any(s >= 500 for s in statuses), sorted(set(statuses))
        assert statuses.count(422) == 100 and statuses.count(200) == 400
        assert rss() <= 1.2 * after_50, (after_50, rss())
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        server.stop()


@pytest.mark.slow
def test_beyond_max_queue_it_answers_503_with_retry_after(toy):
    server = Server(toy / "toy.pth", toy, "--max-queue", 1)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: httpx.post(server.url + "/predict", files={
                "video": ("d.mp4", DEMO.read_bytes())}, timeout=120), range(8)))
        busy = [a for a in answers if a.status_code == 503]
        assert busy and all(a.headers.get("Retry-After") for a in busy), [a.status_code for a in answers]
        assert any(a.status_code == 200 for a in answers)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_exported_backends_answer_as_their_tsm_predict(toy, backend, tmp_path):
    env = {"TSM_EXPORT_CACHE": str(tmp_path / "exports")}
    expected = tsm("predict", VIDEO, "--ckpt", toy / "toy.pth", "--json", "--backend", backend,
                   env={**os.environ, **env})
    assert expected.returncode == 0, expected.stderr
    server = Server(toy / "toy.pth", toy, "--backend", backend, env=env)
    try:
        got = httpx.post(server.url + "/predict", files={"video": ("test.mp4", VIDEO.read_bytes())}).json()
        theirs = json.loads(expected.stdout)
        assert torch.allclose(torch.tensor(got["scores"]), torch.tensor(theirs["scores"]), atol=1e-5, rtol=0)
        assert httpx.get(server.url + "/info").json()["backend"] == backend
    finally:
        server.stop()


def test_without_the_extra_it_says_which_to_install(toy):
    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "import tsmcli.cli; sys.argv = ['tsm'] + sys.argv[1:]; tsmcli.cli.main()")
    run = subprocess.run([sys.executable, "-c", code, "serve", str(toy / "toy.pth")], capture_output=True, text=True)
    assert run.returncode == 2 and "pip install 'tsm[serve]'" in run.stderr


def webcam_clip(path, label=0):
    """A toy clip as Chromium's fake camera plays it, from the toy dataset's renderer."""
    import numpy as np

    from tsmcli.video.synthetic import render

    return fake_camera_clip(render(label, np.random.default_rng(0), size=64, frames=48), path)


@pytest.mark.slow
def test_the_demo_page_in_a_real_browser(toy, tmp_path):
    """Headless Chromium (Debian's package) with its fake camera playing a toy clip: the page names the
    model, the webcam's labels arrive through /stream, and a video chosen in the file picker shows the
    top classes /predict gives for it; no console errors."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with webcam_on_the_demo_page(tmp_path, webcam_clip(tmp_path / "clip.y4m"), toy / "toy.pth") as (driver, server):
        wait = WebDriverWait(driver, 30)
        assert "tsm_r18_1x1x8_toy" in driver.find_element(By.ID, "model").text
        labels_of = "return [...document.querySelectorAll(arguments[0] + ' li')].map(li => li.textContent)"
        wait.until(lambda d: d.execute_script(labels_of, "#live-top"))  # read at once: the list is redrawn live
        live = [text.rsplit(" ", 1)[0] for text in driver.execute_script(labels_of, "#live-top")]
        assert live and all(label in LABELS for label in live), live
        assert "frames/s sent" in driver.find_element(By.ID, "rate").text
        driver.find_element(By.ID, "file").send_keys(str(VIDEO))
        wait.until(lambda d: d.execute_script(labels_of, "#file-top"))
        shown = driver.execute_script(labels_of, "#file-top")[0].rsplit(" ", 1)[0]
        expected = httpx.post(server.url + "/predict", files={"video": (VIDEO.name, VIDEO.read_bytes())}).json()
        assert shown == expected["top"][0]["label"]
        assert not console_errors(driver), console_errors(driver)
