"""`tsm package` and `tsm push`: a trained model as a self-describing folder, and that folder on the Hub."""
from pathlib import Path
from typing import List, Optional

import typer

from . import options


def package(
    checkpoint: str = typer.Argument(..., help=options.CHECKPOINT_HELP.split("; or a model")[0] + "."),
    out: Path = typer.Option(..., "--out", "-o", help="The package folder (created; files in it are replaced)."),
    preset: Optional[str] = options.preset(required=False),
    eval_list: Optional[Path] = typer.Option(None, "--eval", help="Run `tsm test` on this list and put its metrics "
                                                                  "in the model card [default: the newest `tsm test "
                                                                  "--out` result of this checkpoint beside it]."),
    data_root: Optional[Path] = options.data_root(),
    scheme: str = typer.Option("preset", help="The --eval test's scheme (as in tsm test)."),
    exports: List[str] = typer.Option([], "--with", help="Also export and verify: onnx, openvino (--with onnx,openvino)."),
    speed_iters: int = typer.Option(20, min=0, help="Videos timed for the card's speed figure (0: none)."),
):
    """Package a checkpoint to share: model.safetensors (weights only, no pickle), preset.yaml, labels.txt
    and a model card (README.md) with the metrics of a `tsm test` run and the speed on this machine. The
    folder, or its model.safetensors alone, works wherever a checkpoint does. Needs tsm[hub].

    Examples:

      tsm package work_dirs/mine/best.pth --out mine-tsm --eval data/mine/val.txt --data-root data/mine/videos

      tsm package tsm_r50_1x1x8_50e_kinetics400_rgb_20200607-af7fb746.pth --out tsm-k400 --with onnx,openvino
    """
    from ..process import configure_process

    configure_process(loader_workers=eval_list is not None, stop_on_signals=True)
    from ..checkpoint import resolve_checkpoint, safetensors_module
    from ..package import latest_test_result, package_model
    from ..testing import test_checkpoint

    safetensors_module()  # the extra is needed: say so before anything runs
    source = resolve_checkpoint(checkpoint)
    if eval_list is not None:
        result = test_checkpoint(source, preset=preset, scheme=scheme, ann_file=str(eval_list),
                                 data_prefix=str(data_root) if data_root is not None else None, device="cpu")
    else:
        result = latest_test_result(source)
        if result is None:
            typer.echo("no tsm test result of this checkpoint beside it: the model card says its metrics were not "
                       "measured (--eval LIST runs the test)", err=True)
    formats = [name.strip() for given in exports for name in given.split(",") if name.strip()]
    package_model(source, out, preset=preset, test_result=result, exports=formats, speed_iters=speed_iters,
                  say=typer.echo)


def push(
    folder: Path = typer.Argument(..., help="A folder tsm package wrote."),
    repo: str = typer.Argument(..., help="The Hub model repository, ORG/NAME (created if missing)."),
    public: bool = typer.Option(False, "--public", help="Make a new repository public [default: private]."),
    revision: Optional[str] = typer.Option(None, help="A branch to push to [default: main]."),
):
    """Upload a package to the Hugging Face Hub; load it anywhere with --ckpt hf://ORG/NAME. The token comes
    from huggingface_hub's usual places (`hf auth login`, HF_TOKEN). Needs tsm[hub].

    Examples:

      tsm push mine-tsm my-team/mine-tsm

      tsm predict clip.mp4 --ckpt hf://my-team/mine-tsm
    """
    from ..process import configure_process

    configure_process(stop_on_signals=True)
    from ..package import push_package

    push_package(folder, repo, public=public, revision=revision, say=typer.echo)
