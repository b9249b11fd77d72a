"""Parameters and FLOPs per clip equal mmaction2 0.24.1's tools/analysis/get_flops.py (mmcv's counter),
on figures it printed for R50 (8 and 16 segments), R101 and MobileNetV2 (tests/data/mmaction/flops.json)."""
import json
import subprocess
import sys

import pytest
from conftest import REPO

import tsmcli
from tsmcli.complexity import count_complexity

CASES = json.loads((REPO / "tests/data/mmaction/flops.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["config"] for c in CASES])
def test_params_and_flops_equal_mmaction2_get_flops(case):
    model = tsmcli.build_model(case["config"], pretrained=False)  # zoo names are preset names
    frames, _, height, width = case["shape"]
    counted = count_complexity(model, frames, height, width)
    assert counted["params"] == case["params"]
    assert counted["flops"] == case["flops"]


@pytest.mark.slow
def test_benchmark_model_prints_them():
    run = subprocess.run([sys.executable, "-m", "tsmcli.cli", "benchmark", "model", "-p", "tsm_r18_1x1x8_toy",
                          "--iters", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert "M parameters" in text and "GFLOPs per clip of 8x56x56" in text
    assert "mean video/s" in text and "median ms/batch" in text
