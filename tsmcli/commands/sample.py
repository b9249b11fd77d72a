"""`tsm sample-video`: a copy of the clip that ships with tsm, for trying every command anywhere."""
import shutil
from pathlib import Path

import typer

from ..video.samples import SAMPLE_CLASS, sample_video


def sample_video_command(
    out: Path = typer.Option(Path("sample.mp4"), "--out", "-o", help="Where to copy the clip."),
):
    """Copy a short clip that ships with tsm to sample.mp4, to try the commands on.

    The clip (1.4 s, 64x64) shows a square moving left, a video of the toy dataset: the toy model that
    `bash scripts/run.sh` trains recognises it as "moving left". In Python: tsmcli.sample_video()
    gives its path inside the package.

    Examples:

      tsm sample-video

      tsm predict sample.mp4 --ckpt work_dirs/toy_tsm/best.pth
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample_video(), out)
    typer.echo(f"{out} (a toy clip of class '{SAMPLE_CLASS}')")
