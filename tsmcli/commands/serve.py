"""`tsm serve`: a model behind an HTTP and WebSocket service, with a demo page."""
import os
import signal
from typing import Optional

import typer

from . import options


def serve(
    model: str = typer.Argument(..., help=options.CHECKPOINT_HELP),
    preset: Optional[str] = options.preset(required=False),
    backend: str = options.backend(),
    device: str = options.device(),
    amp: Optional[str] = options.amp(),
    fast: bool = options.fast(),
    scheme: str = typer.Option("preset", help="The default scheme of /predict (as in tsm test)."),
    host: str = typer.Option("127.0.0.1", help="The address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="The port (0: any free one, printed at start)."),
    max_batch: int = typer.Option(8, min=1, help="Clips of concurrent /predict requests run together, at most."),
    max_wait_ms: float = typer.Option(10.0, min=0.0, help="How long a clip waits for others to fill its batch."),
    max_queue: int = typer.Option(64, min=1, help="Uploads served at once; beyond: 503 with Retry-After."),
    max_upload_mb: float = typer.Option(200.0, min=0.001, help="The largest upload taken (413 beyond)."),
    api_key: Optional[str] = typer.Option(None, envvar="TSM_API_KEY", show_envvar=True,
                                          help="Require Authorization: Bearer KEY on every endpoint but /health."),
    decoder: Optional[str] = options.decoder(),
):
    """Serve a model: POST /predict and /timeline (a video), WS /stream (frames, online), GET /info, /health,
    /ready, /metrics and a demo page at / (files and the webcam). SIGTERM or Ctrl-C: requests in flight
    complete, then it exits; a second signal stops at once. Needs tsm[serve].

    Examples:

      tsm serve work_dirs/tsm_r18_1x1x8_toy/best.pth --port 8000

      curl -F video=@clip.mp4 http://127.0.0.1:8000/predict
    """
    from ..process import configure_process

    configure_process()  # the server handles SIGINT and SIGTERM itself: it finishes what is in flight
    from ..errors import UserError

    try:
        import uvicorn

        from ..serve.app import Settings, create_app
    except ImportError:
        raise UserError("tsm serve needs the serve extra: pip install 'tsm[serve]'") from None
    from ..devices import resolve_device
    from ..export.cache import load_predictor_on
    from ..inference import decoder_override

    resolved = resolve_device(device)
    overrides = decoder_override(decoder)

    def load():
        return load_predictor_on(backend, model, preset=preset, device=resolved, fast=fast, amp=amp,
                                 say=lambda message: typer.echo(message, err=True), **overrides)

    settings = Settings(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue,
                        max_upload_mb=max_upload_mb, api_key=api_key or None, scheme=scheme)
    app = create_app(load, settings)
    _redact_keys_in_logs()
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info",
                            timeout_graceful_shutdown=30, ws_max_size=int(settings.max_frame_mb * 2 ** 20) + 1024)
    typer.echo(f"serving {model} on http://{host}:{port} (pid {os.getpid()}); /ready says when the model is loaded",
               err=True)
    for stop in (signal.SIGINT, signal.SIGTERM):
        # uvicorn handles the signals while it serves, then raises the one it caught again so that the
        # process ends by it; the service ended as asked, so the command exits 0
        signal.signal(stop, lambda *_: None)
    uvicorn.Server(config).run()


class _RedactKeys:
    """A logging filter: uvicorn logs each WebSocket's path with its query, where a browser puts its key
    (access_token): the key never reaches a log."""

    def filter(self, record):
        import re

        if record.args:
            record.args = tuple(re.sub(r"access_token=[^&\s\"]*", "access_token=***", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def _redact_keys_in_logs():
    import logging

    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_RedactKeys())
