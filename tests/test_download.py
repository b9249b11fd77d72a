"""Downloads of ImageNet weights and zoo checkpoints, against a local HTTP server (never the internet)."""
import hashlib
import http.server
import subprocess
import sys
import threading
from functools import partial

import pytest
import torch
import torchvision

import tsmcli
from tsmcli.errors import UserError
from tsmcli.models import pretrained


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    """A local HTTP server over tmp_path/mirror, set as TSM_DOWNLOAD_MIRROR; the cache in tmp_path/hub."""
    root = tmp_path / "mirror"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TSM_DOWNLOAD_MIRROR", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    yield root
    server.shutdown()


def publish(mirror, url, obj):
    """Save obj where the mirror serves `url`; -> the file's sha256."""
    path = mirror / url.split("://", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_imagenet_weights_download_once_into_the_hub_cache(mirror, tmp_path, monkeypatch):
    reference = torchvision.models.resnet18()
    digest = publish(mirror, "https://example.org/models/tmp.pth", reference.state_dict())
    url = f"https://example.org/models/resnet18-{digest[:8]}.pth"
    (mirror / "example.org/models/tmp.pth").rename(mirror / url.split("://", 1)[1])
    monkeypatch.setitem(pretrained.KNOWN_URLS, "torchvision://resnet18", url)
    model = tsmcli.build_model("tsm_r50_1x1x8_50e_k400", model__depth=18, model__pretrained="torchvision://resnet18")
    assert torch.equal(model.backbone.layer2[0].conv1.weight, reference.layer2[0].conv1.weight)
    assert (tmp_path / "hub/checkpoints" / f"resnet18-{digest[:8]}.pth").is_file()
    (mirror / url.split("://", 1)[1]).unlink()  # the second build reads the cache
    tsmcli.build_model("tsm_r50_1x1x8_50e_k400", model__depth=18, model__pretrained="torchvision://resnet18")


def test_a_download_whose_hash_differs_from_its_name_is_refused(mirror, tmp_path):
    publish(mirror, pretrained.KNOWN_URLS["torchvision://resnet50"], {"not": torch.zeros(1)})
    with pytest.raises(UserError, match="sha256 .* does not start with 0676ba61"):
        tsmcli.build_model("tsm_r50_1x1x8_50e_k400")
    assert not list((tmp_path / "hub/checkpoints").iterdir())  # nothing half-written stays


def test_another_cached_file_of_the_same_network_is_never_used(mirror, tmp_path):
    cache = tmp_path / "hub/checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet50().state_dict(), cache / "resnet50-11ad3fa6.pth")  # torchvision's V2
    with pytest.raises(UserError, match="cannot download .*download.pytorch.org/models/resnet50-0676ba61.pth"):
        tsmcli.build_model("tsm_r50_1x1x8_50e_k400")


def test_no_network_says_what_to_place_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("TSM_DOWNLOAD_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(UserError) as err:
        tsmcli.build_model("tsm_mobilenetv2_dense_1x1x8_100e_k400")
    assert "mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth" in str(err.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(err.value)
    assert "model__pretrained=" in str(err.value) and "pretrained=False" in str(err.value)  # Python's words
    assert "--set model.pretrained=" in err.value.for_command_line()  # and the command line's


@pytest.mark.slow
def test_zoo_checkpoint_name_is_fetched_from_its_published_url(mirror, tmp_path, monkeypatch):
    """`--ckpt <zoo file name>` as the README writes it: fetched from mmaction2's download site."""
    from tsmcli.presets import zoo_checkpoints

    name = "tsm_r50_video_1x1x8_100e_kinetics400_rgb_20200702-a77f4328.pth"
    url = zoo_checkpoints()[name]["url"]
    publish(mirror, url, {"state_dict": {}})  # not the real file: its hash cannot match
    proc = subprocess.run([sys.executable, "-m", "tsmcli.cli", "predict", "demo.mp4", "--ckpt", name],
                          capture_output=True, text=True, env={**__import__("os").environ})
    assert proc.returncode == 2 and "does not start with a77f4328" in proc.stderr
    # a checkpoint whose name carries its true hash loads, and picks its preset from the zoo table
    model = tsmcli.build_model("tsm_r50_video_1x1x8_50e_k400", pretrained=False, model__depth=18)
    digest = publish(mirror, "https://example.org/zoo/tmp.pth", {"state_dict": model.state_dict()})
    fake = f"tsm_r18_zoo_{digest[:8]}-{digest[:8]}.pth"
    (mirror / "example.org/zoo/tmp.pth").rename(mirror / "example.org/zoo" / fake)
    monkeypatch.setitem(zoo_checkpoints(), fake, {"url": f"https://example.org/zoo/{fake}",
                                                  "config": "tsm_r50_video_1x1x8_50e_kinetics400_rgb"})
    loaded = tsmcli.load_model(fake, model__depth=18)
    assert loaded.preset["name"] == "tsm_r50_video_1x1x8_50e_k400"
    assert torch.equal(loaded.head.fc.weight, model.head.fc.weight)


def test_unknown_checkpoint_suggests_the_zoo_name(tmp_path):
    with pytest.raises(UserError, match="did you mean the zoo's tsm_r50_1x1x8_50e_kinetics400_rgb_20200607"):
        tsmcli.load_model("tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb74.pth")


@pytest.mark.slow
def test_finetuning_presets_start_from_their_kinetics_checkpoint(mirror, tmp_path):
    """`tsm train` on a tsm_k400_pretrained_* preset starts where mmaction2's load_from does."""
    cfg = tsmcli.load_preset("tsm_k400_pretrained_r50_1x1x8_25e_ucf101")
    assert cfg["load_from"].endswith("tsm_r50_256p_1x1x8_50e_kinetics400_rgb_20200726-020785e2.pth")
    publish(mirror, cfg["load_from"], {"state_dict": {}})
    for command in (["train"], ["finetune"]):
        proc = subprocess.run([sys.executable, "-m", "tsmcli.cli", *command, "-p", cfg["name"], "--device", "cpu",
                               "--work-dir", str(tmp_path / "w")], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert "download.openmmlab.com/mmaction/recognition/tsm/tsm_r50_256p_1x1x8_50e_kinetics400_rgb" \
               in proc.stderr and "020785e2" in proc.stderr
