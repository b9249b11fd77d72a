"""The public datasets, from their official layouts to the lists our presets read.

Each function reads the annotations as published and the videos where the official archives unpack
them (or where mmaction2's scripts put them), and hands the splits to common.finish (lists, label map,
optional frames / resized copies, failures, summary). Videos named in the annotations but absent on disk
are reported and left out of the lists; when more than MISSING_LIMIT of a split is absent, the folder is
surely the wrong one, and preparation stops instead of writing near-empty lists.
"""
import csv
import os
import re
from pathlib import Path

from ..atomic import write_text
from ..errors import UserError
from .common import check_class_order, finish, write_outputs

MISSING_LIMIT = 0.5  # share of a split's listed videos that may be absent (Kinetics always misses some)


def _require(path):
    if not Path(path).is_file():
        raise UserError(f"{path} does not exist: download the dataset's annotations and place them there")
    return Path(path)


def _lines(path):
    """(line number, line) for the non-blank lines of a text file."""
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            yield number, line


def _inside(rel, source, number):
    """A path from an annotation file, refused when it would lead outside the dataset's folder."""
    if os.path.isabs(rel) or ".." in Path(rel).parts:
        raise UserError(f"{source}:{number}: {rel!r} leads outside --root; refused")
    return rel


def _present(videos_dir, rows, failed, split="", accepted=()):
    """Keep the rows whose video exists; record the others as missing (see MISSING_LIMIT)."""
    kept = []
    for rel, label in rows:
        if os.path.isfile(os.path.join(videos_dir, rel)):
            kept.append((rel, label))
        else:
            failed[rel] = "missing video"
    _check_found(len(rows), len(kept), videos_dir, split, accepted)
    return kept


def _check_found(listed, found, videos_dir, split, accepted=()):
    if listed and listed - found > MISSING_LIMIT * listed:
        names = f"; accepted folder names: {', '.join(accepted)}" if accepted else ""
        raise UserError(f"{split or 'a split'}: found {found} of the {listed} listed videos in {videos_dir} "
                        f"(more than {MISSING_LIMIT:.0%} missing): is that the folder the videos were unpacked "
                        f"to?{names}")


def prepare_ucf101(root, splits=(1, 2, 3), **media):
    """ucfTrainTestlist/{classInd,trainlist0k,testlist0k}.txt and <Class>/v_<Class>_gXX_cYY.avi in UCF-101/
    (as UCF101.rar unpacks) or videos/ (mmaction2's)."""
    root = Path(root)
    lists_dir = root / "ucfTrainTestlist"
    index = {}
    for number, line in _lines(_require(lists_dir / "classInd.txt")):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise UserError(f"{lists_dir / 'classInd.txt'}:{number}: expected 'index ClassName', got {line!r}")
        index[parts[1]] = int(parts[0]) - 1
    classes = sorted(index, key=index.get)
    check_class_order(classes, "ucf101", lists_dir / "classInd.txt")
    videos_dir = _folder(root, UCF101_FOLDERS, "video")
    out, failed = {}, {}
    for k in splits:
        for split, filename in (("train", f"trainlist0{k}.txt"), ("val", f"testlist0{k}.txt")):
            path = _require(lists_dir / filename)
            rows = []
            for number, line in _lines(path):
                rel = _inside(line.split()[0], path, number)
                cls = rel.split("/")[0]
                if cls not in index:
                    raise UserError(f"{path}:{number}: unknown class {cls!r} (not in classInd.txt)")
                rows.append((rel, index[cls]))
            out[f"{split}_split_{k}"] = _present(videos_dir, rows, failed, f"{path}", UCF101_FOLDERS)
    names = {key: f"ucf101_{key}" for key in out}
    return finish(root, "ucf101", classes, out, videos_dir, failed, list_names=names, **media)


def prepare_hmdb51(root, splits=(1, 2, 3), **media):
    """testTrainMulti_7030_splits/<class>_test_split{k}.txt ('name.avi 1|2|0': train, test, unused) and
    <class>/<name>.avi folders: as the per-class .rar files of hmdb51_org.rar unpack (in hmdb51_org/, or
    in --root itself), or in videos/ (mmaction2's). Classes are numbered in sorted order, as the shipped
    label map is."""
    root = Path(root)
    lists_dir = root / "testTrainMulti_7030_splits"
    if not lists_dir.is_dir():
        raise UserError(f"{lists_dir} does not exist: unpack the official split files there")
    classes = sorted({re.sub(r"_test_split\d\.txt$", "", p.name) for p in lists_dir.glob("*_test_split*.txt")})
    if not classes:
        raise UserError(f"{lists_dir} has no <class>_test_split<k>.txt files")
    check_class_order(classes, "hmdb51", lists_dir)
    if not any((root / name).is_dir() for name in HMDB51_FOLDERS) and (root / classes[0]).is_dir():
        os.symlink(".", root / HMDB51_FOLDERS[0])  # class folders unpacked straight into --root
    videos_dir = _folder(root, HMDB51_FOLDERS, "video")
    out, failed = {}, {}
    for k in splits:
        rows = {"train": [], "val": []}
        for label, cls in enumerate(classes):
            path = _require(lists_dir / f"{cls}_test_split{k}.txt")
            for number, line in _lines(path):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise UserError(f"{path}:{number}: expected 'video.avi 0|1|2', got {line.strip()!r}")
                if parts[1] != "0":
                    rel = _inside(f"{cls}/{parts[0]}", path, number)
                    rows["train" if parts[1] == "1" else "val"].append((rel, label))
        for split in ("train", "val"):
            out[f"{split}_split_{k}"] = _present(videos_dir, rows[split], failed, f"split {k} {split}",
                                                 HMDB51_FOLDERS + ("--root itself",))
    names = {key: f"hmdb51_{key}" for key in out}
    return finish(root, "hmdb51", classes, out, videos_dir, failed, list_names=names, **media)


def prepare_kinetics400(root, **media):
    """annotations/*{train,val}*.csv (label, youtube_id, time_start, time_end, split[, is_cc]; the official
    train.csv and validate.csv included) and <youtube_id>_<start:06d>_<end:06d>.mp4 files, flat or in class
    folders, in train/ and val/ (as the official tarballs unpack) or videos_{train,val}/ (mmaction2's)."""
    root = Path(root)
    from ..labels import label_map

    classes = label_map("kinetics400")
    index = {c: i for i, c in enumerate(classes)}
    summaries = {}
    for split in ("train", "val"):
        candidates = sorted((root / "annotations").glob(f"*{split}*.csv")) + sorted(root.glob(f"*{split}*.csv"))
        if not candidates:
            raise UserError(f"no {split} CSV in {root / 'annotations'} (kinetics400_{split}.csv or the "
                            f"official kinetics-400_{split}.csv)")
        csv_path = candidates[0]
        accepted = KINETICS_FOLDERS[split]
        videos_dir = root / accepted[0]
        if any((root / name).is_dir() for name in accepted):
            videos_dir = _folder(root, accepted, f"{split} video")
        on_disk = {}
        if videos_dir.is_dir():
            for dirpath, _, files in os.walk(videos_dir):
                for f in files:
                    on_disk[os.path.splitext(f)[0]] = os.path.relpath(os.path.join(dirpath, f), videos_dir)
        rows, failed, seen = [], {}, {}
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"label", "youtube_id", "time_start", "time_end"}
            if not need <= set(reader.fieldnames or []):
                raise UserError(f"{csv_path}:1: header must have {sorted(need)}, got {reader.fieldnames}")
            for number, row in enumerate(reader, 2):
                label = row["label"].strip().strip('"')
                if label not in index:
                    raise UserError(f"{csv_path}:{number}: unknown label {label!r}")
                try:
                    stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}"
                except ValueError:
                    raise UserError(f"{csv_path}:{number}: time_start/time_end must be numbers") from None
                if stem in seen:
                    raise UserError(f"{csv_path}:{number}: duplicate video {stem} (first on line {seen[stem]})")
                seen[stem] = number
                if stem in on_disk:
                    rows.append((on_disk[stem], index[label]))
                else:
                    failed[stem + ".mp4"] = "missing video"
        _check_found(len(seen), len(rows), videos_dir, f"{csv_path}", accepted)
        summaries[split] = finish(root, "kinetics400", classes, {split: rows}, videos_dir, failed,
                                  list_names={split: f"kinetics400_{split}_list"},
                                  frames_subdir=f"rawframes_{split}", tag=f"_{split}", **media)
    return {"classes": len(classes), "train": summaries["train"]["train"], "val": summaries["val"]["val"],
            "missing_train": summaries["train"]["failed"], "missing_val": summaries["val"]["failed"]}


KINETICS_FOLDERS = {"train": ("videos_train", "train"), "val": ("videos_val", "val", "validate")}
UCF101_FOLDERS = ("videos", "UCF-101")
HMDB51_FOLDERS = ("videos", "hmdb51_org", "hmdb51")
STHV2_FOLDERS = ("videos", "20bn-something-something-v2")
DIVING48_FOLDERS = ("videos", "rgb")


def _folder(root, names, what):
    """The first existing folder among names; the presets read `<root>/<names[0]>`, so when only an
    official name exists a symlink with the presets' name is made to it."""
    for name in names:
        if (root / name).is_dir():
            if name != names[0] and not (root / names[0]).exists():
                os.symlink(name, root / names[0])
            return root / names[0]
    raise UserError(f"no {what} folder: expected {' or '.join(str(root / n) for n in names)}")


def _read_labels_csv(path, dataset):
    classes = [line.strip() for _, line in _lines(_require(path))]
    check_class_order(classes, dataset, path)
    return {c: i for i, c in enumerate(classes)}, classes


def _frame_folder_dataset(root, name, folders, csv_names, labels_csv, filename_glob):
    """Datasets published as JPEG folders with `id;label` CSVs (Something-Something V1, Jester)."""
    root = Path(root)
    frames_dir = _folder(root, folders, "frame")
    index, classes = _read_labels_csv(root / labels_csv, name)
    summary, failed = {}, {}
    for split, csv_name in csv_names.items():
        path = _require(root / csv_name)
        lines, listed = [], 0
        for number, line in _lines(path):
            listed += 1
            parts = line.split(";")
            if len(parts) != 2:
                raise UserError(f"{path}:{number}: expected 'id;label', got {line.strip()!r}")
            video_id, label = _inside(parts[0].strip(), path, number), parts[1].strip()
            if label not in index:
                raise UserError(f"{path}:{number}: unknown label {label!r}")
            folder = frames_dir / video_id
            count = len([f for f in os.listdir(folder) if f.endswith(filename_glob)]) if folder.is_dir() else 0
            if count == 0:
                failed[video_id] = "missing frame folder" if not folder.is_dir() else "no frames"
                continue
            lines.append(f"{video_id} {count} {index[label]}\n")
        _check_found(listed, len(lines), frames_dir, str(path), folders)
        write_text(root / f"{name}_{split}_list_rawframes.txt", "".join(lines))
        summary[split] = len(lines)
    summary = {"classes": len(classes), "failed": len(failed), **summary}
    write_outputs(root, classes, failed, summary)
    return summary


def prepare_sthv1(root, **media):
    """Something-Something V1: <id>/00001.jpg folders (20bn-something-something-v1/ or rawframes/) and
    something-something-v1-{train,validation,labels}.csv. Frames are used as published (height 100)."""
    _no_media("sthv1", media)
    return _frame_folder_dataset(root, "sthv1", ("rawframes", "20bn-something-something-v1"),
                                 {"train": "something-something-v1-train.csv",
                                  "val": "something-something-v1-validation.csv"},
                                 "something-something-v1-labels.csv", ".jpg")


def prepare_jester(root, **media):
    """Jester: <id>/00001.jpg folders (20bn-jester-v1/ or rawframes/) and jester-v1-{train,validation,labels}.csv."""
    _no_media("jester", media)
    return _frame_folder_dataset(root, "jester", ("rawframes", "20bn-jester-v1"),
                                 {"train": "jester-v1-train.csv", "val": "jester-v1-validation.csv"},
                                 "jester-v1-labels.csv", ".jpg")


def _no_media(name, media):
    media.pop("decoder", None)  # frame folders: no video to decode
    given = [f"--{key.replace('resize', 'resize-videos')}" for key in ("frames", "resize", "workers", "shard")
             if media.get(key)]
    if given:
        raise UserError(f"{name} is published as JPEG frames already: {', '.join(given)} do(es) not apply")


def _load_json(path):
    import json

    try:
        return json.loads(_require(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def prepare_sthv2(root, **media):
    """Something-Something V2: videos/<id>.webm (or 20bn-something-something-v2/) and
    something-something-v2-{train,validation,labels}.json; a video's class is its template with the
    [brackets] removed, looked up in labels.json. The presets read frames: use --frames height256 (or 240)."""
    root = Path(root)
    videos_dir = _folder(root, STHV2_FOLDERS, "video")
    labels = _load_json(root / "something-something-v2-labels.json")
    index = {text: int(i) for text, i in labels.items()}
    classes = sorted(index, key=index.get)
    check_class_order(classes, "sthv2", root / "something-something-v2-labels.json")
    splits, failed = {}, {}
    for split, filename in (("train", "something-something-v2-train.json"),
                            ("val", "something-something-v2-validation.json")):
        path = root / filename
        rows = []
        for number, entry in enumerate(_load_json(path), 1):
            template = str(entry.get("template", "")).replace("[", "").replace("]", "")
            if template not in index:
                raise UserError(f"{path}: entry {number} (id {entry.get('id')}): unknown template {template!r}")
            rows.append((_inside(f"{entry['id']}.webm", path, f"entry {number}"), index[template]))
        splits[split] = _present(videos_dir, rows, failed, str(path), STHV2_FOLDERS)
    return finish(root, "sthv2", classes, splits, videos_dir, failed, **media)


def prepare_diving48(root, **media):
    """Diving48: rgb/<vid_name>.mp4, Diving48_V2_{train,test}.json and Diving48_vocab.json; the test
    split becomes our val list, as the presets evaluate on it."""
    root = Path(root)
    videos_dir = _folder(root, DIVING48_FOLDERS, "video")
    vocab = _load_json(root / "Diving48_vocab.json")
    classes = ["+".join(entry) for entry in vocab]
    check_class_order(classes, "diving48", root / "Diving48_vocab.json")
    splits, failed = {}, {}
    for split, filename in (("train", "Diving48_V2_train.json"), ("val", "Diving48_V2_test.json")):
        path = root / filename
        rows = []
        for number, entry in enumerate(_load_json(path), 1):
            label = entry.get("label")
            if not isinstance(label, int) or not 0 <= label < len(classes):
                raise UserError(f"{path}: entry {number} ({entry.get('vid_name')}): label {label!r} is not a "
                                f"class index of Diving48_vocab.json")
            rows.append((_inside(f"{entry['vid_name']}.mp4", path, f"entry {number}"), label))
        splits[split] = _present(videos_dir, rows, failed, str(path), DIVING48_FOLDERS)
    return finish(root, "diving48", classes, splits, videos_dir, failed, **media)
