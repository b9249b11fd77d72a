import json
import logging
import shutil

import pytest
import torch
from conftest import SHARED
from torch.utils.data import DistributedSampler

import tsmcli
from tsmcli.data import build_loader
from tsmcli.presets import preset_names

VIDEOS = SHARED / "fixtures/videos"
FRAMES = SHARED / "fixtures/frames"


@pytest.fixture(scope="module")
def media(module_dir):
    """Lists for both formats; frame folders in both naming schemes (img_00001.jpg and 00001.jpg)."""
    root = module_dir("media")
    for name, tmpl in (("frames_img", "img_{:05d}.jpg"), ("frames_plain", "{:05d}.jpg")):
        (root / name).mkdir()
        for i in range(1, 11):
            shutil.copy(FRAMES / f"img_{i:05d}.jpg", root / name / tmpl.format(i))
    (root / "videos.txt").write_text("demo.mp4 6\ntest.mp4 1\npart_0.mp4 2\n")
    (root / "frames_img.txt").write_text("frames_img 10 1\n")
    (root / "frames_plain.txt").write_text("frames_plain 10 1\n")
    return root


def unique_pipelines():
    """Each distinct (format, template, split pipeline) among the presets, with one preset using it."""
    seen = {}
    for name in preset_names():
        preset = tsmcli.load_preset(name)
        data = preset["data"]
        for split in ("train", "val", "test"):
            key = json.dumps([data["format"], data["filename_tmpl"], data[split]["pipeline"]], sort_keys=True)
            seen.setdefault(key, (name, split))
    return sorted(seen.values())


@pytest.mark.parametrize("name, split", unique_pipelines())
def test_every_preset_pipeline_gives_the_models_input(name, split, media):
    preset = tsmcli.load_preset(name)
    data = preset["data"]
    if data["format"] == "videos":
        ann, prefix = media / "videos.txt", VIDEOS
    else:
        ann = media / ("frames_img.txt" if data["filename_tmpl"].startswith("img_") else "frames_plain.txt")
        prefix = media
    dataset = tsmcli.build_dataset(name, split, ann_file=str(ann), data_prefix=str(prefix),
                                   model__num_classes=max(preset["model"]["num_classes"], 10))  # the lists say 6
    item = dataset[0]
    imgs = item["imgs"]
    crop = _output_size(data[split]["pipeline"])
    segments = preset["model"]["num_segments"]
    assert imgs.shape[1:] == (3, crop, crop)
    assert imgs.shape[0] % segments == 0
    assert imgs.shape[0] // segments == item["meta"]["views"]
    assert imgs.dtype == (torch.uint8 if preset["model"]["normalize"] else torch.float32)
    assert not item["meta"]["failed"]


def _output_size(steps):
    """The side the last size-setting step gives: a fixed Resize or a Center/Three/TenCrop."""
    for step in reversed(steps):
        if step["type"] == "Resize" and not step["keep_ratio"]:
            return step["scale"][1]
        if step["type"] in ("CenterCrop", "ThreeCrop", "TenCrop"):
            return step["crop_size"]
    raise AssertionError("pipeline without a fixed output size")


def test_item_metadata_shows_what_the_model_saw(media):
    dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "test", ann_file=str(media / "videos.txt"),
                                   data_prefix=str(VIDEOS))
    meta = dataset[0]["meta"]
    assert meta["frame_inds"] == [17, 52, 87, 122, 157, 192, 227, 262]  # mmaction2's, see test_data_parity
    assert meta["path"] == str(VIDEOS / "demo.mp4") and dataset[0]["label"].item() == 6


def test_training_items_reproducible_and_worker_independent(media):
    dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "train", ann_file=str(media / "videos.txt"),
                                   data_prefix=str(VIDEOS), seed=3)
    first = [dataset[i] for i in range(3)]
    again = dataset[1]
    assert again["imgs"].equal(first[1]["imgs"]) and again["meta"]["frame_inds"] == first[1]["meta"]["frame_inds"]
    loaded = next(iter(build_loader(dataset, batch_size=3, num_workers=2, shuffle=False)))
    assert torch.equal(loaded["imgs"], torch.stack([it["imgs"] for it in first]))
    dataset.set_epoch(1)
    assert dataset[1]["meta"]["frame_inds"] != first[1]["meta"]["frame_inds"] or \
        not dataset[1]["imgs"].equal(first[1]["imgs"])


def test_each_epoch_draws_new_clips_with_loader_workers(media):
    """Persistent workers hold their own dataset copy: the epoch must reach them through the loader."""
    def first_clips(workers):
        dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "train", ann_file=str(media / "videos.txt"),
                                       data_prefix=str(VIDEOS), seed=3)
        loader = build_loader(dataset, batch_size=1, num_workers=workers, shuffle=False)
        clips = []
        for epoch in range(3):
            dataset.set_epoch(epoch)
            clips.append(next(iter(loader))["meta"][0]["frame_inds"])
        return clips

    with_workers = first_clips(2)
    assert with_workers == first_clips(0)
    assert len({tuple(c) for c in with_workers}) == 3


@pytest.fixture()
def broken(tmp_path):
    data = (VIDEOS / "test.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    shutil.copy(VIDEOS / "demo.mp4", tmp_path / "good.mp4")
    lines = ["truncated.mp4 0", "empty.mp4 1", "missing.mp4 2", "garbage.mp4 3", "good.mp4 4"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_broken_videos_are_replaced_in_training_and_reported(broken, caplog):
    dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "train", ann_file=str(broken / "list.txt"),
                                   data_prefix=str(broken))
    failed_paths = set()
    with caplog.at_level(logging.WARNING, logger="tsmcli.data"):
        for i in range(len(dataset)):
            item = dataset[i]
            assert item["imgs"].shape == (8, 3, 224, 224)
            assert item["meta"]["path"].endswith("good.mp4") or item["meta"]["source_index"] == i
            failed_paths |= {f["path"] for f in item["meta"]["failures"]}
    names = {p.split("/")[-1] for p in failed_paths}
    assert names == {"truncated.mp4", "empty.mp4", "missing.mp4", "garbage.mp4"}
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == len(set(logged))  # once per path


def test_broken_videos_are_reported_at_test_time_not_dropped(broken):
    dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "test", ann_file=str(broken / "list.txt"),
                                   data_prefix=str(broken))
    items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == 5
    assert [it["meta"]["failed"] for it in items] == [True, True, True, True, False]
    reasons = {it["meta"]["path"].split("/")[-1]: it["meta"]["failures"][0]["reason"] for it in items if it["meta"]["failed"]}
    assert reasons["empty.mp4"] == "empty file" and reasons["missing.mp4"] == "file not found"
    assert all(it["imgs"].shape == (8, 3, 224, 224) for it in items)
    assert [it["label"].item() for it in items] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("damage, path_end, reason", [
    ("missing", "clip/img_00007.jpg", "cannot read frame"),
    ("broken", "clip", "cannot decode a frame"),
])
def test_broken_frames_are_reported(tmp_path, damage, path_end, reason):
    folder = tmp_path / "clip"
    shutil.copytree(FRAMES, folder)
    if damage == "missing":
        (folder / "img_00007.jpg").unlink()
    else:
        (folder / "img_00004.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    (tmp_path / "list.txt").write_text("clip 10 0\n")
    dataset = tsmcli.build_dataset("tsm_r50_1x1x8_50e_k400", "test", ann_file=str(tmp_path / "list.txt"),
                                   data_prefix=str(tmp_path))
    item = dataset[0]  # frames 1, 2, 4, 5, 6, 7, 9, 10 are sampled: both damaged ones are read
    assert item["meta"]["failed"]
    failure = item["meta"]["failures"][0]
    assert failure["path"].endswith(path_end) and failure["reason"].startswith(reason)


def test_distributed_loaders_split_the_dataset(media):
    dataset = tsmcli.build_dataset("tsm_r50_video_1x1x8_50e_k400", "test", ann_file=str(media / "videos.txt"),
                                   data_prefix=str(VIDEOS))
    seen = []
    for rank in range(2):
        loader = build_loader(dataset, batch_size=1, num_workers=0,
                              sampler=DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True))
        seen.append([m["index"] for batch in loader for m in batch["meta"]])
    assert len(seen[0]) == len(seen[1]) == 2  # 3 items padded to 4 by DistributedSampler
    assert set(seen[0]) | set(seen[1]) == {0, 1, 2}
