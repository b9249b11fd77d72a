"""What every dataset's preparation ends with: lists, label map, optional frames/resized videos,
failures.txt and summary.json."""
import json
import os
from pathlib import Path

from ..atomic import write_text
from ..data.annotations import label_text
from ..errors import UserError
from ..labels import label_map
from .media import process_videos


def check_class_order(classes, dataset, source):
    """Our presets number classes as the shipped label map does; say so when the download differs."""
    shipped = label_map(dataset)
    if shipped is not None and list(classes) != shipped:
        missing = sorted(set(classes) ^ set(shipped))[:5]
        raise UserError(f"{source}: classes differ from the {dataset} label map the presets use"
                        f"{' (' + ', '.join(missing) + ')' if missing else ' (same names, other order)'}")


def finish(root, name, classes, splits, videos_dir, failed=None, frames=None, resize=None, workers=None,
           shard=None, progress=None, list_names=None, frames_subdir="rawframes", tag="", decoder="auto"):
    """splits: {split name: [(video path relative to videos_dir, label)]}.

    Writes <list_names[split] or name_split_list>_videos.txt per split, label_map.txt, and with frames /
    resize the rawframe / resized-video lists. failed: {relative path: reason} already known (missing
    videos); extraction failures are added. Writes summary<tag>.json (and failures<tag>.txt) and
    returns the summary.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    failed = dict(failed or {})
    list_names = list_names or {split: f"{name}_{split}_list" for split in splits}
    for split, rows in splits.items():
        write_text(root / f"{list_names[split]}_videos.txt", "".join(f"{rel} {label_text(label)}\n" for rel, label in rows))
    if frames or resize:
        renamed = {list_names[s]: rows for s, rows in splits.items()}
        for path, reason in process_videos(root, videos_dir, renamed, frames, resize, workers, shard, progress=progress,
                                           frames_subdir=frames_subdir, decoder=decoder):
            failed[os.path.relpath(path, videos_dir)] = reason
    summary = {"classes": len(classes), "failed": len(failed), **{s: len(r) for s, r in splits.items()}}
    write_outputs(root, classes, failed, summary, tag)
    return summary


def write_outputs(root, classes, failed, summary, tag=""):
    """label_map.txt, failures<tag>.txt (path, tab, reason; only when something failed), summary<tag>.json."""
    write_text(root / "label_map.txt", "".join(c + "\n" for c in classes))
    if failed:
        write_text(root / f"failures{tag}.txt", "".join(f"{p}\t{r}\n" for p, r in sorted(failed.items())))
    write_text(root / f"summary{tag}.json", json.dumps(summary, indent=1) + "\n")
