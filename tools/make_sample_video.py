"""Write tsmcli/video/sample/moving_left.mp4, the package's sample clip: toy class 0 ("moving left"),
drawn from seed 0 at the toy dataset's size, frame count and rate."""
import numpy as np

from tsmcli.video import write_video
from tsmcli.video.samples import SAMPLE_CLASS, sample_video
from tsmcli.video.synthetic import CLASSES, render


def main():
    clip = render(CLASSES.index(SAMPLE_CLASS), np.random.default_rng(0))
    write_video(sample_video(), clip, fps=12)
    print(sample_video(), sample_video().stat().st_size, "bytes")


if __name__ == "__main__":
    main()
