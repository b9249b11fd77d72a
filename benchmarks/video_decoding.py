"""The decoding measurements behind docs/benchmarks.md's data-pipeline findings, on demo.mp4:

1. decord's 8-frame training fetch on the original video vs re-encoded copies with a keyframe every
   16 and 8 frames (what `tsm prepare --resize-videos` writes, GOP 16), and with 2 decoder threads;
2. a full decode with and without FFmpeg's skip_frame=NONREF (PyAV), frames decoded and time;
3. decord opening the video from its path vs from bytes in memory (mmaction2 opens from bytes);
4. JPEG decode and encode of the video's frames: torchvision (libjpeg-turbo, batched) vs Pillow.

    python benchmarks/video_decoding.py [--rounds 20]
"""
import argparse
import io
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import decord
import numpy as np
import torch

from tsmcli.prepare.extract import Job, resize_video

DEMO = Path(__file__).resolve().parents[2] / "shared/fixtures/videos/demo.mp4"


def timed(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def train_fetch(source, rng, threads=1):
    reader = decord.VideoReader(source, num_threads=threads)
    segment = len(reader) // 8
    reader.get_batch(np.arange(8) * segment + rng.integers(segment, size=8)).asnumpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        copies = {}
        for gop in (16, 8):
            copies[gop] = str(Path(tmp) / f"gop{gop}.mp4")
            resize_video(Job(str(DEMO), copies[gop]), size=("short", 256), gop=gop)
        original = timed(lambda: train_fetch(str(DEMO), rng), args.rounds)
        print(f"1. 8-frame train fetch: original {original:.1f} ms", end="")
        for gop, path in copies.items():
            ms = timed(lambda p=path: train_fetch(p, rng), args.rounds)
            print(f", GOP {gop} {ms:.1f} ms ({original / ms:.2f}x, file {Path(path).stat().st_size / DEMO.stat().st_size:.2f}x)",
                  end="")
        print()
        two = timed(lambda: train_fetch(str(DEMO), rng, threads=2), args.rounds)
        print(f"   original with 2 decoder threads: {two:.1f} ms ({original / two:.2f}x; both use 1 in loaders, "
              f"where the workers already share the cores)")

    import av

    def decode_all(mode):
        with av.open(str(DEMO)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            stream.codec_context.skip_frame = mode
            return sum(1 for _ in container.decode(stream))

    for mode in ("DEFAULT", "NONREF"):
        frames = decode_all(mode)
        print(f"2. full decode, skip_frame={mode}: {frames} frames, {timed(lambda m=mode: decode_all(m), 5):.1f} ms")

    data = DEMO.read_bytes()
    from_path = timed(lambda: train_fetch(str(DEMO), rng), args.rounds)
    from_memory = timed(lambda: train_fetch(io.BytesIO(data), rng), args.rounds)
    print(f"3. train fetch from path {from_path:.1f} ms, from memory {from_memory:.1f} ms "
          f"({from_path / from_memory:.2f}x)")

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg
        frames = decord.VideoReader(str(DEMO), num_threads=1).get_batch(list(range(64))).asnumpy()
        chw = list(torch.from_numpy(frames).permute(0, 3, 1, 2))
        tv_encode = timed(lambda: encode_jpeg(chw, quality=95), 5)
        encoded = [bytes(e.numpy()) for e in encode_jpeg(chw, quality=95)]
        tensors = [torch.frombuffer(bytearray(e), dtype=torch.uint8) for e in encoded]
        tv_decode = timed(lambda: decode_jpeg(tensors, mode=ImageReadMode.RGB), 5)

    def pil_encode():
        for f in frames:
            Image.fromarray(f).save(io.BytesIO(), format="JPEG", quality=95)

    def pil_decode():
        for e in encoded:
            np.asarray(Image.open(io.BytesIO(e)).convert("RGB"))

    pil_e, pil_d = timed(pil_encode, 5), timed(pil_decode, 5)
    n = len(frames)
    print(f"4. JPEG, {n} frames of {frames.shape[2]}x{frames.shape[1]}: encode torchvision {n / tv_encode * 1e3:.0f} "
          f"vs Pillow {n / pil_e * 1e3:.0f} frames/s; decode torchvision {n / tv_decode * 1e3:.0f} vs Pillow "
          f"{n / pil_d * 1e3:.0f} frames/s")


if __name__ == "__main__":
    main()
