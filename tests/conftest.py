import json
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(TESTS))

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def mmaction_outputs():
    return json.loads((TESTS / "data/mmaction/outputs.json").read_text())["cases"]


@pytest.fixture(scope="session")
def mmaction_configs():
    return json.loads((TESTS / "data/mmaction/configs.json").read_text())["configs"]
