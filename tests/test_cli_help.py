"""The command line reads as one program: every command's summary fits `--help`, an option of the same
name means the same in every command, and option values are named as words, not Python types."""
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from tsmcli.cli import command

# Options of one name that differ between commands, and why
DIFFERENT_ON_PURPOSE = {
    "mode": "stream's (incremental or window) and extract's (video, frames or dense) are different choices",
    "root": "prepare toy and custom have no dataset folder to default to; the public datasets default to data/NAME",
    "base": "presets import finds the nearest preset itself; prepare custom starts from the small ResNet18",
    "workers": "prepare's are processes that extract frames (at least 1); test's, extract's and benchmark's "
               "are loader workers (0: in the main process), benchmark timing the main process by default",
    "out": "what is written differs (a file, a folder); each command that writes has --out/-o",
    "shard": "extract's default 1/1 is the whole input, as prepare's None is",
}


def walk(cmd, path=("tsm",)):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from walk(sub, (*path, name))


def options_by_name():
    found = defaultdict(list)
    for path, cmd in walk(command()):
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                found[param.name].append((" ".join(path), param))
    return found


@pytest.mark.parametrize("group", [(), ("prepare",), ("presets",), ("benchmark",)])
def test_every_command_summary_fits_its_help_line(group):
    help_text = subprocess.run([sys.executable, "-m", "tsmcli.cli", *group, "--help"], capture_output=True, text=True,
                               env={"COLUMNS": "80", "PATH": ""}).stdout
    listed = help_text[help_text.index("Commands:"):]
    lines = [line for line in listed.splitlines()[1:] if line.strip()]
    assert lines, help_text
    cut = [line for line in lines if line.rstrip().endswith(("...", "…"))]
    assert not cut, cut


def test_an_option_means_the_same_in_every_command():
    for name, uses in options_by_name().items():
        if len(uses) < 2 or name in DIFFERENT_ON_PURPOSE:
            continue
        first_path, first = uses[0]
        for path, param in uses[1:]:
            what = f"--{name.replace('_', '-')} in {first_path} and {path}"
            assert sorted(param.opts) == sorted(first.opts), what
            assert param.default == first.default, what
            assert (getattr(param, "min", None), getattr(param, "max", None)) == (
                getattr(first, "min", None), getattr(first, "max", None)), what
    out = {path: sorted(param.opts) for path, param in options_by_name()["out"]}
    assert all("-o" in opts for opts in out.values()), out


def test_option_values_are_named_as_words():
    for path, cmd in walk(command()):
        if getattr(cmd, "commands", None):
            continue
        help_text = cmd.get_help(cmd.context_class(cmd, info_name=path[-1]))
        assert not re.search(r"<(int|float|str|path|list\[\w+\])( range)?>", help_text), (path, help_text)


def test_help_examples_run_from_any_folder():
    for path, cmd in walk(command()):
        assert "../shared" not in (cmd.help or ""), path


def test_on_one_machine_a_taken_rendezvous_port_gives_way_to_a_free_one():
    """Why --master-port can have one default everywhere: a test beside a training does not collide."""
    import socket

    from tsmcli.launch import local_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = local_port("127.0.0.1", busy)
        assert other != busy and other > 0
    assert local_port("127.0.0.1", busy) == busy  # free again: the port asked for
