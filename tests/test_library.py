"""The library without the CLI: a user's own script behaves as the command does where it matters. It
exits by itself, promptly, with no worker process left, whether it leaves loaders half read, streams or
runs an exported model; and it changes no process-wide setting unless it asks (configure_process)."""
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import SHARED

import tsmcli

VIDEO = SHARED / "fixtures/videos/test.mp4"
EXIT_SECONDS = 60  # the work below takes a few seconds; a script that hangs at exit runs into this


@pytest.fixture(scope="module")
def toy(module_dir):
    """A toy model checkpoint (random weights) and a list of videos as mmaction2 writes them."""
    folder = module_dir("library")
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(folder / "toy.pth", model, model.preset, labels=["a", "b", "c", "d"])
    (folder / "list.txt").write_text("".join(f"{VIDEO} {i % 4}\n" for i in range(6)))
    return folder


def run_script(folder, body):
    """Run `body` as a user's script in its own process (without the suite's OMP_WAIT_POLICY, as a user
    runs it); -> (stdout, pids of the workers it reported)."""
    script = folder / "script.py"
    script.write_text(textwrap.dedent(body))
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True,
                              timeout=EXIT_SECONDS, env=environment)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"the script did not exit within {EXIT_SECONDS} s:\n{e.stdout}\n{e.stderr}") from None
    assert done.returncode == 0, done.stderr[-3000:]
    pids = [int(word) for line in done.stdout.splitlines() if line.startswith("workers ")
            for word in line.split()[1:]]
    return done.stdout, pids


def assert_gone(pids):
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} outlived the script")


LOADER = """
import tsmcli
dataset = tsmcli.build_dataset("tsm_r18_1x1x8_toy", "val", ann_file="{list}", data_prefix="")
loader = tsmcli.build_loader(dataset, batch_size=2, num_workers=2)   # persistent workers, as training has
{use}
print("workers", *[w.pid for w in loader._iterator._workers])
"""


@pytest.mark.slow
@pytest.mark.parametrize("use", [
    "batches = [batch['label'].tolist() for batch in loader]\nbatches = [batch['label'].tolist() for batch in loader]",
    "first = next(iter(loader))",
], ids=["two_whole_passes", "an_iterator_left_half_read"])
def test_a_script_with_loader_workers_exits_by_itself(toy, tmp_path, use):
    out, pids = run_script(tmp_path, LOADER.format(list=toy / "list.txt", use=use))
    assert len(pids) == 2, out
    assert_gone(pids)


@pytest.mark.slow
def test_a_script_that_predicts_and_streams_exits_and_keeps_its_settings(toy, tmp_path):
    out, _ = run_script(tmp_path, f"""
        import os, torch, tsmcli
        threads = torch.get_num_threads()
        predictor = tsmcli.load_predictor("{toy / 'toy.pth'}")
        prediction = predictor("{VIDEO}", top=2)
        print("top", prediction.top[0].label, len(prediction.top))
        steps = [r for _, r in zip(range(3), tsmcli.stream(predictor, "{VIDEO}", every=1))]
        print("stream", len(steps), steps[0].top[0].label in "abcd")
        print("unchanged", torch.get_num_threads() == threads, "OMP_WAIT_POLICY" not in os.environ)
    """)
    assert "top " in out and " 2" in out and "stream 3 True" in out, out
    assert "unchanged True True" in out, out


@pytest.mark.slow
def test_configure_process_makes_the_commands_settings_when_asked(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    script = tmp_path / "script.py"
    script.write_text("import os, tsmcli\n"
                      "done = tsmcli.configure_process(loader_workers=True)\n"
                      "import torch\n"
                      "print(done['omp_wait_policy'], os.environ['OMP_WAIT_POLICY'], done['signals'])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=environment,
                          timeout=EXIT_SECONDS)
    assert done.stdout.split() == ["PASSIVE", "PASSIVE", "False"], done.stderr


@pytest.mark.slow
def test_a_script_that_runs_an_exported_model_exits_and_keeps_its_threads(toy, tmp_path):
    exported = toy / "toy.onnx"
    made = subprocess.run([sys.executable, "-m", "tsmcli.cli", "export", str(toy / "toy.pth"), "--out",
                           str(exported)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    out, _ = run_script(tmp_path, f"""
        import torch, tsmcli
        threads = torch.get_num_threads()
        predictor = tsmcli.load_predictor("{exported}")
        print("exported", predictor.model.exported, predictor(r"{VIDEO}").top[0].label in "abcd")
        print("threads", torch.get_num_threads() == threads)
    """)
    assert "exported True True" in out and "threads True" in out, out
