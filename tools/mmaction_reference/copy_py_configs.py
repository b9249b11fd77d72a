"""Copy mmaction2's TSM configs and the _base_ files they name into tests/data/mmaction/py_configs/.

    python tools/mmaction_reference/copy_py_configs.py MMACTION_MIM_DIR   (the wheel's mmaction/.mim)
"""
import ast
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def with_bases(path, found):
    if path in found:
        return
    found.add(path)
    for statement in ast.parse(open(path).read()).body:
        if isinstance(statement, ast.Assign) and getattr(statement.targets[0], "id", None) == "_base_":
            bases = ast.literal_eval(statement.value)
            for base in [bases] if isinstance(bases, str) else bases:
                with_bases(os.path.normpath(os.path.join(os.path.dirname(path), base)), found)


def main(mim):
    found = set()
    tsm = os.path.join(mim, "configs/recognition/tsm")
    for name in sorted(os.listdir(tsm)):
        if name.endswith(".py"):
            with_bases(os.path.join(tsm, name), found)
    for path in sorted(found):
        target = os.path.join(REPO, "tests/data/mmaction/py_configs", os.path.relpath(path, mim))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(path, target)
    print(f"copied {len(found)} files")


if __name__ == "__main__":
    main(sys.argv[1])
