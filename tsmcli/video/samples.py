"""The sample clip that ships inside the package, so that every example runs from any folder.

It is a clip of the toy dataset (`tsm prepare toy`): a square moving left, rendered by video/synthetic.py
and so ours to ship. `tools/make_sample_video.py` writes it; the toy model of `bash scripts/run.sh`
recognises it as "moving left".
"""
from pathlib import Path

SAMPLE_CLASS = "moving left"


def sample_video():
    """The path of the sample clip inside the installed package (read it, do not write there)."""
    return Path(__file__).with_name("sample") / "moving_left.mp4"
