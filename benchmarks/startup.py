"""Wall time of short `tsm` commands, which start-up dominates (imports), for two checkouts side by side.

    python benchmarks/startup.py --before /tmp/old_checkout --rounds 5

Each round runs every command once per checkout, alternating, in fresh processes (PYTHONPATH points
`tsmcli` at the checkout); the table gives the median seconds and the ratio before / after. Without
--before only this checkout is timed.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared/fixtures/videos"


def commands(scratch):
    """(name, argv) of the commands timed; a two-class folder of the shared test videos for prepare, and
    a toy R18 checkpoint (random weights: the time is the same) for predict."""
    mine = scratch / "mine"
    for cls, video in (("a", "demo.mp4"), ("b", "test.mp4")):
        (mine / "videos" / cls).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            shutil.copy(VIDEOS / video, mine / "videos" / cls / f"{i}.mp4")
    checkpoint = scratch / "toy.pth"
    if not checkpoint.exists():
        subprocess.run([sys.executable, "-c", "import sys, tsmcli; m = tsmcli.build_model('tsm_r18_1x1x8_toy', "
                        "pretrained=False); tsmcli.save_checkpoint(sys.argv[1], m, m.preset)", checkpoint],
                       env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    return [("tsm --help", ["--help"]),
            ("tsm presets list", ["presets", "list"]),
            ("tsm prepare custom (4 videos)", ["prepare", "custom", "--root", str(mine)]),
            ("tsm benchmark model (R18 toy preset, 1 clip)", ["benchmark", "model", "--preset", "tsm_r18_1x1x8_toy",
                                                              "--iters", "1", "--device", "cpu"]),
            ("tsm predict (R18 toy checkpoint, a 10 s video)", ["predict", str(VIDEOS / "test.mp4"), "--ckpt",
                                                                str(checkpoint)])]


def checked(source):
    """source, after checking that PYTHONPATH makes `tsmcli` that checkout's (not the installed one)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    found = subprocess.run([sys.executable, "-c", "import tsmcli; print(tsmcli.__file__)"], env=env,
                           capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.strip()
    if not found.startswith(str(source)):
        raise SystemExit(f"PYTHONPATH={source} imports tsmcli from {found}")
    return source


def run(source, argv, cwd):
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tsmcli.cli", *argv], cwd=cwd, env=env, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"{source}: tsm {' '.join(argv)} failed:\n{done.stderr.decode()[-2000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout of tsm to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sources = {"after": checked(REPO), **({"before": checked(args.before.resolve())} if args.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        names = [name for name, _ in commands(scratch)]
        timed = {(name, label): [] for name in names for label in sources}
        for _ in range(args.rounds):
            for name, argv in commands(scratch):
                for label, source in sources.items():
                    timed[name, label].append(run(source, argv, scratch))
    print(f"median of {args.rounds} rounds, seconds")
    for name in names:
        after = statistics.median(timed[name, "after"])
        if "before" in sources:
            before = statistics.median(timed[name, "before"])
            print(f"{name:48s} before {before:6.2f}  after {after:6.2f}  {before / after:5.1f}x")
        else:
            print(f"{name:48s} {after:6.2f}")


if __name__ == "__main__":
    main()
