#!/usr/bin/env bash
# Create .venv and install tsm with its test dependencies and its plots, deploy, openvino, tensorboard, hub, serve and docs extras; a no-op when nothing changed since last time.
# The decord and torchcodec extras are added where they install (decord has no wheel for macOS arm64 or Linux
# aarch64): the tests that compare decoders with them skip where they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.tsm-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # setuptools warns on every editable install that a folder named like the package could shadow it:
    # in a checkout that folder is the package itself
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e ".[test,plots,deploy,openvino,tensorboard,hub,serve,docs]"
    for extra in decord torchcodec; do  # the packages of the extras of these names in pyproject.toml
        .venv/bin/python -m pip install -q "$extra" ||
            echo "setup: the $extra extra does not install here; tests that need it are skipped" >&2
    done
    echo "$want" > "$stamp"
fi
