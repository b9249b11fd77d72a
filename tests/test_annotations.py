import time

import pytest
from conftest import SHARED

from tsmcli.data import load_annotations
from tsmcli.errors import UserError

ANN = SHARED / "fixtures/annotations"


def test_rawframe_list_with_prefix():
    records = load_annotations(ANN / "rawframe_test_list.txt", "rawframes", data_prefix="/data/k400")
    assert [(r.path, r.total_frames, r.labels, r.offset) for r in records] == [("/data/k400/imgs", 5, [127], 0)] * 2


def test_rawframe_list_with_offset():
    records = load_annotations(ANN / "rawframe_test_list_with_offset.txt", "rawframes", with_offset=True)
    assert (records[0].offset, records[0].total_frames, records[0].labels) == (2, 5, [127])


def test_multi_label_lists():
    records = load_annotations(ANN / "rawframe_test_list_multi_label.txt", "rawframes", multi_label=True)
    assert [r.labels for r in records] == [[1], [3, 5]]
    videos = load_annotations(ANN / "video_test_list_multi_label.txt", "videos", multi_label=True)
    assert [r.labels for r in videos] == [[0, 3], [0, 2, 4]]
    with pytest.raises(UserError, match="multi_label"):
        load_annotations(ANN / "video_test_list_multi_label.txt", "videos")


def test_video_list():
    records = load_annotations(ANN / "video_test_list.txt", "videos", data_prefix="v")
    assert [(r.path, r.labels, r.total_frames) for r in records] == [("v/test.mp4", [0], -1)] * 2


@pytest.mark.parametrize("content, fmt, message", [
    ("a 5 1\nb five 2\n", "rawframes", r":2: expected 'frame_dir total_frames label"),
    ("a 5\n", "rawframes", ":1: expected"),
    ("video.mp4\n", "videos", ":1: expected 'path label"),
    ("a 0 1\n", "rawframes", ":1: labels and frame counts must be positive"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, fmt, message):
    path = tmp_path / "list.txt"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        load_annotations(path, fmt)
    assert str(path) in str(err.value)


def test_missing_list_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_annotations(tmp_path / "nope.txt", "videos")


def test_kinetics_sized_list_parses_fast(tmp_path):
    path = tmp_path / "k400_train.txt"
    path.write_text("".join(f"train/class_{i % 400}/vid_{i:06d} {300 + i % 50} {i % 400}\n" for i in range(240_000)))
    start = time.perf_counter()
    records = load_annotations(path, "rawframes", data_prefix="data/k400/rawframes_train")
    elapsed = time.perf_counter() - start
    assert len(records) == 240_000 and records[-1].labels == [239_999 % 400]
    # A guard against a slow path creeping in (docs/benchmarks.md, "What the tests' margins rest on"),
    # loose because CI machines are shared.
    assert elapsed < 2.0


def test_vectorised_and_line_by_line_parsers_agree(tmp_path):
    from tsmcli.data.annotations import _parse_lines, _parse_uniform

    text = "".join(f"{i:05d} {i % 3} {10 + i} {i % 7}\n" for i in range(50))
    fast = _parse_uniform(text, 2, False, "pre")
    slow = _parse_lines(text, "x.txt", 2, False, "pre")
    assert fast is not None
    assert [fast[i] for i in range(50)] == [slow[i] for i in range(50)]


def test_paths_with_spaces(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("arm wrestling/clip 1.mp4 0\nwaving/a  b.mp4 2\n")
    records = load_annotations(path, "videos", data_prefix="v")
    assert [(r.path, r.labels) for r in records] == [("v/arm wrestling/clip 1.mp4", [0]), ("v/waving/a  b.mp4", [2])]
    path.write_text("class a/video x 120 3\n")
    assert load_annotations(path, "rawframes")[0].path == "class a/video x"
    path.write_text("test.mp4 0 3\n")  # two labels, not a path "test.mp4 0"
    with pytest.raises(UserError, match="multi_label"):
        load_annotations(path, "videos")


def test_frame_folders_named_after_videos_with_spaces_and_numbers(tmp_path):
    """`tsm prepare custom --frames` names each frame folder after its video: "clip 0.mp4" -> "clip 0"."""
    (tmp_path / "frames/jumping/clip 0").mkdir(parents=True)
    path = tmp_path / "list.txt"
    path.write_text("jumping/clip 0 300 1\n")
    records = load_annotations(str(path), "rawframes", str(tmp_path / "frames"))
    assert (records[0].path, records[0].total_frames, records[0].labels) == (str(tmp_path / "frames/jumping/clip 0"), 300, [1])
    with pytest.raises(UserError, match="list.txt:1: 2 labels on one line"):  # no such folder: a mistake, said
        load_annotations(str(path), "rawframes", str(tmp_path / "elsewhere"))
