"""Write tsmcli/presets/configs/ from mmaction2's resolved configs and the model-zoo table.

    python tools/make_presets.py [--zoo ../shared/reference/tsm_model_zoo.zh-CN.md]

Inputs: tests/data/mmaction/configs.json (made by tools/mmaction_reference/generate.py from mmaction2
0.24.1's own config files) and the zoo's markdown table (reference results). Shared values go to
tsmcli/presets/configs/_base/tsm.yaml and one base per dataset; each preset file holds only what differs.
"""
import argparse
import copy
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tsmcli.presets import deep_merge, dump_preset  # noqa: E402
from tsmcli.presets.importer import changed_keys  # noqa: E402
from tsmcli.presets.mmaction import preset_from_mmaction  # noqa: E402

DATASETS = {  # the zoo name's suffix -> (our short name, label-map name, display name)
    "kinetics400": ("k400", "kinetics400", "Kinetics-400"),
    "sthv1": ("sthv1", "sthv1", "Something-Something V1"),
    "sthv2": ("sthv2", "sthv2", "Something-Something V2"),
    "diving48": ("diving48", "diving48", "Diving48"),
    "jester": ("jester", "jester", "Jester"),
    "hmdb51": ("hmdb51", "hmdb51", "HMDB51"),
    "ucf101": ("ucf101", "ucf101", "UCF101"),
}
CANONICAL = "tsm_r50_1x1x8_50e_kinetics400_rgb"
OUTSIDE_THE_ZOO_TABLE = {  # TSM configs mmaction2 0.x ships without a row in the zoo's table
    "tsm_temporal_pool_r50_1x1x8_50e_kinetics400_rgb", "tsm_r50_video_inference_1x1x8_100e_kinetics400_rgb",
    "tsm_mobilenetv2_video_dense_1x1x8_100e_kinetics400_rgb",
    "tsm_mobilenetv2_video_inference_dense_1x1x8_100e_kinetics400_rgb"}

COLUMNS = {
    "配置文件": "config", "分辨率": "resolution", "GPU 数量": "gpus", "主干网络": "backbone",
    "预训练": "pretrain", "top1 准确率": "top1", "top5 准确率": "top5",
    "参考代码的 top1 准确率": "ref_top1", "参考代码的 top5 准确率": "ref_top5",
    "top1 准确率变化": "top1_delta", "top5 准确率变化": "top5_delta",
    "推理时间 (video/s)": "speed", "GPU 显存占用 (M)": "memory_mb",
}


def our_name(zoo_name):
    name = zoo_name[:-len("_rgb")] if zoo_name.endswith("_rgb") else zoo_name
    return name.replace("kinetics400", "k400")


def dataset_of(zoo_name):
    return next(d for d in DATASETS if f"_{d}_rgb" in zoo_name)


def _number(text):
    text = text.strip()
    return None if text in ("", "x", "xx") else float(text)


def _resolution(text):
    text = text.strip()
    m = re.match(r"短边 (\d+)", text)
    if m:
        return f"short side {m.group(1)}"
    m = re.match(r"高 (\d+)", text)
    if m:
        return f"height {m.group(1)}"
    return text


def parse_zoo(path):
    """config name -> list of reference rows (one per resolution variant and test scheme)."""
    rows, header = {}, None
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "配置文件":
            header = cells
            continue
        if header is None or not cells or set(cells[0]) <= {"-"} or len(cells) < len(header) - 1:
            if not line.strip().startswith(("tsm", "---")):
                header = None if not line.strip() else header
            continue
        record = dict(zip(header, cells))
        config = record["配置文件"].removesuffix(".py")
        schemes = "(efficient/accurate)" in " ".join(header)
        variants = [("efficient", 0), ("accurate", 1)] if schemes else [(None, None)]
        for scheme, index in variants:
            row = {"scheme": scheme} if scheme else {}
            for column, value in record.items():
                base = column.replace(" (efficient/accurate)", "")
                field = COLUMNS.get(base)
                if field in (None, "config"):
                    continue
                if index is not None and "/" in value:
                    value = value.split("/")[index]
                if field == "resolution":
                    row[field] = _resolution(value)
                elif field in ("gpus", "backbone", "pretrain"):
                    row[field] = value
                elif field == "speed":
                    row["speed_video_s"] = _number(value.split("(")[0]) if value.strip() != "x" else None
                    note = re.search(r"\((.*)\)", value)
                    row["speed_note"] = note.group(1) if note else None
                elif field == "memory_mb":
                    row[field] = int(value) if value.strip().isdigit() else None
                else:
                    row[field] = _number(value.replace("+", ""))
            if row not in rows.setdefault(config, []):
                rows[config].append(row)
    return rows


def describe(preset, zoo_name):
    m = preset["model"]
    arch = "MobileNetV2" if m["backbone"] == "mobilenetv2" else f"ResNet{m['depth']}"
    extras = []
    if m["non_local"]:
        extras.append(f"non-local ({m['non_local']['mode']})")
    sampler = preset["data"]["train"]["pipeline"][0]["type"]
    extras.append("dense sampling" if sampler == "DenseSampleFrames" else "segment sampling")
    for key in ("flip", "randaugment", "augmix", "mixup", "cutmix", "gpu_normalize"):
        if f"_{key}_" in zoo_name:
            extras.append(key.replace("_", " "))
    if m["temporal_pool"]:
        extras.append("temporal pool")
    dataset = f"{DATASETS[dataset_of(zoo_name)][2]} {preset['data']['format']}"
    if preset["inference_only"]:
        return f"TSM {arch}, {m['num_segments']} segments, testing on {dataset} only; {', '.join(extras)}"
    pretrain = "Kinetics-400 checkpoint" if "k400_pretrained" in zoo_name else "ImageNet"
    return (f"TSM {arch}, {m['num_segments']} segments, {preset['schedule']['epochs']} epochs on "
            f"{dataset}; {', '.join(extras)}; initialised from {pretrain}")


def write_yaml(path, data, header):
    text = dump_preset(data)
    path.write_text(header + text)
    print("wrote", path.relative_to(REPO))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zoo", default=str(REPO.parent / "shared/reference/tsm_model_zoo.zh-CN.md"))
    args = parser.parse_args()
    configs = json.loads((REPO / "tests/data/mmaction/configs.json").read_text())["configs"]
    zoo = parse_zoo(args.zoo)
    full = {}
    for zoo_name, cfg in configs.items():
        preset = preset_from_mmaction(cfg)
        preset["log"] = {"interval": 20}
        full[zoo_name] = {"dataset": DATASETS[dataset_of(zoo_name)][1],
                          "description": describe(preset, zoo_name), **preset,
                          "reference": zoo.get(zoo_name, [])}
        if not full[zoo_name]["reference"] and zoo_name not in OUTSIDE_THE_ZOO_TABLE:
            raise SystemExit(f"no zoo row for {zoo_name}")

    root = copy.deepcopy(full[CANONICAL])
    root.update({"dataset": None, "description": "", "reference": []})
    at = list(root).index("description") + 1  # a user's own class names (`tsm prepare custom` sets it)
    root = dict([*list(root.items())[:at], ("label_map", None), *list(root.items())[at:]])
    out_dir = REPO / "tsmcli" / "presets" / "configs"
    base_dir = out_dir / "_base"
    base_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(base_dir / "tsm.yaml", {"aliases": [], **root},
               "# Every key a preset can set, at the values of tsm_r50_1x1x8_50e_k400 (mmaction2 0.x).\n"
               "# Dataset bases and presets extend this file; `tsm presets show NAME` prints a preset resolved.\n"
               "# Generated by tools/make_presets.py from mmaction2 0.24.1's configs.\n")
    dataset_bases = {}
    # Each dataset's base comes from its plainest configuration (the shortest name: r50 1x1x8).
    for zoo_name in sorted(configs, key=lambda n: (len(n), n)):
        dataset = dataset_of(zoo_name)
        if dataset in dataset_bases:
            continue
        canon = {k: v for k, v in full[zoo_name].items() if k not in ("description", "reference")}
        base = changed_keys(canon, root)
        base = {k: base[k] for k in ("dataset", "data", "model", "optimizer", "evaluation", "checkpoint")
                if k in base}
        if "model" in base:  # a dataset base fixes the classes only; architecture stays per preset
            base["model"] = {k: v for k, v in base["model"].items() if k == "num_classes"}
        dataset_bases[dataset] = deep_merge(root, base)
        write_yaml(base_dir / f"{DATASETS[dataset][0]}.yaml", {"extends": "tsm.yaml", **base},
                   f"# Shared by the {DATASETS[dataset][2]} presets. Generated by tools/make_presets.py.\n")
    for zoo_name, preset in full.items():
        dataset = dataset_of(zoo_name)
        body = changed_keys({k: v for k, v in preset.items() if k not in ("description", "reference")},
                    dataset_bases[dataset])
        content = {"extends": f"_base/{DATASETS[dataset][0]}.yaml", "aliases": [zoo_name],
                   "description": preset["description"], **body, "reference": preset["reference"]}
        source = ("not in the zoo's table: no reference rows" if zoo_name in OUTSIDE_THE_ZOO_TABLE
                  else "reference rows from its model zoo")
        write_yaml(out_dir / f"{our_name(zoo_name)}.yaml", content, f"# mmaction2 0.x config {zoo_name}; {source}.\n")


if __name__ == "__main__":
    main()
