"""Model packages (tsm package): safetensors weights, the preset, the labels and a model card; loaded
wherever a checkpoint is, from a folder, a lone .safetensors file or the Hugging Face Hub's cache (hf://)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import REPO, SHARED
from reference_weights import fill_state_dict
from typer.testing import CliRunner

import tsmcli
from tsmcli.cli import app
from tsmcli.errors import UserError

safetensors = pytest.importorskip("safetensors.torch", reason="the hub extra (pip install 'tsm[hub]')")

VIDEO = SHARED / "fixtures/videos/test.mp4"
LABELS = ["left", "right", "grow", "shrink"]


def tsm(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "tsmcli.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


@pytest.fixture(scope="module")
def toy(module_dir):
    """A toy checkpoint beside a `tsm test --out` result of it, and its package as `tsm package` writes it."""
    folder = module_dir("package")
    model = tsmcli.build_model("tsm_r18_1x1x8_toy", pretrained=False)
    tsmcli.save_checkpoint(folder / "best.pth", model, model.preset, labels=LABELS)
    (folder / "list.txt").write_text(f"{VIDEO} 1\n{SHARED / 'fixtures/videos/part_0.mp4'} 2\n")
    tested = tsm("test", folder / "best.pth", "--list", folder / "list.txt", "--data-root", "/", "--device", "cpu",
                 "--out", folder / "result.json")
    assert tested.returncode == 0, tested.stderr[-2000:]
    made = tsm("package", folder / "best.pth", "--out", folder / "pkg", "--speed-iters", 2)
    assert made.returncode == 0, made.stderr[-2000:]
    return folder


def probabilities(checkpoint):
    return tsmcli.load_predictor(checkpoint)(VIDEO).probs


@pytest.mark.slow
def test_a_package_holds_weights_preset_labels_and_a_card_and_nothing_that_unpickles(toy):
    package = toy / "pkg"
    assert sorted(p.name for p in package.iterdir()) == ["README.md", "labels.txt", "model.safetensors", "preset.yaml"]
    assert (package / "labels.txt").read_text().split() == LABELS
    card = (package / "README.md").read_text()
    front = card.split("---\n")[1]
    assert "library_name: tsm" in front and "pipeline_tag: video-classification" in front
    metrics = json.loads((toy / "result.json").read_text())["metrics"]
    assert f"value: {round(metrics['top1'], 4)}" in front and "| top1 |" in card  # from the tsm test beside it
    assert "`left`, `right`, `grow`, `shrink`" in card and "videos/s" in card and "lin2019tsm" in card


def test_a_package_and_its_safetensors_alone_give_the_checkpoints_probabilities(toy, monkeypatch):
    expected = probabilities(toy / "best.pth")

    def refuse(*args, **kwargs):
        raise AssertionError("a package was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    for source in (toy / "pkg", toy / "pkg/model.safetensors"):
        got = probabilities(source)
        assert torch.allclose(got, expected, atol=1e-6, rtol=0), source
    assert tsmcli.load_model(toy / "pkg").labels == LABELS


@pytest.mark.slow
def test_every_command_takes_a_package_folder(toy, tmp_path):
    predicted = tsm("predict", VIDEO, "--ckpt", toy / "pkg", "--json", "--device", "cpu")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["top"][0]["label"] in LABELS
    tested = tsm("test", toy / "pkg", "--list", toy / "list.txt", "--data-root", "/", "--device", "cpu")
    assert tested.returncode == 0 and "top1" in tested.stdout, tested.stderr
    streamed = tsm("stream", VIDEO, "--ckpt", toy / "pkg", "--json", "--device", "cpu", "--every", "4")
    assert streamed.returncode == 0 and streamed.stdout.strip(), streamed.stderr


@pytest.mark.slow
def test_weights_that_do_not_fit_the_preset_are_refused_naming_the_tensor(toy, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(toy / "pkg", broken)
    state = safetensors.load_file(str(broken / "model.safetensors"))
    from safetensors import safe_open

    with safe_open(str(broken / "model.safetensors"), framework="pt") as opened:
        metadata = opened.metadata()
    state["backbone.conv1.weight"] = torch.zeros(64, 3, 5, 5)
    safetensors.save_file(state, str(broken / "model.safetensors"), metadata=metadata)
    with pytest.raises(UserError, match=r"backbone\.conv1\.weight has shape \(64, 3, 5, 5\)"):
        tsmcli.load_model(broken)
    foreign = tmp_path / "foreign.safetensors"
    safetensors.save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(UserError, match="was not written by tsm package"):
        tsmcli.load_model(foreign)
    not_a_package = tmp_path / "empty"
    not_a_package.mkdir()
    run = tsm("predict", VIDEO, "--ckpt", not_a_package)
    assert run.returncode == 2 and "not a model package" in run.stderr


@pytest.mark.slow
def test_a_package_of_an_mmaction2_checkpoint_gives_its_probabilities(tmp_path, mmaction_outputs):
    """mmaction2's key names (tests/data/mmaction: written by its own code), weights as sensitive as a
    trained model's, a real clip: the package gives the checkpoint's probabilities."""
    case = mmaction_outputs["r50_two_views"]
    path = tmp_path / "tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth"
    torch.save({"meta": {"epoch": 50}, "state_dict": fill_state_dict(case["keys"], case["norm_scale"])}, path)
    made = tsm("package", path, "--out", tmp_path / "pkg", "--speed-iters", 0)
    assert made.returncode == 0, made.stderr[-2000:]
    assert torch.allclose(probabilities(tmp_path / "pkg"), probabilities(path), atol=1e-6, rtol=0)
    card = (tmp_path / "pkg/README.md").read_text()
    assert "400 classes, listed in `labels.txt`" in card and "(a mmaction2 0.x checkpoint)" in card
    assert "Not measured for this package" in card  # no test result beside it: no invented metrics


def hub_cache(root, repo, package, commit="0123456789abcdef0123456789abcdef01234567"):
    """The Hugging Face Hub library's own cache layout, as a download of `repo` at `commit` leaves it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    shutil.copytree(package, snapshot)
    (folder / "refs").mkdir(parents=True)
    (folder / "refs/main").write_text(commit)
    return commit


@pytest.mark.slow
def test_hf_urls_load_from_the_hubs_cache_offline(toy, tmp_path):
    pytest.importorskip("huggingface_hub")
    commit = hub_cache(tmp_path / "hub", "team/toy-tsm", toy / "pkg")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    expected = json.loads(tsm("predict", VIDEO, "--ckpt", toy / "pkg", "--json").stdout)
    for spec in ("hf://team/toy-tsm", f"hf://team/toy-tsm@{commit}"):
        run = tsm("predict", VIDEO, "--ckpt", spec, "--json", env=env)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["scores"] == expected["scores"]
    missing = tsm("predict", VIDEO, "--ckpt", "hf://team/other", env=env)
    assert missing.returncode == 2 and "hf://team/other: cannot get it" in missing.stderr
    assert "HF_HUB_OFFLINE" in missing.stderr and "Traceback" not in missing.stderr
    assert tsm("predict", VIDEO, "--ckpt", "hf://no-slash", env=env).returncode == 2


def test_push_uploads_with_the_hub_librarys_call_private_by_default(toy, monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    calls = []

    class Api:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))
            return "commit"

    monkeypatch.setattr(hub, "HfApi", Api)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    result = CliRunner().invoke(app, ["push", str(toy / "pkg"), "team/toy-tsm"])
    assert result.exit_code == 0, result.output
    assert calls[0] == ("create_repo", "team/toy-tsm", {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls[1][1]["folder_path"] == str(toy / "pkg") and calls[1][1]["repo_id"] == "team/toy-tsm"
    assert "hf://team/toy-tsm" in result.output
    CliRunner().invoke(app, ["push", str(toy / "pkg"), "team/toy-tsm", "--public"])
    assert calls[-2][2]["private"] is False


@pytest.mark.slow
def test_push_says_what_is_wrong_before_any_upload(toy, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    assert "ORG/NAME" in tsm("push", toy / "pkg", "just-a-name", env=env).stderr
    not_a_package = tsm("push", toy, "team/x", env=env)
    assert not_a_package.returncode == 2 and "not a package" in not_a_package.stderr
    no_token = tsm("push", toy / "pkg", "team/x", env=env)
    assert no_token.returncode == 2 and "no Hugging Face token" in no_token.stderr


@pytest.mark.slow
def test_a_missing_extra_is_named(toy, tmp_path):
    code = ("import sys; sys.modules['huggingface_hub'] = None; sys.modules['safetensors'] = None\n"
            "import tsmcli.cli; sys.argv = ['tsm'] + sys.argv[1:]; tsmcli.cli.main()")
    for args in (["predict", VIDEO, "--ckpt", toy / "pkg"], ["predict", VIDEO, "--ckpt", "hf://team/x"],
                 ["package", toy / "best.pth", "--out", tmp_path / "p"]):
        run = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
        assert run.returncode == 2 and "pip install 'tsm[hub]'" in run.stderr, run.stderr


def test_torch_hub_entry_points(tmp_path, monkeypatch):
    """hubconf.py: every preset with pretrained=False; pretrained=True loads the zoo's published checkpoint
    (here from the download cache, as a first download leaves it) and is refused for unpublished ones."""
    from reference_weights import to_mmaction_keys

    hubconf = torch.hub._import_module("hubconf", str(REPO / "hubconf.py"))
    assert callable(hubconf.tsm_r50_1x1x8_50e_k400) and not hasattr(hubconf, "entry_points")
    model = torch.hub.load(str(REPO), "tsm_r18_1x1x8_toy", source="local", model__num_classes=3)
    assert isinstance(model, torch.nn.Module) and model.num_classes == 3
    with pytest.raises(UserError, match="publishes no checkpoint of tsm_r18_1x1x8_toy"):
        torch.hub.load(str(REPO), "tsm_r18_1x1x8_toy", source="local", pretrained=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub/checkpoints"
    cache.mkdir(parents=True)
    reference = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", pretrained=False)
    torch.save({"meta": {}, "state_dict": to_mmaction_keys(reference.state_dict())},
               cache / "tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth")
    loaded = torch.hub.load(str(REPO), "tsm_r50_1x1x8_50e_k400", source="local", pretrained=True)
    assert not loaded.training and loaded.checkpoint_format == "mmaction"
    assert torch.equal(loaded.head.fc.weight, reference.head.fc.weight)


@pytest.mark.slow
def test_a_package_carries_verified_exports_that_run_as_it_does(toy, tmp_path):
    made = tsm("package", toy / "best.pth", "--out", tmp_path / "pkg", "--with", "onnx,openvino", "--speed-iters", 0)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "model.onnx: verified against PyTorch" in made.stdout and (tmp_path / "pkg/model.bin").is_file()
    expected = probabilities(toy / "pkg")
    for file in ("model.onnx", "model.xml"):
        assert torch.allclose(probabilities(tmp_path / "pkg" / file), expected, atol=1e-4, rtol=0), file
    assert "`model.onnx`, `model.xml`" in (tmp_path / "pkg/README.md").read_text()
    refused = tsm("package", toy / "best.pth", "--out", tmp_path / "p2", "--with", "tflite")
    assert refused.returncode == 2 and "--with tflite: use onnx or openvino" in refused.stderr
