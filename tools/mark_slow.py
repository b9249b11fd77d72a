"""Mark the slow tests: read a `pytest --durations=0` report and put `@pytest.mark.slow` on every test
function one of whose runs (setup + call) took at least --seconds, so that `pytest -m "not slow"` is the
quick loop (README, "Tests"). Functions already marked are left alone.

    python -m pytest -q --durations=0 > durations.txt; python tools/mark_slow.py durations.txt --seconds 2
"""
import argparse
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# kept in the quick loop although a few seconds long: one real run of the training loop, one step check
KEEP = {"test_toy_training_runs_logs_checkpoints_and_resumes", "test_warmup_ramps_the_lr_of_every_step"}
LINE = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(tests/[\w/]+\.py)::(\w+)")


def slow_functions(report, seconds):
    total = defaultdict(float)
    for line in Path(report).read_text().splitlines():
        m = LINE.match(line)
        if m:
            total[(m[3], m[4], line.split("::", 1)[1].split()[0])] += float(m[1])  # per parametrised run
    slow = defaultdict(set)
    for (path, function, _), spent in total.items():
        if spent >= seconds and function not in KEEP:
            slow[path].add(function)
    return slow


def mark(path, functions):
    lines = (REPO / path).read_text().splitlines(keepends=True)
    out, marked = [], 0
    for line in lines:
        m = re.match(r"def (\w+)\(", line)
        if m and m[1] in functions:
            start = len(out)  # above the function's decorators
            while start > 0 and (out[start - 1].startswith("@") or out[start - 1].startswith((" ", ")", "]"))):
                start -= 1  # (a decorator's arguments may span lines)
            if not any(d.startswith("@pytest.mark.slow") for d in out[start:]):
                out.insert(start, "@pytest.mark.slow\n")
                marked += 1
        out.append(line)
    text = "".join(out)
    if marked and not re.search(r"^import pytest$", text, re.M):
        text = re.sub(r"^(import \w+\n)", r"\1import pytest\n", text, count=1, flags=re.M)
    (REPO / path).write_text(text)
    return marked


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("report")
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    for path, functions in sorted(slow_functions(args.report, args.seconds).items()):
        print(f"{path}: {mark(path, functions)} marked")


if __name__ == "__main__":
    main()
