"""Each public dataset's preparation on a miniature copy of its official layout."""
import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED

from tsmcli.errors import UserError
from tsmcli.labels import label_map
from tsmcli.prepare.datasets import prepare_hmdb51, prepare_kinetics400, prepare_ucf101
from tsmcli.presets import load_preset

CLIP = SHARED / "fixtures/videos/part_0.mp4"
AVI = SHARED / "fixtures/videos/test.avi"


def put(path, source=CLIP):
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)


@pytest.fixture()
def ucf101(tmp_path):
    classes = label_map("ucf101")
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for k in (1, 2, 3):
        (lists / f"trainlist0{k}.txt").write_text(
            f"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nArchery/v_Archery_g0{k}_c01.avi 3\n")
        (lists / f"testlist0{k}.txt").write_text("ApplyLipstick/v_ApplyLipstick_g01_c01.avi\n")
    put(tmp_path / "videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", AVI)
    for k in (1, 2):  # split 3's Archery video is missing
        put(tmp_path / f"videos/Archery/v_Archery_g0{k}_c01.avi", AVI)
    put(tmp_path / "videos/ApplyLipstick/v_ApplyLipstick_g01_c01.avi", AVI)
    return tmp_path


def test_ucf101_lists_labels_and_splits(ucf101):
    summary = prepare_ucf101(ucf101, workers=1)
    assert summary["failed"] == 1 and summary["train_split_1"] == 2 and summary["train_split_3"] == 1
    assert (ucf101 / "ucf101_train_split_1_videos.txt").read_text() == (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0\nArchery/v_Archery_g01_c01.avi 2\n")
    assert (ucf101 / "ucf101_val_split_2_videos.txt").read_text() == "ApplyLipstick/v_ApplyLipstick_g01_c01.avi 1\n"
    assert "Archery/v_Archery_g03_c01.avi\tmissing video" in (ucf101 / "failures.txt").read_text()


def test_ucf101_with_frames_writes_rawframe_lists(ucf101):
    prepare_ucf101(ucf101, splits=(1,), frames="short64", workers=1)
    line = (ucf101 / "ucf101_train_split_1_rawframes.txt").read_text().splitlines()[0]
    folder, total, label = line.split()
    assert folder == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01" and label == "0"
    assert len(list((ucf101 / "rawframes" / folder).iterdir())) == int(total) > 0


def test_ucf101_bad_class_index_names_line(ucf101):
    (ucf101 / "ucfTrainTestlist/trainlist01.txt").write_text("Unknown/v_x.avi 1\n")
    with pytest.raises(UserError, match=r"trainlist01.txt:1: unknown class 'Unknown'"):
        prepare_ucf101(ucf101, workers=1)


@pytest.fixture()
def hmdb51(tmp_path):
    lists = tmp_path / "testTrainMulti_7030_splits"
    lists.mkdir()
    for cls in label_map("hmdb51"):
        for k in (1, 2, 3):
            (lists / f"{cls}_test_split{k}.txt").write_text("")
    (lists / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (lists / "chew_test_split1.txt").write_text("d.avi 2 \n")
    for rel in ("brush_hair/a.avi", "brush_hair/b.avi", "brush_hair/c.avi", "chew/d.avi"):
        put(tmp_path / "videos" / rel, AVI)
    return tmp_path


def test_hmdb51_ids_and_splits(hmdb51):
    summary = prepare_hmdb51(hmdb51, workers=1)
    assert (summary["train_split_1"], summary["val_split_1"], summary["train_split_2"]) == (1, 2, 0)
    assert (hmdb51 / "hmdb51_train_split_1_videos.txt").read_text() == "brush_hair/a.avi 0\n"
    assert (hmdb51 / "hmdb51_val_split_1_videos.txt").read_text() == "brush_hair/b.avi 0\nchew/d.avi 3\n"


def test_hmdb51_malformed_line(hmdb51):
    (hmdb51 / "testTrainMulti_7030_splits/chew_test_split2.txt").write_text("d.avi 7\n")
    with pytest.raises(UserError, match=r"chew_test_split2.txt:1: expected 'video.avi 0\|1\|2'"):
        prepare_hmdb51(hmdb51, workers=1)


@pytest.fixture()
def kinetics(tmp_path):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (tmp_path / "annotations/kinetics-400_train.csv").write_text(
        header + "abseiling,aaa,10,20,train,0\narm wrestling,bbb,0,10,train,0\nzumba,ccc,5,15,train,0\n")
    (tmp_path / "annotations/kinetics-400_val.csv").write_text(header + '"arm wrestling",ddd,1,11,val,0\n')
    put(tmp_path / "videos_train/abseiling/aaa_000010_000020.mp4")
    put(tmp_path / "videos_train/zumba/ccc_000005_000015.mp4")  # bbb is missing, as Kinetics videos are
    put(tmp_path / "videos_val/ddd_000001_000011.mp4")           # flat layout
    return tmp_path


def test_kinetics400_lists_missing_and_layouts(kinetics):
    summary = prepare_kinetics400(kinetics, workers=1)
    assert summary == {"classes": 400, "train": 2, "val": 1, "missing_train": 1, "missing_val": 0}
    assert (kinetics / "kinetics400_train_list_videos.txt").read_text() == (
        "abseiling/aaa_000010_000020.mp4 0\nzumba/ccc_000005_000015.mp4 399\n")
    assert (kinetics / "kinetics400_val_list_videos.txt").read_text() == "ddd_000001_000011.mp4 6\n"
    assert (kinetics / "failures_train.txt").read_text() == "bbb_000000_000010.mp4\tmissing video\n"
    assert json.loads((kinetics / "summary_train.json").read_text())["failed"] == 1


def test_kinetics400_frames_go_where_the_presets_look(kinetics):
    prepare_kinetics400(kinetics, frames="short64", workers=1)
    line = (kinetics / "kinetics400_val_list_rawframes.txt").read_text().split()
    assert line[0] == "ddd_000001_000011" and (kinetics / "rawframes_val" / line[0] / "img_00001.jpg").exists()


@pytest.mark.parametrize("row, message", [
    ("dancing on the moon,eee,0,10,train,0", "unknown label 'dancing on the moon'"),
    ("abseiling,aaa,10,20,train,0", "duplicate video aaa_000010_000020 \\(first on line 2\\)"),
    ("abseiling,fff,ten,20,train,0", "time_start/time_end must be numbers"),
])
def test_kinetics400_bad_rows_name_file_and_line(kinetics, row, message):
    path = kinetics / "annotations/kinetics-400_train.csv"
    path.write_text(path.read_text() + row + "\n")
    with pytest.raises(UserError, match=f"kinetics-400_train.csv:5: {message}"):
        prepare_kinetics400(kinetics, workers=1)


def frame_folder(path, count):
    path.mkdir(parents=True)
    for i in range(1, count + 1):
        shutil.copy(SHARED / "fixtures/frames/img_00001.jpg", path / f"{i:05d}.jpg")


def test_sthv1_frame_folders_and_csvs(tmp_path):
    from tsmcli.prepare.datasets import prepare_sthv1

    classes = label_map("sthv1")
    (tmp_path / "something-something-v1-labels.csv").write_text("\n".join(classes) + "\n")
    (tmp_path / "something-something-v1-train.csv").write_text(f"1;{classes[3]}\n2;{classes[0]}\n3;{classes[0]}\n")
    (tmp_path / "something-something-v1-validation.csv").write_text(f"4;{classes[173]}\n")
    frame_folder(tmp_path / "20bn-something-something-v1/1", 5)
    frame_folder(tmp_path / "20bn-something-something-v1/2", 3)
    frame_folder(tmp_path / "20bn-something-something-v1/4", 2)   # 3 is missing
    summary = prepare_sthv1(tmp_path)
    assert summary == {"classes": 174, "failed": 1, "train": 2, "val": 1}
    assert (tmp_path / "sthv1_train_list_rawframes.txt").read_text() == "1 5 3\n2 3 0\n"
    assert (tmp_path / "rawframes").is_symlink()  # where the presets' data_prefix points
    import tsmcli

    item = tsmcli.build_dataset("tsm_r50_1x1x8_50e_sthv1", "val", ann_file=str(tmp_path / "sthv1_train_list_rawframes.txt"),
                                data_prefix=str(tmp_path / "rawframes"))[0]
    assert item["imgs"].shape == (8, 3, 224, 224) and not item["meta"]["failed"]


def test_jester_class_order_and_bad_row(tmp_path):
    from tsmcli.prepare.datasets import prepare_jester

    classes = label_map("jester")
    frame_folder(tmp_path / "20bn-jester-v1/10", 4)
    (tmp_path / "jester-v1-labels.csv").write_text("\n".join(classes[::-1]) + "\n")
    with pytest.raises(UserError, match="jester-v1-labels.csv: classes differ .* other order"):
        prepare_jester(tmp_path)
    (tmp_path / "jester-v1-labels.csv").write_text("\n".join(classes) + "\n")
    (tmp_path / "jester-v1-train.csv").write_text(f"10;{classes[1]}\n11,{classes[2]}\n")
    (tmp_path / "jester-v1-validation.csv").write_text("")
    with pytest.raises(UserError, match=r"jester-v1-train.csv:2: expected 'id;label'"):
        prepare_jester(tmp_path)
    (tmp_path / "jester-v1-train.csv").write_text(f"10;{classes[1]}\n")
    assert prepare_jester(tmp_path)["train"] == 1
    assert (tmp_path / "jester_train_list_rawframes.txt").read_text() == "10 4 1\n"
    with pytest.raises(UserError, match="published as JPEG frames already: --workers, --shard"):
        prepare_jester(tmp_path, workers=2, shard=(0, 2))  # options that would do nothing are refused


WEBM_WRITER = """
import sys
from fractions import Fraction
import av, numpy as np
with av.open(sys.argv[1], "w", format="webm") as out:
    stream = out.add_stream("libvpx-vp9", rate=12)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 12)
    for i in range(6):
        image = np.full((48, 64, 3), 20 * i, dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
"""


def write_webm(path):
    """A real VP9 .webm, made in a fresh process: libvpx fails to open in a process where decord's own
    FFmpeg libraries are already loaded."""
    import subprocess
    import sys

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", WEBM_WRITER, str(path)], check=True)


def test_sthv2_templates_webm_and_frames(tmp_path):
    import json as _json

    from tsmcli.prepare.datasets import prepare_sthv2

    classes = label_map("sthv2")
    (tmp_path / "something-something-v2-labels.json").write_text(_json.dumps({c: str(i) for i, c in enumerate(classes)}))
    template = classes[5].replace("something", "[something]", 1)
    (tmp_path / "something-something-v2-train.json").write_text(_json.dumps([
        {"id": "100", "label": "a concrete caption", "template": template, "placeholders": ["x"]},
        {"id": "101", "label": "another", "template": template, "placeholders": ["y"]}]))
    (tmp_path / "something-something-v2-validation.json").write_text("[]")
    write_webm(tmp_path / "20bn-something-something-v2/100.webm")
    summary = prepare_sthv2(tmp_path, frames="height32", workers=1)
    assert (summary["train"], summary["failed"]) == (1, 1)
    assert (tmp_path / "sthv2_train_list_videos.txt").read_text() == "100.webm 5\n"
    assert (tmp_path / "sthv2_train_list_rawframes.txt").read_text() == "100 6 5\n"
    (tmp_path / "something-something-v2-validation.json").write_text('[{"id": "7", "template": "Not a class"}]')
    with pytest.raises(UserError, match="validation.json: entry 1 \\(id 7\\): unknown template"):
        prepare_sthv2(tmp_path, workers=1)


def test_diving48_vocab_and_labels(tmp_path):
    import json as _json

    from tsmcli.prepare.datasets import prepare_diving48

    vocab = [name.split("+") for name in label_map("diving48")]
    (tmp_path / "Diving48_vocab.json").write_text(_json.dumps(vocab))
    (tmp_path / "Diving48_V2_train.json").write_text(_json.dumps(
        [{"vid_name": "a", "label": 47, "start_frame": 0, "end_frame": 10}]))
    (tmp_path / "Diving48_V2_test.json").write_text(_json.dumps([{"vid_name": "b", "label": 3}]))
    put(tmp_path / "rgb/a.mp4")
    put(tmp_path / "rgb/b.mp4")
    assert prepare_diving48(tmp_path, workers=1)["val"] == 1
    assert (tmp_path / "diving48_train_list_videos.txt").read_text() == "a.mp4 47\n"
    assert (tmp_path / "videos").is_symlink()
    (tmp_path / "Diving48_V2_test.json").write_text(_json.dumps([{"vid_name": "b", "label": 48}]))
    with pytest.raises(UserError, match="Diving48_V2_test.json: entry 1 \\(b\\): label 48"):
        prepare_diving48(tmp_path, workers=1)
    (tmp_path / "Diving48_V2_test.json").write_text("[{broken")
    with pytest.raises(UserError, match="Diving48_V2_test.json:1: not valid JSON"):
        prepare_diving48(tmp_path, workers=1)


@pytest.mark.slow
def test_unwritable_output_is_an_error_naming_the_path(tmp_path):
    import subprocess
    import sys

    (tmp_path / "taken").write_text("a file where the output folder should be")
    result = subprocess.run([sys.executable, "-m", "tsmcli.cli", "prepare", "toy", "--root",
                             str(tmp_path / "taken" / "toy"), "--train-per-class", "1", "--val-per-class", "1"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(tmp_path / "taken") in result.stderr


@pytest.mark.parametrize("prepare, missing", [
    (prepare_ucf101, "ucfTrainTestlist/classInd.txt"),
    (prepare_kinetics400, "annotations"),
    (prepare_hmdb51, "testTrainMulti_7030_splits"),
])
def test_missing_annotations_are_named(tmp_path, prepare, missing):
    with pytest.raises(UserError, match=missing):
        prepare(tmp_path, workers=1)


def test_kinetics400_official_tarball_layout(tmp_path):
    """The official tarballs unpack to train/ and val/ beside annotations/{train,validate}.csv."""
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations/train.csv").write_text(header + "abseiling,aaa,10,20,train\nzumba,ccc,5,15,train\n")
    (tmp_path / "annotations/validate.csv").write_text(header + "arm wrestling,ddd,1,11,val\n")
    put(tmp_path / "train/aaa_000010_000020.mp4")
    put(tmp_path / "train/ccc_000005_000015.mp4")
    put(tmp_path / "val/arm wrestling/ddd_000001_000011.mp4")
    summary = prepare_kinetics400(tmp_path, workers=1)
    assert summary == {"classes": 400, "train": 2, "val": 1, "missing_train": 0, "missing_val": 0}
    # the lists resolve under the folder name the presets read, which now links to the official train/
    preset_prefix = Path(load_preset("tsm_r50_video_1x1x8_50e_k400")["data"]["train"]["data_prefix"]).name
    first = (tmp_path / "kinetics400_train_list_videos.txt").read_text().split()[0]
    assert (tmp_path / preset_prefix / first).is_file() and preset_prefix == "videos_train"


def test_ucf101_official_rar_layout(ucf101):
    (ucf101 / "videos").rename(ucf101 / "UCF-101")  # UCF101.rar unpacks to UCF-101/<Class>/
    summary = prepare_ucf101(ucf101, workers=1)
    assert summary["train_split_1"] == 2 and (ucf101 / "videos/Archery/v_Archery_g01_c01.avi").is_file()


@pytest.mark.parametrize("folder", ["hmdb51_org", "."])
def test_hmdb51_official_per_class_rar_layout(hmdb51, folder):
    """hmdb51_org.rar holds <class>.rar files, each unpacking to <class>/*.avi."""
    for cls in ("brush_hair", "chew"):
        (hmdb51 / folder).mkdir(exist_ok=True)
        (hmdb51 / "videos" / cls).rename(hmdb51 / folder / cls)
    (hmdb51 / "videos").rmdir()
    summary = prepare_hmdb51(hmdb51, workers=1)
    assert (summary["train_split_1"], summary["val_split_1"]) == (1, 2)
    assert (hmdb51 / "videos/brush_hair/a.avi").is_file()


@pytest.mark.parametrize("dataset", ["kinetics400", "ucf101", "hmdb51"])
def test_no_videos_found_is_an_error_naming_folder_and_accepted_names(request, dataset):
    root = request.getfixturevalue({"kinetics400": "kinetics"}.get(dataset, dataset))
    prepare = {"kinetics400": prepare_kinetics400, "ucf101": prepare_ucf101, "hmdb51": prepare_hmdb51}[dataset]
    folder = "videos_train" if dataset == "kinetics400" else "videos"
    (root / folder).rename(root / "my_videos")  # somewhere tsm does not look
    if dataset == "kinetics400":
        message = r"found 0 of the 3 listed videos in .*videos_train .*accepted folder names: videos_train, train"
    else:
        message = r"no video folder: expected .*videos or .*(UCF-101|hmdb51_org)"
    with pytest.raises(UserError, match=message):
        prepare(root, workers=1)
    (root / folder).mkdir()  # the right name, but the videos are elsewhere
    with pytest.raises(UserError, match=r"found 0 of the \d+ listed videos in .*accepted folder names: videos"):
        prepare(root, workers=1)
    assert not list(root.glob("*_videos.txt"))


def test_annotation_paths_outside_root_are_refused(ucf101):
    (ucf101 / "ucfTrainTestlist/trainlist01.txt").write_text("ApplyEyeMakeup/../../../etc/passwd 1\n")
    with pytest.raises(UserError, match=r"trainlist01.txt:1: .* leads outside --root"):
        prepare_ucf101(ucf101, workers=1)


@pytest.mark.slow
def test_cli_exits_2_when_nothing_is_found(tmp_path):
    import subprocess
    import sys

    (tmp_path / "ucfTrainTestlist").mkdir()
    (tmp_path / "ucfTrainTestlist/classInd.txt").write_text(
        "".join(f"{i + 1} {c}\n" for i, c in enumerate(label_map("ucf101"))))
    (tmp_path / "UCF101").mkdir()  # a wrong folder name
    proc = subprocess.run([sys.executable, "-m", "tsmcli.cli", "prepare", "ucf101", "--root", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no video folder" in proc.stderr and "UCF-101" in proc.stderr


@pytest.mark.parametrize("dataset, folder", [("kinetics400", "train/, val/"), ("ucf101", "UCF-101"),
                                             ("hmdb51", "hmdb51_org")])
def test_prepare_help_names_the_official_layout(dataset, folder):
    from typer.testing import CliRunner

    from tsmcli.cli import app

    result = CliRunner().invoke(app, ["prepare", dataset, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and folder in " ".join(result.output.split())  # however it wraps
