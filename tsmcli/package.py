"""A trained model as a self-describing folder, to share by hand or on the Hugging Face Hub:

    model.safetensors   the weights only (no pickle), with the resolved preset and the class names in its
                        metadata: the file alone loads wherever a checkpoint does
    preset.yaml         the resolved preset, for people and other tools (a copy of the metadata's)
    labels.txt          the class names, one per line, in class-index order
    README.md           the model card: Hub metadata, then what it recognises, how well, how fast, how to use
    model.onnx, model.xml + model.bin   with --with onnx / openvino: the exports, verified as tsm export does

`tsm package` writes it (package_model); checkpoint.read_checkpoint reads it, and `hf://org/name` fetches
one from the Hub (checkpoint.resolve_checkpoint); `tsm push` uploads it (push_package).
"""
import datetime
import json
import os
import platform
from pathlib import Path

from .atomic import write_bytes, write_text
from .checkpoint import PACKAGE_FORMAT, PACKAGE_WEIGHTS, safetensors_module
from .errors import OptionError, UserError

EXPORTS = {"onnx": ("model.onnx", "onnx"), "openvino": ("model.xml", "openvino")}
SOURCE_FORMATS = {"ours": "a tsm checkpoint", "mmaction": "a mmaction2 0.x checkpoint",
                  "original": "a checkpoint of the original TSM code"}
TSM_CITATION = """@inproceedings{lin2019tsm,
  title={TSM: Temporal Shift Module for Efficient Video Understanding},
  author={Lin, Ji and Gan, Chuang and Han, Song},
  booktitle={Proceedings of the IEEE International Conference on Computer Vision},
  year={2019}
}"""
NON_LOCAL_CITATION = """@inproceedings{wang2018non,
  title={Non-local Neural Networks},
  author={Wang, Xiaolong and Girshick, Ross and Gupta, Abhinav and He, Kaiming},
  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},
  year={2018}
}"""


def package_model(checkpoint, out, preset=None, test_result=None, exports=(), speed_iters=20, say=print):
    """Write the package of `checkpoint` (ours, mmaction2 0.x's or the original code's) into the folder
    `out`. test_result: what testing.test_checkpoint returned (the card's metrics; None: the card says none
    were measured). exports: "onnx", "openvino". speed_iters: videos timed for the card's speed (0: none).
    Returns the folder."""
    from .api import load_model
    from .presets.dump import dump_preset

    unknown = [name for name in exports if name not in EXPORTS]
    if unknown:
        raise OptionError("exports", ",".join(unknown), f"use {' or '.join(EXPORTS)}", flag="--with")
    serialize = safetensors_module().torch.save
    model = load_model(checkpoint, preset=preset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    metadata = {"format": PACKAGE_FORMAT, "version": "1", "preset": json.dumps(model.preset),
                "labels": json.dumps(model.labels), "source_format": model.checkpoint_format}
    write_bytes(out / PACKAGE_WEIGHTS, serialize(state, metadata=metadata))
    write_text(out / "preset.yaml", dump_preset(model.preset))
    if model.labels:
        write_text(out / "labels.txt", "".join(f"{label}\n" for label in model.labels))
    exported = []
    for name in exports:
        exported.append(_export(out, name, say))
    speed = _speed(model.preset, speed_iters) if speed_iters else None
    write_text(out / "README.md", model_card(model, checkpoint, test_result, speed, exported))
    say(f"wrote {out}: {PACKAGE_WEIGHTS}, preset.yaml, {'labels.txt, ' if model.labels else ''}README.md"
        + "".join(f", {file}" for file in exported))
    return out


def _export(out, name, say):
    from .export.build import export_file
    from .inference import load_predictor

    file, format = EXPORTS[name]
    predictor = load_predictor(out, fast=False)  # the package itself: what users will load
    report = export_file(predictor, out / file, format=format)
    say(f"{file}: verified against PyTorch (largest probability difference {report['max_abs_diff']:.2g})")
    return file


def _speed(preset, iters):
    from .speed import measure_model

    result = measure_model(preset, device="cpu", batch=1, iters=iters, warmup=2, fast=True)
    return {"videos_per_s": result["videos_per_s"], "ms_per_video": result["ms_per_batch"], "iters": iters,
            "machine": machine_name(), "threads": _threads()}


def _threads():
    import torch

    return torch.get_num_threads()


def machine_name():
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def latest_test_result(checkpoint):
    """The newest `tsm test --out` result (JSON) in the checkpoint's folder that tested this checkpoint,
    or None."""
    folder = Path(str(checkpoint)).resolve().parent
    found = []
    for path in folder.glob("*.json"):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(result, dict) and "metrics" in result and "scheme" in result and \
                Path(str(result.get("checkpoint", ""))).resolve() == Path(str(checkpoint)).resolve():
            found.append((path.stat().st_mtime, path, result))
    return max(found, key=lambda item: item[0])[2] if found else None


def model_card(model, checkpoint, test_result, speed, exported):
    """The README.md of a package: Hub metadata (YAML) and a page for people."""
    from .complexity import count_complexity
    from .data.pipeline import output_size

    preset = model.preset
    cfg, data = preset["model"], preset["data"]
    name = preset["name"]
    height, width = output_size(data["test"]["pipeline"])
    complexity = count_complexity(model, cfg["num_segments"], height, width)
    backbone = (f"ResNet-{cfg['depth']}" if cfg["backbone"] == "resnet" else f"MobileNetV2 (width {cfg['width_mult']})")
    labels = model.labels or []
    metrics = (test_result or {}).get("metrics") or {}
    front = ["---", "library_name: tsm", "pipeline_tag: video-classification",
             "tags:", "  - video-classification", "  - action-recognition", "  - temporal-shift-module", "  - tsm"]
    if preset.get("dataset"):
        front += ["datasets:", f"  - {preset['dataset']}"]
    front += ["license: apache-2.0"]
    if metrics:
        front += ["model-index:", f"  - name: {name}", "    results:", "      - task:",
                  "          type: video-classification", "        metrics:"]
        for key, value in metrics.items():
            front += [f"          - type: {key}", f"            value: {round(float(value), 4)}"]
    front.append("---")
    lines = [f"# {name}", "",
             f"A TSM (Temporal Shift Module) video action recognition model, packaged with "
             f"[tsm](https://pypi.org/project/tsm/). {(preset.get('description') or '').rstrip('.')}".rstrip(". ") + ".",
             "",
             "## What it recognises", ""]
    if labels and len(labels) <= 30:
        lines.append(f"{len(labels)} classes: " + ", ".join(f"`{label}`" for label in labels) + ".")
    elif labels:
        lines.append(f"{len(labels)} classes, listed in `labels.txt` (one per line, in class-index order).")
    else:
        lines.append(f"{cfg['num_classes']} classes; their names were not in the checkpoint.")
    if data["multi_label"]:
        lines.append("Multi-label: each class has its own probability (a sigmoid); a video may have several.")
    lines += ["", "## Architecture", "",
              f"- {backbone} with the temporal shift" + (f" ({cfg['shift_mode']}, 1/{cfg['shift_div']} of the "
                                                        f"channels each way, {cfg['shift_place']})" if cfg["shift"]
                                                        else " turned off"),
              f"- {cfg['num_segments']} frames per clip at {height}x{width}"
              + (", temporal pooling" if cfg["temporal_pool"] else "")
              + (f", non-local blocks ({cfg['non_local']['mode']})" if cfg["non_local"] else ""),
              f"- {complexity['params'] / 1e6:.2f} M parameters, {complexity['flops'] / 1e9:.2f} GFLOPs per clip "
              "(multiply-adds, as mmaction2's get_flops.py counts them)", "",
              "## Training", ""]
    lines += [f"- Preset: `{name}` (resolved in `preset.yaml`)",
              f"- Schedule: {preset['schedule']['epochs']} epochs, {data['videos_per_gpu']} videos per process, "
              f"learning rate {preset['optimizer']['lr']} for a batch of {preset['optimizer'].get('lr_batch_size')}",
              f"- Weights from: `{Path(str(checkpoint)).name}` ({SOURCE_FORMATS.get(model.checkpoint_format, model.checkpoint_format)})"]
    if preset.get("load_from"):
        lines.append(f"- Started from: `{preset['load_from']}`")
    lines += ["", "## Evaluation", ""]
    if metrics:
        views = test_result.get("views")
        lines += [f"`tsm test`, scheme `{test_result['scheme']}` ({views} view{'s' if views != 1 else ''} per video), "
                  f"{test_result['videos_total']} videos"
                  + (f", {len(test_result['failed'])} unreadable" if test_result.get("failed") else "") + ":", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {key} | {float(value):.4f} |" for key, value in metrics.items()]
    else:
        lines.append("Not measured for this package (`tsm package --eval LIST` runs `tsm test` and puts its "
                     "metrics here).")
    reference = [row for row in preset.get("reference") or [] if row.get("top1") is not None]
    if reference:
        row = reference[0]
        lines += ["", f"The model zoo reports top-1 {row['top1']}" + (f", top-5 {row['top5']}" if row.get("top5")
                                                                    else "") + " for this preset."]
    lines += ["", "## Speed", ""]
    if speed:
        lines.append(f"{speed['videos_per_s']:.1f} videos/s ({speed['ms_per_video']:.1f} ms per clip) at batch 1 "
                     f"on {speed['machine']}, {speed['threads']} threads, PyTorch's inference fast path "
                     f"(`tsm benchmark model --preset {name} --iters {speed['iters']} --fast`), measured when "
                     f"packaged on {datetime.date.today().isoformat()}.")
    else:
        lines.append("Not measured for this package.")
    lines += ["", "## How to use", "", "```bash", "pip install tsm",
              "tsm predict clip.mp4 --ckpt hf://ORG/NAME      # or the folder: --ckpt path/to/this/folder",
              "tsm stream /dev/video0 --ckpt hf://ORG/NAME --realtime", "tsm test hf://ORG/NAME --list test.txt",
              "```", "", "```python", "import tsmcli", "", 'predictor = tsmcli.load_predictor("hf://ORG/NAME")',
              'print(predictor("clip.mp4").top)', "```"]
    if exported:
        lines += ["", "Exported and verified against PyTorch: " + ", ".join(f"`{f}`" for f in exported)
                  + " (`tsm predict clip.mp4 --ckpt model.onnx`)."]
    lines += ["", "## Limitations", "",
              f"- It knows only the classes above, from clips like those of its training data"
              f"{' (' + preset['dataset'] + ')' if preset.get('dataset') else ''}: other actions get one of them.",
              f"- It sees {cfg['num_segments']} frames of a clip; actions much longer or shorter than its "
              "training clips, or filmed very differently, may be misread.",
              "- Video recognition can be misused for surveillance; use it where the people filmed agree.",
              "", "## Citation", "", "```bibtex", TSM_CITATION]
    if cfg["non_local"]:
        lines += ["", NON_LOCAL_CITATION]
    lines += ["```", ""]
    return "\n".join(front) + "\n\n" + "\n".join(lines)


def push_package(folder, repo, public=False, revision=None, say=print):
    """Upload a package folder to the Hugging Face Hub as the model repository `repo` (org/name), private
    unless public; the token comes from huggingface_hub's usual places (HF_TOKEN, `hf auth login`)."""
    folder = Path(folder)
    if not (folder / PACKAGE_WEIGHTS).is_file():
        raise UserError(f"{folder} is not a package (no {PACKAGE_WEIGHTS}): write one with tsm package")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise OptionError("repo", repo, "name the Hub repository as ORG/NAME (or USER/NAME)")
    hub = hub_module()
    api = hub.HfApi()
    if not (os.environ.get("HF_TOKEN") or hub.get_token()):
        raise UserError("no Hugging Face token: log in with `hf auth login`, or set HF_TOKEN")
    api.create_repo(repo, repo_type="model", private=not public, exist_ok=True)
    commit = api.upload_folder(repo_id=repo, repo_type="model", folder_path=str(folder), revision=revision,
                               commit_message=f"tsm package {folder.name}")
    say(f"pushed {folder} to {repo} ({'public' if public else 'private'}): load it with --ckpt hf://{repo}")
    return commit


def hub_module():
    try:
        import huggingface_hub
    except ImportError:
        raise UserError("the Hugging Face Hub needs the hub extra: pip install 'tsm[hub]'") from None
    return huggingface_hub
