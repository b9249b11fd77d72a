"""The suite's own clean-up (conftest's module_dir): a module's fixture folders go when its tests pass, so
that a full run does not fill the disk with checkpoints (it did: 14 GB), and stay when one failed, to be
looked at."""
import pytest
from conftest import TESTS

pytest_plugins = "pytester"

MODULE = """
import pathlib

def test_makes_a_folder(module_dir):
    folder = module_dir("kept_for_the_module")
    (folder / "checkpoint.pth").write_bytes(b"x" * 1000)
    pathlib.Path("made.txt").write_text(str(folder))

def test_uses_it_later():
    assert pathlib.Path(pathlib.Path("made.txt").read_text(), "checkpoint.pth").is_file()  # kept to module end
    assert {outcome}
"""


@pytest.mark.parametrize("passing", [True, False], ids=["passed: removed", "failed: kept"])
def test_module_folders_go_when_the_module_passes(pytester, passing):
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(test_module=MODULE.format(outcome=passing))
    result = pytester.runpytest()
    result.assert_outcomes(passed=2 if passing else 1, failed=0 if passing else 1)
    folder = pytester.path / (pytester.path / "made.txt").read_text()
    assert folder.is_dir() != passing
