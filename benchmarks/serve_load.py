"""`tsm serve` under load, beside `tsm predict` over the same files in one process.

For each model and backend: the server is started as users start it, then REQUESTS uploads of the same
video are sent by CONCURRENCY client threads sharing one client (a real HTTP client, httpx, its connections
kept alive); the table gives videos/s and the p50/p95 latency, and `tsm predict`'s own time per video once
warm, measured in one process over the same files (the time between its output lines, once warm). Both read
each video as the efficient scheme does (one clip, centre crop). Weights are random: speed does not depend
on them.

Where the time goes: the mean of each answer's Server-Timing header (upload, decode, waiting for the model,
the model's batch, and the batch's size), the server's CPU seconds per video, and how busy the machine's
cores were (the server's and this client's CPU time over the wall time, per core).

    python benchmarks/serve_load.py [--models toy mobilenetv2] [--backends torch openvino] [--requests 48]

This machine's speed drifts from minute to minute (other tenants), so concurrency 1 is measured in rounds,
each right after a `tsm predict` run; its column gives their median and range.
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


def cpu_seconds(pid):
    """User + system CPU time of a process so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_timing(header):
    """'decode;dur=118.1, model;desc="batch of 2";dur=36.3' -> {"decode": 0.1181, "model": 0.0363, "batch": 2}."""
    entries = {}
    for entry in header.split(","):
        name, *params = entry.strip().split(";")
        for param in params:
            key, _, value = param.partition("=")
            if key == "dur":
                entries[name] = float(value) / 1000
            elif key == "desc" and value.strip('"').startswith("batch of "):
                entries["batch"] = int(value.strip('"').split()[-1])
    return entries


def measure(server, url, body, concurrency, requests):
    """REQUESTS uploads by CONCURRENCY threads of one client -> latencies, Server-Timing entries, wall time,
    and the server's and this process's CPU seconds over them."""
    # one client (a pool of kept-alive connections) shared by the threads, as a program calling the service
    # would hold one; a new client per request would time its TLS set-up too
    with httpx.Client(timeout=300, limits=httpx.Limits(max_connections=concurrency)) as client:

        def ask(_):
            start = time.perf_counter()
            answer = client.post(url + "/predict?scheme=efficient", files={"video": (VIDEO.name, body, "video/mp4")})
            answer.raise_for_status()
            return time.perf_counter() - start, server_timing(answer.headers["server-timing"])

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(ask, range(concurrency)))  # warm
            start, server_cpu, client_cpu = time.perf_counter(), cpu_seconds(server.pid), time.process_time()
            answers = list(pool.map(ask, range(requests)))
            return {"answers": answers, "wall": time.perf_counter() - start,
                    "server_cpu": cpu_seconds(server.pid) - server_cpu, "client_cpu": time.process_time() - client_cpu}


def summary(runs):
    answers = [a for run in runs for a in run["answers"]]
    latencies = sorted(latency for latency, _ in answers)
    wall, server_cpu = sum(run["wall"] for run in runs), sum(run["server_cpu"] for run in runs)
    parts = {name: statistics.mean(timing.get(name, 0.0) for _, timing in answers)
             for name in ("upload", "decode", "queue", "model", "batch")}
    return {"videos_per_s": len(answers) / wall, "p50": statistics.median(latencies),
            "p95": latencies[int(0.95 * (len(latencies) - 1))], **parts,
            "cpu_busy": (server_cpu + sum(run["client_cpu"] for run in runs)) / (wall * os.cpu_count()),
            "server_cpu_per_video": server_cpu / len(answers)}


def serve_beside_predict(checkpoint, videos, backend, requests, concurrencies, max_batch, rounds):
    """-> (tsm predict's s/video per round, {concurrency: summary}). Concurrency 1 is measured in ROUNDS
    parts, each after a `tsm predict` run, so that the two are timed under the same conditions of a noisy
    machine; the other concurrencies after them."""
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
        serial, rows = [], {}
        for concurrency in concurrencies:
            if concurrency == 1:
                runs = []
                for _ in range(rounds):
                    serial.append(predict_seconds_per_video(checkpoint, videos, backend))
                    runs.append(measure(server, url, body, 1, max(1, requests // rounds)))
            else:
                runs = [measure(server, url, body, concurrency, requests)]
            rows[concurrency] = summary(runs)
        if not serial:
            serial = [predict_seconds_per_video(checkpoint, videos, backend)]
        return serial, rows
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--backends", nargs="+", default=["torch", "openvino"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3, help="tsm predict runs alternating with concurrency 1")
    parser.add_argument("--files", type=int, default=12, help="videos for tsm predict's per-video time")
    parser.add_argument("--max-batch", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsm-serve-load-"))
    os.environ.setdefault("TSM_EXPORT_CACHE", str(work / "exports"))
    videos = []
    for i in range(args.files):
        videos.append(work / f"clip_{i}.mp4")
        shutil.copy(VIDEO, videos[-1])
    print("| model | backend | tsm predict s/video | concurrency | videos/s | x serial | p50 s | p95 s | p95 / predict "
          "| upload / decode / queue / model ms | batch | server CPU s/video | cores busy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = tsmcli.build_model(PRESETS[name], pretrained=False)
        checkpoint = work / f"{name}.pth"
        tsmcli.save_checkpoint(checkpoint, model, model.preset)
        for backend in args.backends:
            serial, rows = serve_beside_predict(checkpoint, videos, backend, args.requests, args.concurrency,
                                                args.max_batch, args.rounds)
            median = statistics.median(serial)
            spread = f"{median:.3f} ({min(serial):.3f}-{max(serial):.3f})" if len(serial) > 1 else f"{median:.3f}"
            for concurrency, row in rows.items():
                print(f"| {name} | {backend} | {spread} | {concurrency} | {row['videos_per_s']:.2f} | "
                      f"{row['videos_per_s'] * median:.2f} | {row['p50']:.3f} | {row['p95']:.3f} | "
                      f"{row['p95'] / median:.2f} | {row['upload'] * 1000:.0f} / {row['decode'] * 1000:.0f} / "
                      f"{row['queue'] * 1000:.0f} / {row['model'] * 1000:.0f} | {row['batch']:.1f} | "
                      f"{row['server_cpu_per_video']:.3f} | {row['cpu_busy']:.0%} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
