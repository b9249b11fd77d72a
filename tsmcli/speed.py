"""Model speed and memory, measured as the model zoo does: batch 1, the test-time number of frames,
warm-up, then timed videos; no IO, no preprocessing."""
import resource
import statistics
import time

import torch

from .api import build_model
from .data.pipeline import output_size
from .devices import amp_dtype, resolve_device
from .train.optim import build_optimizer


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    try:  # the peak RSS of this process image: Linux's ru_maxrss keeps the parent's across fork and exec
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_model(preset, device="cpu", batch=None, iters=200, warmup=10, amp=None, channels_last=None,
                  compile=False, size=None, train=False, overrides=(), fast=False):
    """-> {"videos_per_s", "ms_per_batch", "peak_memory_mb", ...} for inference, or for a training step
    when train=True (batch None: the preset's videos_per_gpu), run by the training loop's own step with
    tsm train's defaults for amp and channels_last (None: as tsm train; "precision" says what ran). size:
    frame height and width [default: what the preset's test (or train) pipeline gives the model]. fast:
    inference on models/fast.py's path."""
    device = resolve_device(device)
    model = build_model(preset, pretrained=False, **dict(overrides)).to(device)
    cfg = model.preset
    frames = cfg["model"]["num_segments"]
    if batch is None:
        batch = cfg["data"]["videos_per_gpu"] if train else 1
    height, width = (size, size) if size else output_size(cfg["data"]["train" if train else "test"]["pipeline"])
    shape = (batch, frames, 3, height, width)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if train:
        step, precision = training_step(model, device, shape, amp, channels_last, compile)
        amp, channels_last = precision.amp, precision.channels_last
    else:
        step = _inference_step(model, device, shape, amp, bool(channels_last), compile, fast)
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    steps = max(1, iters // batch)
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    total = sum(times)
    return {"preset": cfg["name"], "device": str(device), "mode": "train" if train else "inference",
            "batch": batch, "input": list(shape), "videos": steps * batch,
            "videos_per_s": steps * batch / total, "ms_per_batch": 1e3 * statistics.median(times),
            "peak_memory_mb": _peak_memory_mb(device), "amp": amp, "channels_last": bool(channels_last),
            "compile": compile, "fast": bool(fast and not train)}


def _inference_step(model, device, shape, amp, channels_last, compile, fast):
    dtype = amp_dtype(amp, device)
    if fast:
        from .models.fast import prepare_for_inference

        converted = dtype == torch.bfloat16  # as inference.load_predictor runs it: a bf16 backbone, no autocast
        prepare_for_inference(model.eval(), dtype=dtype if converted else None)
        dtype = None if converted else dtype
    elif channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if compile else model
    model.eval()
    x = torch.randn(shape, device=device)

    @torch.no_grad()
    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            runner(x)

    return step


def training_step(model, device, shape, amp, channels_last, compile):
    """One step of the training loop's own train_step on a random batch, with the precision tsm train
    would resolve from these options; -> (step, Precision)."""
    from types import SimpleNamespace

    import numpy as np

    from .train.loop import train_step
    from .train.losses import training_loss
    from .train.precision import resolve_precision

    cfg = model.preset
    precision, _ = resolve_precision(channels_last, amp, device, advise=False)
    model = model.to(device, memory_format=torch.channels_last if precision.channels_last else torch.preserve_format)
    model.train()
    classes = cfg["model"]["num_classes"]
    labels = (torch.randint(0, 2, (shape[0], classes)).float() if model.multi_label
              else torch.randint(classes, (shape[0],)))
    data = {"imgs": torch.randn(shape), "label": labels}
    run = SimpleNamespace(options=SimpleNamespace(accumulation=1), device=device, cfg=cfg, model=model,
                          net=torch.compile(model) if compile else model, world=1, precision=precision,
                          optimizer=build_optimizer(model, cfg["optimizer"], cfg["optimizer"]["lr"]),
                          autocast_dtype=amp_dtype(precision.amp, device),
                          loss_of=training_loss(cfg["model"], model.multi_label),
                          scaler=torch.amp.GradScaler("cuda", enabled=precision.amp == "fp16"))
    rng = np.random.default_rng(0) if cfg["train"]["blending"] else None
    return (lambda: train_step(run, data, cfg["optimizer"]["lr"], rng=rng)), precision


def measure_exported(model, batches=(1,), iters=200, warmup=3, size=None):
    """An exported model (runtime/exported.py) timed in its engine on the CPU, at the frame size it was
    exported for; -> one result per batch size, as measure_model's."""
    height, width = size or model.metadata["input"][3:]
    results = []
    for batch in batches:
        x = torch.randn(batch, model.num_segments, 3, height, width)
        model.engine.prepare([x.shape])
        for _ in range(warmup):
            model(x)
        times = []
        steps = max(1, iters // batch)
        for _ in range(steps):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
        results.append({"preset": model.preset["name"], "device": "cpu",
                        "mode": f"inference, {model.backend} {model.precision}", "batch": batch, "input": list(x.shape),
                        "videos": steps * batch, "videos_per_s": steps * batch / sum(times),
                        "ms_per_batch": 1e3 * statistics.median(times),
                        "peak_memory_mb": _peak_memory_mb(torch.device("cpu")), "backend": model.backend,
                        "precision": model.precision, "file": model.path})
    return results


def measure_preset_exported(preset, backend, batches=(1,), iters=200, precision="fp32"):
    """The preset's model (random weights) exported for `backend` (onnxruntime: fp32 or the fp16 graph;
    openvino: fp32, run at bf16 when asked), verified, and timed as measure_exported times it."""
    import tempfile
    from pathlib import Path

    from .export.whole import export_model
    from .runtime.exported import open_exported

    model = build_model(preset, pretrained=False).eval()
    height, width = output_size(model.preset["data"]["test"]["pipeline"])
    graph = "fp16" if precision == "fp16" else "fp32"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("model.xml" if backend == "openvino" else "model.onnx")
        export_model(model, path, height, width, precision=graph, format="openvino" if backend == "openvino" else "onnx")
        exported = open_exported(path, precision=precision if backend == "openvino" else None)
        return measure_exported(exported, batches, iters, size=(height, width))
