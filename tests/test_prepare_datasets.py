"""Each public dataset's preparation on a miniature copy of its official layout."""
import json
import shutil

import pytest

from conftest import SHARED
from tsmcli.checkpoint import label_map
from tsmcli.errors import UserError
from tsmcli.prepare.datasets import prepare_hmdb51, prepare_kinetics400, prepare_ucf101

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
