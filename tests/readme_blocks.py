"""Blocks of the README that tests run as a reader would."""
import re
import shlex

from conftest import REPO


def own_videos_commands():
    """The bash block after the own-videos marker, one command per line, comments dropped."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- own-videos:.*?-->\s*```bash\n(.*?)```", text, re.S)[1]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]
