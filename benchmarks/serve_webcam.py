"""The demo page's webcam path at full speed: `tsm serve` of an online MobileNetV2-TSM (random weights:
speed does not depend on them), its page in headless Chromium (Debian's chromium and chromium-driver), whose
fake camera plays ../shared/fixtures/videos/demo.mp4 (340x256) over and over. The page sends 15 frames/s as
JPEG through /stream and drops a frame whenever the server is more than a step behind; after a warm-up, this
reads the page's own counters over SECONDS: frames/s the server took, frames dropped, answers/s, the
server's per-step latency (the answers' latency_ms), and where the cores went: the server's CPU time and
the whole machine's (the browser, its fake camera and its JPEG encoding run on the same cores).

    python benchmarks/serve_webcam.py [--preset tsm_mobilenetv2_dense_1x1x8_100e_k400] [--seconds 30]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import tsmcli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
from browser import fake_camera_clip, webcam_on_the_demo_page  # noqa: E402
from serve_load import cpu_seconds  # noqa: E402

from tsmcli.streaming import frames_of  # noqa: E402

DEMO = REPO.parent / "shared/fixtures/videos/demo.mp4"
COUNTERS = r"""
const answers = window.__answers || [];
return {sent: window.__sent, answers: answers.length, latency: answers.map(a => a.latency_ms),
        dropped: Number((document.getElementById("rate").textContent.match(/(\d+) dropped/) || [0, 0])[1])};
"""
# the page's counters are local to its handler: this wraps the WebSocket to count what goes through it
SPY = """
window.__sent = 0; window.__answers = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  const send = socket.send.bind(socket);
  socket.send = data => { window.__sent++; send(data); };
  socket.addEventListener("message", e => { const a = JSON.parse(e.data); if (!a.error) window.__answers.push(a); });
  return socket;
};
"""


def busy_seconds():
    """CPU seconds all cores spent busy so far (Linux: /proc/stat)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tsm_mobilenetv2_dense_1x1x8_100e_k400")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tsm-serve-webcam-"))
    model = tsmcli.build_model(args.preset, pretrained=False, model__shift_mode="online")
    checkpoint = work / "online.pth"
    tsmcli.save_checkpoint(checkpoint, model, model.preset)
    frames = [np.ascontiguousarray(frame[:256, :336]) for _, frame in frames_of(str(DEMO))[1]]  # even sizes
    clip = fake_camera_clip(frames, work / "demo.y4m", fps=25)
    with webcam_on_the_demo_page(work, clip, checkpoint, script=SPY) as (driver, server):
        time.sleep(args.warmup)
        before = driver.execute_script(COUNTERS)
        start, busy, served = time.perf_counter(), busy_seconds(), cpu_seconds(server.process.pid)
        time.sleep(args.seconds)
        after = driver.execute_script(COUNTERS)
        seconds = time.perf_counter() - start
        busy, served = busy_seconds() - busy, cpu_seconds(server.process.pid) - served
        rate = driver.find_element("id", "rate").text
    latency = after["latency"][before["answers"]:]
    print(f"{args.preset} online, {model.preset['model']['num_segments']} segments; page: {rate}")
    print("| frames/s taken | dropped/s | answers/s | step latency p50 ms | p95 ms | server cores | all cores busy |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {(after['sent'] - before['sent']) / seconds:.1f} | "
          f"{(after['dropped'] - before['dropped']) / seconds:.1f} | {len(latency) / seconds:.1f} | "
          f"{statistics.median(latency):.1f} | {sorted(latency)[int(0.95 * (len(latency) - 1))]:.1f} | "
          f"{served / seconds:.2f} of {os.cpu_count()} | {busy / (seconds * os.cpu_count()):.0%} |")


if __name__ == "__main__":
    main()
