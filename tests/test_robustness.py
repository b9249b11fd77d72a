"""Nothing lost when runs collide or files break: the work-dir lock, resuming past a damaged checkpoint,
a full disk at a checkpoint or a list, unique temporary names, and log files closed after a run. Runs go
through the CLI with the toy preset's loader workers, as users start them."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from multiprocessing import get_context

import pytest
import torch
from toy_runs import finished, tsm_train, write_run_yaml

import tsmcli
from tsmcli.atomic import DiskFull, write_text
from tsmcli.checkpoint import read_checkpoint
from tsmcli.errors import UserError
from tsmcli.prepare.toy import prepare_toy


@pytest.fixture(scope="module")
def toy(module_dir):
    root = module_dir("robust")
    prepare_toy(root / "toy", train_per_class=3, val_per_class=1, seed=0)
    write_run_yaml(root / "run.yaml", root / "toy", videos_per_gpu=2, epochs=2)
    write_run_yaml(root / "run3.yaml", root / "toy", videos_per_gpu=2, epochs=3)
    return root


def _wait_for(predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_a_second_run_into_a_busy_work_dir_is_refused_naming_the_first(toy):
    work = toy / "busy"
    first = tsm_train("--preset", toy / "run.yaml", "--work-dir", work)
    lock = work / ".tsm-run.lock"
    try:
        assert _wait_for(lambda: (work / "log.txt").exists() and lock.exists() and lock.read_text().strip())
        holder = json.loads(lock.read_text())
        assert holder["pid"] == first.pid
        code, output = finished(tsm_train("--preset", toy / "run.yaml", "--work-dir", work))
        assert code == 2
        assert f"pid {first.pid}" in output and "is in use by another training run" in output
        assert "--work-dir" in output and "--resume auto" in output
    finally:
        first.kill()  # a killed holder leaves no stale lock: the kernel drops it
        finished(first)
    code, output = finished(tsm_train("--preset", toy / "run.yaml", "--work-dir", work, "--resume", "auto"))
    assert code == 0, output


@pytest.mark.slow
def test_resume_auto_passes_over_a_damaged_latest_to_the_newest_readable_epoch(toy):
    work = toy / "damaged"
    assert finished(tsm_train("--preset", toy / "run.yaml", "--work-dir", work))[0] == 0
    intact = work.parent / "intact_latest.pth"
    intact.write_bytes((work / "latest.pth").read_bytes())
    data = (work / "latest.pth").read_bytes()
    (work / "latest.pth").write_bytes(data[: len(data) // 3])  # a copy cut short
    code, output = finished(tsm_train("--preset", toy / "run3.yaml", "--work-dir", work, "--resume", "auto"))
    assert code == 0, output
    assert "passing over latest.pth" in output and "cut short" in output and "weights_only" not in output
    assert "resuming from epoch_2.pth (epoch 2)" in output
    # the same as resuming from the intact latest.pth (the end of epoch 2 either way)
    reference = toy / "reference"
    reference.mkdir()
    (reference / "latest.pth").write_bytes(intact.read_bytes())
    assert finished(tsm_train("--preset", toy / "run3.yaml", "--work-dir", reference, "--resume", "auto"))[0] == 0
    ours, theirs = (torch.load(w / "latest.pth", weights_only=True)["state_dict"] for w in (work, reference))
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_changed_byte_is_recognised_before_anything_starts_from_it(tmp_path):
    from tsmcli.checkpoint import save_checkpoint

    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    path = save_checkpoint(tmp_path / "a.pth", model, tsmcli.load_preset("tsm_r18_1x1x8_toy"), epoch=1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="is damaged: its content does not match the hash"):
        read_checkpoint(path)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(UserError, match=r"empty \(0 bytes\)"):
        read_checkpoint(tmp_path / "empty.pth")


@pytest.mark.slow
def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_says_how_to_go_on(toy, monkeypatch, capsys):
    """ENOSPC injected while the epoch-2 checkpoint is being written, in the CLI's own process."""
    import tsmcli.checkpoint as checkpoint
    from tsmcli import cli

    work = toy / "full"
    real_save, calls = torch.save, []

    def filling_save(obj, f, *args, **kwargs):
        calls.append(obj["epoch"])
        if obj["epoch"] == 2:
            f.write(b"PK\x03\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", filling_save)
    monkeypatch.setattr(sys, "argv", ["tsm", "train", "--preset", str(toy / "run.yaml"), "--work-dir", str(work),
                                      "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "no space left on device" in err and str(work.resolve()) in " ".join(err.split())
    assert "MB needed" in err and "--resume auto" in err
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    assert read_checkpoint(work / "latest.pth")["epoch"] == 1
    assert not [p.name for p in work.iterdir() if ".tmp" in p.name]


def test_a_full_disk_at_a_list_keeps_the_previous_list(tmp_path, monkeypatch):
    import tsmcli.atomic as atomic

    target = tmp_path / "train_list.txt"
    write_text(target, "a.mp4 0\n")
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EDQUOT, "quota")))
    with pytest.raises(DiskFull, match=f"in {tmp_path}"):
        write_text(target, "b.mp4 1\n" * 1000)
    assert target.read_text() == "a.mp4 0\n" and os.listdir(tmp_path) == ["train_list.txt"]


def _write_many(args):
    path, tag = args
    for _ in range(40):
        write_text(path, f"{tag}\n" * 2000)
    return True


def test_two_processes_writing_one_list_never_share_a_temporary_file(tmp_path):
    """`tsm prepare ... --shard i/n` processes on one root both write label_map.txt."""
    target = tmp_path / "label_map.txt"
    with get_context("fork").Pool(2) as pool:
        assert pool.map(_write_many, [(target, "a"), (target, "b")]) == [True, True]
    assert set(target.read_text().split()) in ({"a"}, {"b"}) and os.listdir(tmp_path) == ["label_map.txt"]


@pytest.mark.slow
def test_training_twice_in_one_process_leaves_no_file_open(toy):
    from tsmcli.train.loop import train

    def open_files():
        return sorted(os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                      if os.path.exists(f"/proc/self/fd/{fd}"))

    cfg = tsmcli.load_preset(str(toy / "run.yaml"), ["schedule.epochs=1"])
    for run in ("fd_1", "fd_2"):
        train(cfg, toy / run, device="cpu", echo=None)
    assert (toy / "fd_2" / "log.jsonl").exists()
    assert [f for f in open_files() if str(toy) in f] == []  # log.txt, log.jsonl, TensorBoard's events


@pytest.mark.slow
def test_signals_end_the_lock_with_the_run(toy):
    work = toy / "signalled"
    proc = tsm_train("--preset", toy / "run.yaml", "--work-dir", work)
    assert _wait_for(lambda: (work / "log.jsonl").exists() and '"iter": 2' in (work / "log.jsonl").read_text())
    proc.send_signal(signal.SIGTERM)
    assert finished(proc)[0] == 128 + signal.SIGTERM
    code, output = finished(tsm_train("--preset", toy / "run.yaml", "--work-dir", work, "--resume", "auto"))
    assert code == 0, output


def _numeric_options():
    """(command, option name, its typer OptionInfo) for every int or float option of every command."""
    import inspect
    import typing

    from typer.models import OptionInfo

    from tsmcli.cli import app

    def numeric(annotation):
        args = typing.get_args(annotation)
        return annotation in (int, float) or any(numeric(a) for a in args if a is not type(None))

    def walk(typer_app, path):
        callbacks = [(c.name or c.callback.__name__, c.callback) for c in typer_app.registered_commands]
        if typer_app.registered_callback is not None:  # a group's own options (tsm benchmark --batch)
            callbacks.append(("", typer_app.registered_callback.callback))
        for command, callback in callbacks:
            for name, param in inspect.signature(callback).parameters.items():
                if isinstance(param.default, OptionInfo) and numeric(param.annotation):
                    yield " ".join(path + [command]).strip(), name, param.default
        for group in typer_app.registered_groups:
            yield from walk(group.typer_instance, path + [group.name])

    return list(walk(app, []))


def test_every_numeric_option_has_a_bound():
    options = _numeric_options()
    assert len(options) > 20 and any(name == "batch" for _, name, _ in options)
    assert [f"{command} --{name}" for command, name, info in options if info.min is None] == []


@pytest.mark.parametrize("args", [
    ["benchmark", "model", "-p", "tsm_r18_1x1x8_toy", "--batch", "0"],
    ["test", "x.pth", "--batch-size", "0"],
    ["train", "-p", "tsm_r18_1x1x8_toy", "--accumulate", "0"],
    ["prepare", "custom", "--root", "x", "--workers", "0"],
    ["stream", "x.mp4", "--ckpt", "x.pth", "--fps", "0"],
    ["predict", "x.mp4", "--ckpt", "x.pth", "--top", "0"],
])
def test_an_impossible_number_is_refused_at_the_option(args):
    import subprocess

    result = subprocess.run([sys.executable, "-m", "tsmcli", *args], capture_output=True, text=True)
    assert result.returncode == 2 and "Invalid value for" in result.stderr and "Traceback" not in result.stderr


def _children(pid):
    """The pids whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _stop_and_check(args, cwd, ready, delay, sig, whole_group):
    """Start `tsm ARGS`; once ready() holds (and `delay` s later) send `sig` to the main process or its
    whole group; it must end within 8 s with 128 + sig, leaving none of its worker processes alive.
    -> (seconds to stop, workers it had), or None when it finished first."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "tsmcli", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: proc.poll() is not None or ready(proc), timeout=120)
    time.sleep(delay)
    workers = _children(proc.pid)
    if proc.poll() is not None:
        return None  # finished before the signal: nothing to check at this moment
    (os.killpg if whole_group else os.kill)(proc.pid, sig)
    start = time.time()
    try:
        proc.wait(timeout=8)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"tsm {args[0]}: still running 8 s after {signal.Signals(sig).name}") from None
    assert proc.returncode == 128 + sig, proc.stderr.read()
    assert _wait_for(lambda: not any(_alive(w) for w in workers), timeout=5), "a worker outlived its parent"
    return time.time() - start, len(workers)


@pytest.fixture(scope="module")
def many_videos(module_dir):
    from conftest import SHARED

    root = module_dir("signals")
    for cls in ("a", "b"):
        (root / "videos" / cls).mkdir(parents=True)
        for i in range(5):
            (root / "videos" / cls / f"v{i}.mp4").write_bytes((SHARED / "fixtures/videos/demo.mp4").read_bytes())
    return root


@pytest.mark.slow
@pytest.mark.parametrize("whole_group", [False, True], ids=["main process", "process group"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_prepare_with_frames_stops_on_a_signal_and_a_rerun_completes(many_videos, sig, whole_group):
    """Three moments each (checking the videos, extracting, near the end): a one-in-three hang is caught."""
    args = ["prepare", "custom", "--root", str(many_videos), "--frames", "short64", "--workers", "2"]

    def extracting(proc):  # a folder of this run's workers: a killed run's leftovers name pids gone
        workers = {str(pid) for pid in _children(proc.pid)}
        return any(p.name.rsplit(".tmp-", 1)[1] in workers for p in (many_videos / "rawframes").rglob("*.tmp-*"))

    moments = [(lambda proc: len(_children(proc.pid)) >= 2, 0.0),  # checking the videos
               (extracting, 0.0), (extracting, 1.0)]                 # extracting frames, then well into it
    stopped = [_stop_and_check(args, many_videos, ready, delay, sig, whole_group) for ready, delay in moments]
    assert all(s is not None and s[1] >= 2 for s in stopped[:2]), stopped  # each met both workers at work
    import subprocess

    done = subprocess.run([sys.executable, "-m", "tsmcli", *args, "--json"], cwd=many_videos, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    frames = sorted((many_videos / "rawframes").rglob("*.jpg"))
    assert len(frames) == 10 * 280 and not list((many_videos / "rawframes").rglob("*.tmp-*"))
    from tsmcli.video import read_rawframes

    for folder in {f.parent for f in frames}:
        assert read_rawframes(str(folder), "img_{:05d}.jpg", [1, 280]).shape[0] == 2
    import shutil

    shutil.rmtree(many_videos / "rawframes")


@pytest.fixture(scope="module")
def trained(toy):
    work = toy / "for_test"
    assert finished(tsm_train("--preset", toy / "run.yaml", "--work-dir", work, "--set", "schedule.epochs=1"))[0] == 0
    return work


@pytest.mark.slow
def test_test_and_its_loader_workers_stop_on_a_signal(many_videos, toy, trained):
    """tsm test with the preset's 2 loader workers, each signal to the main process and to the group."""
    import subprocess

    work = trained
    listed = toy / "many.txt"
    listed.write_text("".join(f"{c}/v{i}.mp4 0\n" for c in "ab" for i in range(5)) * 4)
    args = ["test", str(work / "latest.pth"), "--list", str(listed), "--data-root", str(many_videos / "videos"),
            "--device", "cpu"]
    for sig in (signal.SIGINT, signal.SIGTERM):
        for whole_group in (False, True):
            result = _stop_and_check(args, toy, lambda proc: len(_children(proc.pid)) >= 2, 1.0, sig, whole_group)
            assert result is not None and result[1] >= 2
    assert subprocess.run([sys.executable, "-m", "tsmcli", *args], cwd=toy, capture_output=True).returncode == 0


@pytest.mark.slow
def test_loader_commands_let_their_threads_sleep_unless_the_user_said_otherwise():
    """Each command states its process settings; the ones with loader workers ask for PASSIVE waiting,
    which a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT overrides. libgomp reads it when torch loads, so
    the CLI must not load torch before the command has made its call."""
    import subprocess

    from tsmcli.process import passive_thread_wait

    for env, expected in (({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, None), ({"GOMP_SPINCOUNT": "1000"}, None)):
        before = dict(env)
        assert passive_thread_wait(env) == expected
        assert env == ({**before, "OMP_WAIT_POLICY": "PASSIVE"} if expected else before)
    probe = ("import os, sys, tsmcli.cli, tsmcli.process as process\n"
             "made = process.configure_process\n"
             "def stop(**settings):\n"
             "    made(**settings)\n"
             "    print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n"
             "    sys.exit(0)\n"
             "process.configure_process = stop\n"
             "tsmcli.cli.main()\n")
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    for args, expected in ((["train", "-p", "x"], "PASSIVE False"), (["finetune", "-p", "x"], "PASSIVE False"),
                           (["test", "c.pth"], "PASSIVE False"), (["predict", "v.mp4", "--ckpt", "c"], "None False"),
                           (["benchmark", "model", "-p", "x"], "None False")):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=environment)
        assert out.stdout.strip() == expected, (args, out.stdout, out.stderr[-2000:])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_export_stops_on_a_signal_and_leaves_no_file(toy, trained, sig):
    pytest.importorskip("onnxruntime")
    out = toy / f"stopped_{sig}.onnx"
    args = ["export", str(trained / "latest.pth"), "--out", str(out)]

    def writing(proc):  # the graph is in its temporary file: exported, not yet verified
        return any(p.name.startswith(f".{out.stem}.") for p in toy.iterdir())

    assert _stop_and_check(args, toy, writing, 0.2, sig, whole_group=False) is not None
    assert not out.exists() and not [p for p in toy.iterdir() if p.name.startswith(f".{out.stem}.")]


@pytest.mark.slow
def test_outputs_follow_the_users_umask(tmp_path):
    """Written through a temporary file (mkstemp makes it 0600), yet readable as the umask allows: a
    colleague on a shared cluster can read a checkpoint or a video."""
    script = f"""
import os, numpy as np, tsmcli
from tsmcli.video import write_video
os.umask(0o002)
model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
tsmcli.save_checkpoint({str(tmp_path / "m.pth")!r}, model, model.preset)
write_video({str(tmp_path / "cam.mp4")!r}, np.zeros((4, 32, 32, 3), np.uint8))
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for name in ("m.pth", "cam.mp4"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o664, name


def test_a_library_child_blocked_in_c_does_not_keep_a_command_from_exiting():
    """A daemonic child a library forks from a thread (OpenVINO's telemetry sender) may block for good
    in C on a lock held at fork time; at exit multiprocessing terminates it and waits. Our Python
    SIGTERM handler, inherited, could never run there, so the command hung; the CLI now kills daemonic
    children at exit. A locked pthread mutex stands in for the resolver's lock."""
    script = """
import ctypes, multiprocessing, threading
from tsmcli.signals import commands_stop_on_signals
commands_stop_on_signals()
libc = ctypes.CDLL(None)
mutex = ctypes.create_string_buffer(64)
libc.pthread_mutex_init(mutex, None)
libc.pthread_mutex_lock(mutex)
def blocked():
    libc.pthread_mutex_lock(mutex)  # held by the parent's thread at fork: never returns
def start():  # as the telemetry sender does: forked from a thread
    multiprocessing.get_context("fork").Process(target=blocked, daemon=True).start()
thread = threading.Thread(target=start)
thread.start()
thread.join()
print("exiting")
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the blocked child too
        raise AssertionError("still waiting at exit for its blocked child after 30 s") from None
    assert proc.returncode == 0 and "exiting" in out, err
