import json
import os
import shutil
import sys
from pathlib import Path

# Two test processes share the cores (scripts/test.sh), each with torch's threads and the tsm processes it
# starts, where spinning OpenMP threads take the cores from each other (docs/benchmarks.md, "Under load").
# Set before torch loads libgomp; the tsm
# processes the tests start inherit it, as they would a user's setting. It changes waiting, not results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

TESTS = Path(__file__).parent
REPO = TESTS.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(TESTS))

torch.set_num_threads(2)

# The longest test files first (their summed durations on 2 cores, from a durations report): with the suite
# on two processes (scripts/test.sh), each file is one unit of work, and starting the long ones first keeps one
# process from finishing alone at the end. scripts/test.sh passes --no-loadscope-reorder, without which
# pytest-xdist would start the files with the most tests first, whatever their time.
LONGEST_FIRST = ["test_export.py", "test_doc_examples.py", "test_toy_accuracy.py", "test_robustness.py",
                 "test_distributed.py", "test_package.py", "test_train.py", "test_serve.py", "test_cli.py",
                 "test_features.py", "test_multilabel.py", "test_own_videos.py", "test_fast.py",
                 "test_presets_import.py", "test_train_step.py", "test_library.py", "test_evaluate.py",
                 "test_installed.py", "test_viz.py", "test_stream.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its order


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory, request):
    """Makes folders for a module's fixtures, removed when the module's tests are done (tmp_path_factory keeps
    them to the end of the run: gigabytes of checkpoints) unless one of its tests failed."""
    made, failed_before = [], request.session.testsfailed

    def make(name):
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield make
    if request.session.testsfailed == failed_before:
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def mmaction_outputs():
    return json.loads((TESTS / "data/mmaction/outputs.json").read_text())["cases"]


@pytest.fixture(scope="session")
def mmaction_configs():
    return json.loads((TESTS / "data/mmaction/configs.json").read_text())["configs"]
