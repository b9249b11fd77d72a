"""`tsm serve` under load, beside `tsm predict` over the same files in one process.

For each model and backend: the server is started as users start it, then REQUESTS uploads of the same
video are sent by CONCURRENCY client threads (a real HTTP client, httpx); the table gives videos/s and the
p50/p95 latency, and `tsm predict`'s own time per video once warm, measured in one process over the same
files (the time between its output lines, once warm). Both read each video as the efficient
scheme does (one clip, centre crop). Weights are random: speed does not depend on them.

    python benchmarks/serve_load.py [--models toy mobilenetv2] [--backends torch openvino] [--requests 48]
"""
import argparse
import concurrent.futures
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import tsmcli

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared/fixtures/videos/test.mp4"
PRESETS = {"toy": "tsm_r18_1x1x8_toy", "mobilenetv2": "tsm_mobilenetv2_dense_1x1x8_100e_k400"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def predict_seconds_per_video(checkpoint, videos, backend):
    """`tsm predict` over the files in one process, once warm: the time between its first and its last
    output line over the files between them (start-up and model loading left out)."""
    process = subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "predict", *map(str, videos), "--ckpt",
                                str(checkpoint), "--json", "--device", "cpu", "--backend", backend, "--scheme",
                                "efficient"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})  # each line as it is printed
    times = [time.perf_counter() for _ in process.stdout]
    if process.wait() != 0 or len(times) != len(videos):
        raise RuntimeError(f"tsm predict failed on {checkpoint} ({backend})")
    return (times[-1] - times[1]) / (len(times) - 2)  # from the second: the first warms the model


def serve(checkpoint, backend, requests, concurrencies, max_batch):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tsmcli.cli", "serve", str(checkpoint), "--port", str(port),
                               "--device", "cpu", "--backend", backend, "--max-batch", str(max_batch)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        body = VIDEO.read_bytes()

        def ask(_):
            start = time.perf_counter()
            answer = httpx.post(url + "/predict?scheme=efficient", files={"video": (VIDEO.name, body, "video/mp4")},
                                timeout=300)
            answer.raise_for_status()
            return time.perf_counter() - start

        rows = {}
        for concurrency in concurrencies:
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(ask, range(concurrency)))  # warm
                start = time.perf_counter()
                latencies = sorted(pool.map(ask, range(requests)))
                wall = time.perf_counter() - start
            rows[concurrency] = {"videos_per_s": requests / wall, "p50": statistics.median(latencies),
                                 "p95": latencies[int(0.95 * (len(latencies) - 1))]}
        return rows
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--files", type=int, default=12, help="videos for tsm predict's per-video time")
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsm-serve-load-"))
    os.environ.setdefault("TSM_EXPORT_CACHE", str(work / "exports"))
    videos = []
    for i in range(args.files):
        videos.append(work / f"clip_{i}.mp4")
        shutil.copy(VIDEO, videos[-1])
    print("| model | backend | tsm predict s/video | concurrency | videos/s | x serial | p50 s | p95 s | p95 / predict |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = tsmcli.build_model(PRESETS[name], pretrained=False)
        checkpoint = work / f"{name}.pth"
        tsmcli.save_checkpoint(checkpoint, model, model.preset)
        for backend in args.backends:
            serial = predict_seconds_per_video(checkpoint, videos, backend)
            for concurrency, row in serve(checkpoint, backend, args.requests, args.concurrency, args.max_batch).items():
                print(f"| {name} | {backend} | {serial:.3f} | {concurrency} | {row['videos_per_s']:.2f} | "
                      f"{row['videos_per_s'] * serial:.2f} | {row['p50']:.3f} | {row['p95']:.3f} | "
                      f"{row['p95'] / serial:.2f} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
