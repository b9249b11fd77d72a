"""Several processes on the CPU (Gloo): DDP, SyncBN, SLURM's environment, a failing worker, a signal."""
import json
import os
import signal
import socket
import time

import pytest
import torch
import toy_runs
from toy_runs import finished, tsm_train, write_run_yaml

from tsmcli.distributed import distributed_env, first_slurm_host, init_method
from tsmcli.errors import JobFailed
from tsmcli.prepare.toy import prepare_toy

pytestmark = pytest.mark.distributed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toy_preset(root, *overrides):
    """Short runs on the toy set of the `toy` fixture, without dropout (each video's gradient then
    depends on nothing random), with the lr meant for the batch of 4 that every run here has in all."""
    return toy_runs.toy_preset(root / "toy", "schedule.epochs=1", "data.workers_per_gpu=0", "log.interval=1",
                               "model.dropout=0.0", "optimizer.lr_batch_size=4", *overrides)


def half_the_cores():
    """OMP_NUM_THREADS for each of two workers sharing this machine, as `tsm train --gpus 2` sets it."""
    return str(max(1, len(os.sched_getaffinity(0)) // 2))


def curve(work):
    return [json.loads(line)["loss"] for line in (work / "log.jsonl").read_text().splitlines() if '"train"' in line]


@pytest.fixture(scope="module")
def toy(module_dir):
    root = module_dir("dist")
    prepare_toy(root / "toy", train_per_class=3, val_per_class=1, seed=0)
    return root


@pytest.mark.slow
def test_two_gloo_processes_follow_the_single_process_loss_curve(toy):
    """DDP with 2 CPU processes x 2 videos equals 1 process x 4 videos (BN in eval mode, so that each
    video's gradient does not depend on its batch mates)."""
    from tsmcli.train.loop import launch, train

    train(toy_preset(toy, "data.videos_per_gpu=4", "model.norm_eval=true"), toy / "one", device="cpu", echo=None)
    metrics = launch(toy_preset(toy, "data.videos_per_gpu=2", "model.norm_eval=true"), toy / "two", nproc=2,
                     master_port=free_port(), device="cpu")
    one, two = curve(toy / "one"), curve(toy / "two")
    assert len(one) == len(two) == 3
    assert one == pytest.approx(two, rel=1e-4, abs=1e-5)
    assert metrics["videos"] == 4  # every validation video counted once across the two processes


@pytest.mark.slow
def test_sync_bn_gives_two_processes_the_statistics_of_their_joint_batch(toy):
    """BN in training mode: 2 processes x 2 videos with --sync-bn follow 1 process x 4 videos; without
    it they do not (each normalises by its own half batch)."""
    from tsmcli.train.loop import launch, train

    # in fp32: bf16 (the default on CPUs that compute it natively) rounds a half batch otherwise than a whole
    train(toy_preset(toy, "data.videos_per_gpu=4"), toy / "bn_one", device="cpu", echo=None, amp="none")
    two = toy_preset(toy, "data.videos_per_gpu=2")
    launch(two, toy / "bn_sync", nproc=2, master_port=free_port(), device="cpu", sync_bn=True, amp="none")
    launch(two, toy / "bn_local", nproc=2, master_port=free_port(), device="cpu", amp="none")
    one, synced, local = curve(toy / "bn_one"), curve(toy / "bn_sync"), curve(toy / "bn_local")
    assert one == pytest.approx(synced, rel=1e-4, abs=1e-5)
    assert one[1:] != pytest.approx(local[1:], rel=1e-3)
    # Training-mode BN amplifies float noise (summation order differs between 1 and 2 processes), hence
    # 2e-4; the unsynchronised run must fall outside that.
    expected = torch.load(toy / "bn_one/latest.pth", weights_only=True)["state_dict"]
    synced = torch.load(toy / "bn_sync/latest.pth", weights_only=True)["state_dict"]
    local = torch.load(toy / "bn_local/latest.pth", weights_only=True)["state_dict"]
    for key in ("backbone.bn1.running_mean", "backbone.layer2.0.bn1.running_var", "backbone.layer4.1.bn2.running_mean"):
        assert torch.allclose(expected[key], synced[key], rtol=1e-3, atol=2e-4), key
        assert not torch.allclose(expected[key], local[key], rtol=1e-3, atol=2e-4), key


def _second_worker_breaks(cfg, work_dir, options):
    """A launch entry point: worker 1 raises in its second step while worker 0 waits in an all-reduce."""
    from tsmcli.train import loop, run

    if os.environ["RANK"] == "1":
        steps = []
        real_loss = run.training_loss

        def loss_then_break(*config):
            loss = real_loss(*config)

            def breaking(*args):
                steps.append(1)
                if len(steps) == 2:
                    raise RuntimeError("worker 1 broke on purpose")
                return loss(*args)
            return breaking

        run.training_loss = loss_then_break
    return loop._worker(cfg, work_dir, options)


@pytest.mark.slow
def test_a_failing_worker_ends_the_job_with_its_error(toy):
    from tsmcli.train.loop import launch

    start = time.monotonic()
    with pytest.raises(JobFailed, match="worker 1 of 2 .*RuntimeError: worker 1 broke on purpose"):
        launch(toy_preset(toy, "data.videos_per_gpu=1"), toy / "broken", nproc=2, master_port=free_port(),
               device="cpu", entrypoint=_second_worker_breaks)
    assert time.monotonic() - start < 50  # worker 0 was stopped, not left waiting for worker 1


def _threads_and_loader_start():
    import multiprocessing

    from tsmcli.data import build_loader

    context = build_loader(list(range(4)), 2, num_workers=1, shuffle=False).multiprocessing_context
    return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads(), (context or multiprocessing).get_start_method()


@pytest.mark.slow
def test_workers_share_the_cores_and_fork_their_loader_workers(monkeypatch):
    """Each of N workers used to start a thread per core (N x cores threads busy-waiting on the CPU),
    and the launcher's spawn start method reached the loaders, whose workers then imported torch again
    (docs/benchmarks.md, "What the tests' margins rest on")."""
    from tsmcli.launch import run_workers

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    results = run_workers(_threads_and_loader_start, (), nproc=2, master_port=free_port())
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert results == {0: (str(share), share, "fork"), 1: (str(share), share, "fork")}
    assert "OMP_NUM_THREADS" not in os.environ  # the launcher's own environment is left as it was


def test_slurm_host_list_and_environment(monkeypatch):
    assert first_slurm_host("gpu[003-005,9],cpu1") == "gpu003"
    assert first_slurm_host("node7,node8") == "node7"
    assert first_slurm_host("rack[2-3]-gpu") == "rack2-gpu"
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("SLURM_NTASKS", "16")
    monkeypatch.setenv("SLURM_PROCID", "9")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "dgx[12-13]")
    monkeypatch.setenv("SLURM_JOB_ID", "4321")
    assert distributed_env() == (16, 9, 1)
    assert init_method() == "tcp://dgx12:24321"
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's variables win
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    assert distributed_env() == (2, 0, 0) and init_method() == "env://"


@pytest.fixture(scope="module")
def two_process_run(toy):
    """Deterministic 2-epoch runs of 2 processes x 1 video (6 steps an epoch)."""
    return write_run_yaml(toy / "run.yaml", toy / "toy", videos_per_gpu=1, extra="model: {dropout: 0.0}\n")


@pytest.fixture(scope="module")
def srun_run(two_process_run, toy):
    """Two tasks started as srun starts them (SLURM_* variables only, no torchrun variables), each with
    one of the machine's two cores (OMP_NUM_THREADS, as a job script sets it from --cpus-per-task): the
    threads `tsm train --gpus 2` gives each of its workers here, which the runs compared with this one
    need for identical weights (a convolution's rounding depends on how many threads share it)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    slurm = {"SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "localhost", "SLURM_JOB_ID": "1",
             "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": half_the_cores()}
    tasks = [tsm_train("--preset", two_process_run, "--work-dir", toy / "srun",
                       env={**env, **slurm, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)})
             for rank in range(2)]
    outputs = [task.communicate(timeout=300)[0] for task in tasks]
    return toy / "srun", [task.returncode for task in tasks], outputs


@pytest.mark.slow
def test_srun_style_tasks_train_together(srun_run):
    work, codes, outputs = srun_run
    assert codes == [0, 0], outputs
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["mode"] == "train"] == [1, 2, 3, 4, 5, 6] * 2
    assert [r["videos"] for r in records if r["mode"] == "val"] == [4, 4]  # every epoch, all 4 videos once


@pytest.mark.slow
def test_two_machines_each_started_with_the_same_command(two_process_run, srun_run, toy):
    """--nnodes 2 --node-rank 0|1 on one host: two launchers, one worker each, rendezvous on node 0's
    port; the run matches the srun-style one (same 2 workers, seed, batch and threads per worker: in bf16,
    the default on CPUs that compute it natively, the thread count changes roundings beyond 1e-5)."""
    port = free_port()
    one_core_each = {**os.environ, "OMP_NUM_THREADS": half_the_cores()}
    nodes = [tsm_train("--preset", two_process_run, "--gpus", 1, "--nnodes", 2, "--node-rank", rank,
                       "--master-addr", "127.0.0.1", "--master-port", port, "--work-dir", toy / "nodes",
                       env=one_core_each)
             for rank in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert curve(toy / "nodes") == pytest.approx(curve(srun_run[0]), rel=1e-5)


def _worker_pids(launcher_pid):
    """The training processes the launcher spawned (not multiprocessing's resource tracker)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == launcher_pid and "spawn_main" in cmdline:
            pids.append(int(entry))
    return pids


@pytest.mark.slow
def test_a_signal_to_one_worker_stops_both_at_the_same_step_and_resume_matches(two_process_run, srun_run, toy):
    """SIGTERM reaches only one of the two processes in epoch 2: both finish the same step and stop,
    rank 0 writes a mid-epoch checkpoint, the job exits cleanly; resuming ends with the weights of
    the uninterrupted run (the srun-style run above, same seed and batch)."""
    work = toy / "signalled"
    job = tsm_train("--preset", two_process_run, "--gpus", "2", "--master-port", free_port(), "--work-dir", work)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        log = work / "log.jsonl"
        if log.exists() and '"epoch": 2, "iter": 2' in log.read_text():
            workers = _worker_pids(job.pid)
            assert len(workers) == 2
            os.kill(workers[-1], signal.SIGTERM)
            break
        time.sleep(0.02)
    output = job.communicate(timeout=120)[0]
    assert job.returncode == 128 + signal.SIGTERM, output  # not 0: the job did not finish
    assert output.count("stopped by a signal") == 1 and f"--work-dir {work} --resume auto" in output
    state = torch.load(work / "latest.pth", weights_only=True)
    assert state["epoch"] == 1 and 2 <= state["iteration"] < 6
    resumed = tsm_train("--preset", two_process_run, "--gpus", "2", "--master-port", free_port(), "--work-dir", work,
                        "--resume", "auto")
    code, output = finished(resumed)
    assert code == 0, output
    assert srun_run[1] == [0, 0]
    expected = torch.load(srun_run[0] / "latest.pth", weights_only=True)["state_dict"]
    got = torch.load(work / "latest.pth", weights_only=True)["state_dict"]
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def _wait_for_sigterm(queue):
    got = []
    signal.signal(signal.SIGTERM, lambda *_: got.append(1))
    queue.put("ready")
    deadline = time.monotonic() + 20
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    queue.put("stopped" if got else "timeout")


def test_the_launcher_passes_signals_to_its_workers_and_survives_them():
    import multiprocessing

    from tsmcli.launch import _PassSignalsToWorkers

    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    worker = ctx.Process(target=_wait_for_sigterm, args=(queue,))
    worker.start()
    assert queue.get(timeout=20) == "ready"
    with _PassSignalsToWorkers():
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler would signal the launcher
        assert queue.get(timeout=20) == "stopped"
    worker.join(timeout=20)
    assert worker.exitcode == 0


@pytest.mark.slow
def test_accumulation_all_reduces_once_per_optimizer_step(toy):
    """--accumulate 2 on 2 processes: DDP synchronises the summed gradients once per optimizer step
    (no_sync on the other micro-batch), half the all-reduces of synchronising each one, same weights."""
    import ddp_counting

    from tsmcli.train.loop import launch

    # the preset's loader workers, as users run it; 12 videos: 6 micro-batches per process
    cfg = toy_runs.toy_preset(toy / "toy", "schedule.epochs=1", "log.interval=1", "model.dropout=0.0",
                              "optimizer.lr_batch_size=4", "data.videos_per_gpu=1", "model.norm_eval=true")
    for name, entry in (("once", ddp_counting.with_no_sync), ("every", ddp_counting.syncing_every_micro_batch)):
        launch(cfg, toy / name, nproc=2, master_port=free_port(), device="cpu", accumulation=2, entrypoint=entry)
    once, every = ([int((toy / name / f"allreduces-{rank}.txt").read_text()) for rank in (0, 1)]
                   for name in ("once", "every"))
    assert once[0] == once[1] and every[0] == every[1]
    assert once[0] == 3 and every[0] == 6  # 3 optimizer steps of 2 micro-batches
    weights = [torch.load(toy / name / "latest.pth", weights_only=True)["state_dict"] for name in ("once", "every")]
    for key, value in weights[0].items():
        assert torch.allclose(value.float(), weights[1][key].float(), rtol=1e-5, atol=1e-6), key
