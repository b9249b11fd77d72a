"""Frame extraction speed against decode-only speed on the same videos and the same number of processes.

    python benchmarks/extraction.py [--copies 8] [--workers 2] [--size short256]

Target (prepare issue): extraction frames/s >= 0.5 x decode-only frames/s.
"""
import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tsmcli.prepare.extract import Job, extract_frames, parse_size, run_jobs

SHARED = Path(__file__).resolve().parents[2] / "shared"


def decode_only(path):
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    count = 0
    try:
        while True:
            reader.next()
            count += 1
    except StopIteration:
        return count


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8, help="times each fixture video is processed")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--size", default="short256")
    args = parser.parse_args()
    videos = [str(p) for p in sorted((SHARED / "fixtures/videos").glob("*.mp4"))] * args.copies
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(decode_only, videos[:2]))
        start = time.perf_counter()
        frames = sum(pool.map(decode_only, videos))
        decode_fps = frames / (time.perf_counter() - start)
    out = tempfile.mkdtemp()
    try:
        jobs = [Job(v, os.path.join(out, f"v{i}")) for i, v in enumerate(videos)]
        result = run_jobs(jobs, extract_frames, workers=args.workers, size=parse_size(args.size))
        extract_fps = sum(result["frames"].values()) / result["seconds"]
    finally:
        shutil.rmtree(out)
    print(f"{len(videos)} videos, {frames} frames, {args.workers} processes, size {args.size}")
    print(f"decode only {decode_fps:.0f} frames/s, extraction {extract_fps:.0f} frames/s, "
          f"ratio {extract_fps / decode_fps:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
