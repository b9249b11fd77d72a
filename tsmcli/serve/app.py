"""The HTTP and WebSocket service of `tsm serve`, on the inference home's Predictor.

GET /health, /ready, /info, /metrics, / (the demo page); POST /predict and /timeline (a video as the
multipart field `video` or as the body); WS /stream (one JPEG or PNG frame per binary message). Errors are
JSON {"error": ...} with a 4xx code that says what was wrong and what would fix it.
"""
import asyncio
import hmac
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UserError
from ..video import MediaError
from .batching import Batcher

log = logging.getLogger("tsmcli.serve")
UPLOAD_PATHS = ("/predict", "/timeline")
OPEN_PATHS = ("/health",)


@dataclass
class Settings:
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_queue: int = 64
    max_upload_mb: float = 200.0
    max_frame_mb: float = 8.0
    api_key: Optional[str] = None
    scheme: str = "preset"
    decode_workers: int = os.cpu_count() or 2


class _Counter:
    def __init__(self):
        self.value, self.lock = 0, threading.Lock()

    def add(self, change):
        with self.lock:
            self.value += change


class ApiError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class _TooLarge(Exception):
    """Raised from the request body's receive when an upload passes the limit."""


def create_app(load, settings: Settings):
    """The service; `load()` -> the Predictor, called once in a thread at start-up (/ready says when it is
    loaded and warmed up)."""
    registry = CollectorRegistry()
    requests = Counter("tsm_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=registry)
    latency = Histogram("tsm_request_seconds", "Request latency by endpoint", ["endpoint"], registry=registry,
                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
    batch_sizes = Histogram("tsm_batch_size", "Clips per model batch", registry=registry,
                            buckets=(1, 2, 4, 8, 16, 32, 64))
    queue_depth = Gauge("tsm_queue_depth", "Uploads being decoded or waiting for the model", registry=registry)
    open_streams = Gauge("tsm_open_streams", "Open /stream connections", registry=registry)
    state = {"predictor": None, "batcher": None, "error": None, "in_flight": 0}
    decoding = _Counter()  # uploads being decoded, counted from the decode threads
    model_lock = threading.Lock()  # engines (OpenVINO's requests) are not for two threads at once
    decoders = ThreadPoolExecutor(settings.decode_workers, thread_name_prefix="tsm-decode")

    def start():
        try:
            predictor = load()
            width = predictor.clip_transform("efficient").size
            with model_lock:
                predictor.probabilities(torch.zeros((1, predictor.num_segments, 3) + tuple(width)))  # warm-up

            def run(clips):
                with model_lock:
                    return predictor.probabilities(clips)

            state["batcher"] = Batcher(run, settings.max_batch, settings.max_wait_ms, batch_sizes.observe,
                                       more_coming=lambda: decoding.value > 0)
            state["predictor"] = predictor
            log.info("ready: %s", predictor.describe())
        except Exception as error:  # noqa: BLE001 - /ready reports it; the process keeps answering /health
            state["error"] = f"{type(error).__name__}: {error}"
            log.error("the model did not load: %s", state["error"])

    async def lifespan(app):
        threading.Thread(target=start, name="tsm-load", daemon=True).start()
        yield
        if state["batcher"] is not None:
            state["batcher"].close()
        decoders.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="tsm", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def predictor_or_503():
        if state["predictor"] is None:
            raise ApiError(503, state["error"] or "the model is loading; GET /ready says when it is ready",
                           {"Retry-After": "1"})
        return state["predictor"]

    @app.exception_handler(ApiError)
    async def api_error(request, error):
        return JSONResponse({"error": error.message}, error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        return JSONResponse({"error": f"bad request: {problems}"}, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error):
        return JSONResponse({"error": str(error.detail)}, error.status_code)

    @app.exception_handler(Exception)
    async def internal(request, error):
        log.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": f"internal error: {type(error).__name__}: {error}"}, 500)

    @app.middleware("http")
    async def observe(request, call_next):
        start_time = time.perf_counter()
        path = request.url.path
        denied = _denied(request.headers, request.query_params, path, settings.api_key)
        if denied:
            response = JSONResponse({"error": denied}, 401, headers={"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        requests.labels(path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - start_time)
        log.info("%s %s %s", request.method, path, response.status_code)  # no query: a key may be there
        return response

    app.add_middleware(UploadLimit, limit_bytes=settings.max_upload_mb * 2 ** 20)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        if state["predictor"] is None:
            return JSONResponse({"error": state["error"] or "loading the model"}, 503, headers={"Retry-After": "1"})
        return {"status": "ready"}

    @app.get("/info")
    async def info():
        predictor = predictor_or_503()
        model, preset = predictor.model, predictor.preset
        return {"preset": preset["name"], "classes": predictor.labels, "num_classes": len(predictor.labels),
                "frames_per_clip": predictor.num_segments, "input_size": list(predictor.clip_transform("efficient").size),
                "backend": "torch" if not model.exported else model.backend,
                "precision": "fp32" if predictor.dtype is None and not model.exported else
                             (model.precision if model.exported else str(predictor.dtype).replace("torch.", "")),
                "multi_label": predictor.multi_label, "model": predictor.describe(), "scheme": settings.scheme}

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return resources.files("tsmcli.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    async def run_upload(request, work):
        """Save the upload, run work(predictor, path, name, timing) and clean up. timing: the Server-Timing
        entries so far (name -> seconds), to which work adds its own."""
        predictor = predictor_or_503()
        if state["in_flight"] >= settings.max_queue:
            raise ApiError(503, f"busy: {settings.max_queue} uploads are already being served (--max-queue); "
                                "try again shortly", {"Retry-After": "1"})
        state["in_flight"] += 1
        queue_depth.set(state["in_flight"])
        path = None
        try:
            start = time.perf_counter()
            path, name = await _save_upload(request, settings.max_upload_mb)
            timing = {"upload": time.perf_counter() - start}
            answer = await work(predictor, path, name, timing)
            return JSONResponse(answer, headers={"Server-Timing": _server_timing(timing)})
        finally:
            state["in_flight"] -= 1
            queue_depth.set(state["in_flight"])
            if path is not None:
                Path(path).unlink(missing_ok=True)

    def check_query(top, threshold, scheme=None):
        if top < 1:
            raise ApiError(400, f"top={top}: ask for at least 1 class")
        if not 0.0 <= threshold <= 1.0:
            raise ApiError(400, f"threshold={threshold}: a probability, from 0 to 1")
        if scheme is not None:
            from ..data.schemes import SCHEMES

            if scheme not in SCHEMES:
                raise ApiError(400, f"scheme={scheme!r}: use one of {', '.join(SCHEMES)}")

    @app.post("/predict")
    async def predict(request: Request, top: int = 5, scheme: Optional[str] = None, threshold: float = 0.5):
        scheme = scheme or settings.scheme
        check_query(top, threshold, scheme)

        async def work(predictor, path, name, timing):
            loop = asyncio.get_running_loop()
            batcher = state["batcher"]

            def decode_then_run_alone():
                start = time.perf_counter()
                try:
                    clip = _read_clip(predictor, path, scheme)
                finally:
                    decoding.add(-1)
                timing["decode"] = time.perf_counter() - start
                try:
                    return clip, batcher.run_alone(clip.imgs)
                except Exception as error:  # noqa: BLE001 - this request's failure, not the server's
                    return clip, error

            decoding.add(1)  # the batcher waits for more clips only while some are on their way
            clip, done = await loop.run_in_executor(decoders, decode_then_run_alone)
            try:
                if isinstance(done, Exception):
                    raise done
                probs, batched = done or await batcher.submit(clip.imgs)
                timing.update(queue=batched.queued, model=batched.model, batch=batched.batch)
            except Exception as error:  # noqa: BLE001 - this request's failure, not the server's
                log.exception("the model failed on %s", name)
                raise ApiError(500, f"the model failed on this video: {type(error).__name__}: {error}") from None
            from ..inference import Prediction

            return Prediction(name, probs, predictor.top(probs, top, threshold)).to_json()

        return await run_upload(request, work)

    @app.post("/timeline")
    async def timeline(request: Request, top: int = 5, every: Optional[int] = None, threshold: float = 0.5):
        check_query(top, threshold)
        if every is not None and every < 1:
            raise ApiError(400, f"every={every}: at least 1 source frame")

        async def work(predictor, path, name, timing):
            from ..streaming.timeline import timeline as label_timeline

            def run():
                _check_video(path)
                with model_lock:
                    return label_timeline(predictor, path, every=every, top=top, threshold=threshold)

            start = time.perf_counter()
            try:
                result = await asyncio.get_running_loop().run_in_executor(decoders, run)
            except MediaError as e:
                raise ApiError(422, f"cannot read the video: {e.reason}") from None
            timing["timeline"] = time.perf_counter() - start
            return {"video": name, **result}

        return await run_upload(request, work)

    @app.websocket("/stream")
    async def stream(socket: WebSocket, every: Optional[int] = None, average: Optional[int] = None, top: int = 5,
                     threshold: float = 0.5, fps: float = 30.0):
        denied = _denied(socket.headers, socket.query_params, "/stream", settings.api_key)
        if denied:
            await socket.close(code=1008, reason=denied)
            return
        predictor = state["predictor"]
        if predictor is None:
            await socket.close(code=1013, reason="the model is loading; GET /ready says when it is ready")
            return
        await socket.accept()
        from ..streaming import Streamer

        try:
            check_query(top, threshold)
            if fps <= 0 or (every is not None and every < 1) or (average is not None and average < 1):
                raise ApiError(400, "fps must be > 0; every and average at least 1")
            streamer = Streamer(predictor, every=every, average=average, top=top, threshold=threshold, fps=fps)
        except (ApiError, UserError) as error:
            await socket.send_json({"error": getattr(error, "message", str(error))})
            await socket.close(code=1008)
            return
        open_streams.inc()
        loop = asyncio.get_running_loop()
        index = 0
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    await socket.send_json({"error": "send each frame as a binary message: a JPEG or PNG image"})
                    continue
                if len(data) > settings.max_frame_mb * 2 ** 20:
                    await socket.send_json({"error": f"a frame of {len(data) / 2 ** 20:.1f} MB: at most "
                                                     f"{settings.max_frame_mb:g} MB"})
                    continue
                try:
                    frame = await loop.run_in_executor(decoders, _decode_image, data)
                except ValueError as error:
                    await socket.send_json({"error": str(error)})
                    continue

                def step(frame=frame, index=index):
                    with model_lock:
                        return streamer.feed(index, index / fps, frame)

                result = await loop.run_in_executor(decoders, step)
                if result is not None:
                    await socket.send_json({"step": result.step, "frame_index": index, "frame": index,
                                            "time": round(result.time, 4),
                                            "top": [{"index": i, "label": n, "prob": round(p, 6)} for i, n, p in result.top],
                                            "latency_ms": round(result.latency_ms, 3)})
                index += 1
        except WebSocketDisconnect:
            pass
        finally:
            open_streams.dec()

    return app


def _server_timing(timing):
    """The W3C Server-Timing header of an upload's answer: where its time went on the server, in ms (the
    batch's size as the model entry's description)."""
    batch = timing.pop("batch", None)
    parts = []
    for name, seconds in timing.items():
        described = f';desc="batch of {batch}"' if name == "model" and batch else ""
        parts.append(f"{name}{described};dur={seconds * 1000:.1f}")
    return ", ".join(parts)


def _denied(headers, query, path, key):
    """Why a request is refused (None: it may pass). The key is compared in constant time, never logged."""
    if not key or path in OPEN_PATHS:
        return None
    given = headers.get("authorization", "")
    token = given[7:] if given.lower().startswith("bearer ") else query.get("access_token", "")
    if not hmac.compare_digest(token.encode(), key.encode()):
        return "this server needs its API key: Authorization: Bearer KEY"
    return None


class UploadLimit:
    """ASGI middleware: the body of an upload is counted as it arrives; past the limit the endpoint reads
    the end of the request, and scope["tsm.upload"] says why (it answers 413): a chunked upload with no
    declared length is not read whole."""

    def __init__(self, app, limit_bytes):
        self.app, self.limit = app, limit_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] not in UPLOAD_PATHS:
            return await self.app(scope, receive, send)
        upload = scope["tsm.upload"] = {"received": 0, "too_large": False}

        async def counting():
            if upload["too_large"]:
                return {"type": "http.disconnect"}
            message = await receive()
            upload["received"] += len(message.get("body", b""))
            if upload["received"] > self.limit:
                upload["too_large"] = True
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting, send)


def _too_large(request):
    return request.scope.get("tsm.upload", {}).get("too_large", False)


async def _save_upload(request, limit_mb):
    """The uploaded video in a temporary file -> (its path, the name to report). The size limit is checked
    on the declared length first, then on the bytes as they arrive: an upload is never held whole."""
    limit = limit_mb * 2 ** 20
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the upload is {int(declared) / 2 ** 20:.1f} MB; this server takes at most {limit_mb:g} MB "
                            "(--max-upload-mb)")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    handle, path = tempfile.mkstemp(prefix="tsm-serve-", suffix=".video")
    os.close(handle)
    try:
        if kind == "multipart/form-data":
            name = await _save_form(request, path)
        elif kind.startswith("video/") or kind == "application/octet-stream":
            name = request.headers.get("x-filename") or "upload"
            await _save_body(request, path)
        else:
            raise ApiError(415, "send the video as a multipart form field named video, or as the request body with "
                                f"Content-Type video/* or application/octet-stream (got {kind or 'none'})")
        if os.path.getsize(path) == 0:
            raise ApiError(400, "the upload is empty: send a video file")
        return path, name
    except _TooLarge:
        Path(path).unlink(missing_ok=True)
        raise ApiError(413, f"the upload is over {limit_mb:g} MB, the most this server takes (--max-upload-mb)") from None
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


async def _save_body(request, path):
    with open(path, "wb") as out:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                if _too_large(request):
                    raise _TooLarge
                raise ApiError(400, "the upload ended before its body did")
            out.write(message.get("body", b""))
            if not message.get("more_body"):
                return


async def _save_form(request, path):
    try:
        form = await request.form(max_files=1, max_fields=16)
    except Exception as error:  # noqa: BLE001 - the parser's errors all mean a malformed body
        if _too_large(request):
            raise _TooLarge from None
        raise ApiError(400, f"malformed multipart body: {error}") from None
    try:
        upload = form.get("video")
        if upload is None or isinstance(upload, str):
            fields = ", ".join(form.keys()) or "none"
            raise ApiError(400, f"the video goes in a form field named video, as a file (fields sent: {fields})")
        with open(path, "wb") as out:
            while chunk := await upload.read(1 << 20):
                out.write(chunk)
        return upload.filename or "upload"
    finally:
        await form.close()


def _check_video(path):
    """A still image or a file with no video stream is refused before the timeline reads it frame by frame."""
    from ..video import open_video

    with open_video(path, "pyav") as reader:
        if len(reader) < 2:
            raise MediaError(path, f"{len(reader)} frame(s): a still image or an empty video, not a video")


def _read_clip(predictor, path, scheme):
    try:
        clip = predictor.transform(path, scheme)
    except MediaError as e:
        raise ApiError(422, f"cannot read the video: {e.reason}") from None
    if clip.meta["total_frames"] < 2:  # sampling would repeat its one frame: an image, not a video
        raise ApiError(422, f"cannot read the video: {clip.meta['total_frames']} frame(s), a still image, not a video")
    return clip


MAX_FRAME_PIXELS = 4096 * 4096


def _decode_image(data):
    """A JPEG or PNG message -> uint8 (H, W, 3)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("JPEG", "PNG"):
            raise ValueError(f"a frame must be a JPEG or PNG image, not {image.format}")
        if image.width * image.height > MAX_FRAME_PIXELS:
            raise ValueError(f"a frame of {image.width}x{image.height}: at most {MAX_FRAME_PIXELS} pixels")
        return np.ascontiguousarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise ValueError("a frame must be a JPEG or PNG image") from None
