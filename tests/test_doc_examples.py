"""Every command and Python snippet of the README and the documentation pages, run from a scratch folder
as a reader would run them there, so that a change that breaks an example fails CI.

Examples: each line of the ```bash blocks, each ```python block, and the command lines under the
pictures. What cannot run here as written is changed as SUBSTITUTIONS lists, each with its reason; what
cannot run here at all is in NOT_RUN_HERE, with its reason and the check that runs instead; everything
else runs word for word. The scratch folder has `../shared` and nothing else until the examples make it:
the toy data and models come from the examples' own commands (`bash scripts/run.sh`'s steps,
`tsm prepare ...`, `tsm sample-video`). `tsm serve` examples run as services, and the client examples
beside them talk to the first.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest
import tomllib
import torch
import torchvision
from conftest import REPO, SHARED
from readme_blocks import own_videos_commands
from reference_weights import to_mmaction_keys
from serving import Server

import tsmcli

# benchmarks.md's commands are measurements (minutes each, some against mmaction2 in its own venv):
# test_every_benchmark_command_names_a_script_that_runs checks them instead
MEASUREMENTS = {"benchmarks.md"}
PAGES = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in MEASUREMENTS)]
TEXT = "\n".join(page.read_text() for page in PAGES)
FIXTURE_VIDEO = "../shared/fixtures/videos/demo.mp4"
TOY_MODEL = "work_dirs/toy_tsm/best.pth"  # what `bash scripts/run.sh` trains, here for one epoch
ZOO_FILES = ["tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth",
             "tsm_r50_video_1x1x8_100e_kinetics400_rgb_20200702-a77f4328.pth"]

# (what is matched in a command, what replaces it, why); applied in order, to whole words
SUBSTITUTIONS = [
    (r"^(tsm (train|finetune) .*)$", r"\1 --set schedule.epochs=1", "one epoch instead of the preset's"),
    (r"^(tsm prepare toy.*)$", r"\1 --train-per-class 3 --val-per-class 4", "a smaller toy dataset"),
    (r"--iters 20\b", "--iters 2", "fewer timed videos"),
    (r"^(tsm benchmark model --model .*)$", r"\1 --iters 8", "fewer timed videos"),
    (r"^(tsm benchmark data .*)$", r"\1 --clips 4", "fewer timed clips"),
    (r"(?<=\s)(long_video|clip|demo)\.mp4\b", FIXTURE_VIDEO, "a placeholder video: a real clip"),
    (r"(?<=\s)videos/(?=\s)", "../shared/fixtures/videos/", "a placeholder folder: real clips"),
    (r"(?<=\s)CKPT\b", "work_dirs/online/best.pth", "a placeholder checkpoint: one the examples train"),
    (r"^tsm export work_dirs/mine/best\.pth --out mine\.xml --precision int8.*$",
     "tsm export work_dirs/toy_tsm/best.pth --out toy_int8.xml --precision int8",
     "the own-videos model is tests/test_own_videos.py's: with the toy model it is the deployment guide's export"),
    (r"(?<=\s)mine\.xml\b", "toy_int8.xml", "that export, as the examples make it here"),
    (r"(?<=\s)(work_dirs/mine/)?best\.pth\b", TOY_MODEL,
     "`work_dirs/mine` is the own-videos section's, which tests/test_own_videos.py runs: the toy model instead"),
    (r"(?<=\s)(mine|data/other)/tsm\.yaml\b", "data/mine/tsm.yaml",
     "a dataset of one's own: the one `tsm prepare custom --root data/mine` makes here"),
]
# Python snippets: the same idea
PYTHON_SUBSTITUTIONS = [
    ('"best.pth"', f'"{TOY_MODEL}"', "a placeholder checkpoint: the toy model"),
    ('torch.hub.load("OWNER/tsm", ', f'torch.hub.load({str(REPO)!r}, source="local", model=',
     "GitHub is out of reach here: torch.hub's local source reads the same hubconf.py"),
]
NOT_RUN_HERE = [  # (what is matched, why, a check that does run)
    (r"^bash scripts/test\.sh$", "it runs this suite (CI runs it through .ci/run)", None),
    (r"^pip install ", "tests/test_installed.py installs the wheel as `pip install .` does; the extras "
                       "named must exist", "extras"),
    (r"^tsm stream (0|/dev/video0) ", "no camera here: tests/test_stream.py feeds frames as a camera gives them "
                                      "and checks the no-camera error", None),
    (r"^tsm push |hf://", "the Hugging Face Hub is out of reach here: tests/test_package.py checks push with the "
                         "Hub library's call replaced, and hf:// with a local snapshot", None),
]
SERVICE_PORT = "8000"  # the port the serving examples name; a free one replaces it here


def examples():
    """(kind, text) of every example, in README order, each once."""
    found = []
    for kind, body in re.findall(r"```(bash|python)\n(.*?)```", TEXT, re.S):
        if kind == "python":
            found.append(("python", body))
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                found.append(("bash", line))
    found += [("bash", m[1]) for m in re.finditer(r"^`(tsm [^`]*)`(?:, after .*)?$", TEXT, re.M)]
    own_videos = {shlex.join(c) for c in own_videos_commands()}
    unique = []
    for kind, text in found:
        if (kind, text) not in unique and (kind == "python" or shlex.join(shlex.split(text)) not in own_videos):
            unique.append((kind, text))
    return unique


def substituted(command):
    for pattern, replacement, _ in SUBSTITUTIONS:
        command = re.sub(pattern, replacement, command)
    return command


def substituted_python(snippet):
    for old, new, _ in PYTHON_SUBSTITUTIONS:
        snippet = snippet.replace(old, new)
    return snippet


def is_service(kind, text):
    return kind == "bash" and text.startswith("tsm serve ")


def is_client(_kind, text):
    return f"127.0.0.1:{SERVICE_PORT}" in text


def stage(kind, text):
    """Run the examples that make data and models before those that use them, and the services last."""
    if text == "bash scripts/run.sh":
        return 0
    if is_service(kind, text) or is_client(kind, text):
        return 4
    words = text.split()[:2]
    if "mine-tsm" in text and words[1:] != ["package"]:  # reads the package `tsm package` makes
        return 3
    return {"prepare": 0, "sample-video": 0, "train": 1, "finetune": 1, "export": 2, "package": 2}.get(
        words[1] if len(words) > 1 and kind == "bash" else "", 3)


def mmaction_checkpoint(path):
    """What a zoo download would hold: a Kinetics-400 ResNet50-TSM in mmaction2 0.x's layout (weights
    random: no network here)."""
    model = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False)
    torch.save({"meta": {}, "state_dict": to_mmaction_keys(model.state_dict())}, path)


def scratch_folder(root):
    """The reader's folder: ../shared beside it, downloads already in the cache, and the inputs the
    examples name that a reader brings (their videos, their mmaction2 configs, their CSV)."""
    work = root / "work"
    work.mkdir()
    (root / "shared").symlink_to(SHARED)
    cache = root / "torch_home/hub/checkpoints"
    cache.mkdir(parents=True)
    mmaction_checkpoint(cache / ZOO_FILES[0])
    for name in ZOO_FILES[1:]:
        (cache / name).symlink_to(cache / ZOO_FILES[0])
    (work / "k400.pth").symlink_to(cache / ZOO_FILES[0])
    for name, build in (("resnet50-0676ba61.pth", torchvision.models.resnet50),
                        ("resnet18-f37072fd.pth", torchvision.models.resnet18)):
        torch.save(build().state_dict(), cache / name)  # ImageNet weights as the first use caches them
    videos = SHARED / "fixtures/videos"
    for cls in ("jumping", "waving"):  # tsm prepare custom --root data/mine: class folders of videos
        (work / f"data/mine/videos/{cls}").mkdir(parents=True)
        for i in range(3):
            shutil.copy(videos / "test.mp4", work / f"data/mine/videos/{cls}/clip {i}.mp4")
    csv = re.search(r"```\n(video,labels\n.*?)```", TEXT, re.S)[1]  # the docs' own labels.csv
    (work / "data/tagged/videos/clips").mkdir(parents=True)
    (work / "data/tagged/labels.csv").write_text(csv)
    for row in csv.splitlines()[1:]:
        shutil.copy(videos / "test.mp4", work / "data/tagged/videos" / row.split(",")[0])
    configs = work / "configs"  # tsm presets import configs/recognition/tsm/my_tsm.py: a config of one's own
    shutil.copytree(REPO / "tests/data/mmaction/py_configs/configs", configs)
    shutil.copy(configs / "recognition/tsm/tsm_r50_1x1x8_50e_kinetics400_rgb.py", configs / "recognition/tsm/my_tsm.py")
    ucf101(work / "data/ucf101")
    (work / "data/k400/videos").mkdir(parents=True)  # build_dataset(... "data/k400/train.txt", "data/k400/videos")
    shutil.copy(videos / "demo.mp4", work / "data/k400/videos/demo.mp4")
    (work / "data/k400/train.txt").write_text("demo.mp4 6\n")
    (work / "docs").mkdir()  # the pictures' commands write into the checkout's docs/
    return work


def ucf101(root):
    """UCF101 as its two archives unpack, with three of its videos."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    classes = (REPO / "tsmcli/label_maps/ucf101.txt").read_text().split()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for k in (1, 2, 3):
        (lists / f"trainlist0{k}.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
                                                  "Archery/v_Archery_g01_c01.avi 3\n")
        (lists / f"testlist0{k}.txt").write_text("ApplyLipstick/v_ApplyLipstick_g01_c01.avi\n")
    for name in ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", "Archery/v_Archery_g01_c01.avi",
                 "ApplyLipstick/v_ApplyLipstick_g01_c01.avi"):
        (root / "UCF-101" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / "fixtures/videos/test.avi", root / "UCF-101" / name)


def run_sh_steps():
    """The main job's commands, as scripts/run.sh runs them after its set-up."""
    script = (REPO / "scripts/run.sh").read_text()
    steps = [line.replace("$TSM ", "tsm ", 1) for line in script.splitlines() if line.startswith("$TSM ")]
    summary = re.search(r"python - <<'PY'\n(.*?)\nPY", script, re.S)[1]
    return steps, summary


TIMES = []


def run(work, env, argv):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
    TIMES.append((time.perf_counter() - start, shlex.join(argv[2:] if argv[1:2] == ["-m"] else argv)[:110]))
    assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tsm(work, env, command):
    words = shlex.split(substituted(command))
    assert words[0] == "tsm", command
    return run(work, env, [sys.executable, "-m", "tsmcli.cli", *words[1:]])


@pytest.mark.slow
def test_every_example_of_the_readme_and_the_docs_runs(tmp_path):
    work = scratch_folder(tmp_path)
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch_home"), "TSM_EXPORT_CACHE": str(tmp_path / "exports")}
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    try:
        ran = run_all(work, env, extras)
    finally:
        for seconds, what in sorted(TIMES, reverse=True)[:25]:  # pytest -s shows where the time goes
            print(f"{seconds:6.1f} s  {what}")
    assert len(ran) >= 60, ran  # the patterns above still find the examples (66 distinct ones run here)


def run_all(work, env, extras):
    """Stage by stage (data, then training, then exports, then the rest), two examples at a time: each is
    its own process, as a reader runs it, and on 2 cores most of a short one is Python starting up."""
    from concurrent.futures import ThreadPoolExecutor

    todo, seen = [], set()
    for kind, text in examples():
        skip = next((check for pattern, _, check in NOT_RUN_HERE if re.search(pattern, text)), False)
        if skip is not False:
            if skip == "extras":
                named = re.search(r"\.\[([a-z,]+)\]", text)
                assert not named or set(named[1].split(",")) <= extras, f"{text}: no such extra in pyproject.toml"
            continue
        key = text if kind == "python" else substituted(text)
        if key not in seen:  # two examples that run the same command here run it once
            seen.add(key)
            todo.append((kind, text))
    ran = []
    with ThreadPoolExecutor(2) as pool:
        for current in sorted({stage(*example) for example in todo} - {4}):
            batch = [example for example in todo if stage(*example) == current]
            ran += pool.map(lambda example: run_example(work, env, *example), batch)
    return ran + run_services(work, env, [e for e in todo if stage(*e) == 4])


def run_services(work, env, examples):
    """Each `tsm serve` example as a started service; the client examples talk to the first one."""
    services = [text for kind, text in examples if is_service(kind, text)]
    clients = [(kind, text) for kind, text in examples if not is_service(kind, text)]
    assert services or not clients, clients
    for i, text in enumerate(services):
        words = shlex.split(substituted(text).replace(f"--port {SERVICE_PORT}", ""))
        server = Server(words[2], work, *words[3:], env=env, cwd=work)
        try:
            for kind, client in clients if i == 0 else ():
                run_example(work, env, kind, client.replace(f"127.0.0.1:{SERVICE_PORT}", f"127.0.0.1:{server.port}"))
        finally:
            server.stop()
    return services + [text for _, text in clients]


def run_example(work, env, kind, text):
    if kind == "python":
        snippet = work / f"snippet_{abs(hash(text))}.py"
        snippet.write_text(substituted_python(text))
        run(work, env, [sys.executable, snippet.name])
    elif text == "bash scripts/run.sh":
        steps, summary = run_sh_steps()
        for step in steps:
            tsm(work, env, step)
        printed = run(work, env, [sys.executable, "-c", summary]).stdout
        assert "toy validation top-1: TSM" in printed
    elif text.startswith("curl "):  # failing on an HTTP error, which curl itself would print and exit 0 for
        run(work, env, ["curl", "--fail-with-body", "--silent", "--show-error", *shlex.split(text)[1:]])
    else:
        result = tsm(work, env, text)
        if "--json" in text and "--timeline" in text:
            assert all("label" in segment for segment in json.loads(result.stdout)["segments"])
    return text


@pytest.mark.slow
def test_every_benchmark_command_names_a_script_that_runs():
    """docs/benchmarks.md's commands take minutes each (some against mmaction2 in its own venv): each script
    they name exists and starts (`--help`), under the interpreter the page names for it."""
    text = (REPO / "docs/benchmarks.md").read_text()
    scripts = sorted(set(re.findall(r"\b((?:benchmarks|tools)/[a-z_]+\.py)\b", text)))
    assert len(scripts) >= 10, scripts
    in_mmaction_venv = set(re.findall(r"mmvenv/bin/python (benchmarks/[a-z_]+\.py)", text))
    assert all((REPO / script).is_file() for script in scripts), scripts
    from concurrent.futures import ThreadPoolExecutor

    def start(script):
        return script, subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True)

    ours = [script for script in scripts if script not in in_mmaction_venv]  # those import mmaction2 and mmcv
    with ThreadPoolExecutor(2) as pool:
        for script, started in pool.map(start, ours):
            assert started.returncode == 0, f"{script}\n{started.stderr[-2000:]}"
