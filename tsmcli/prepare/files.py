"""Atomic text output: readers (and an interrupted run) never see half a list."""
import os


def write_text(path, text):
    tmp = str(path) + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
