#!/usr/bin/env bash
# The code checks CI runs before the tests (scripts/test.sh): ruff (lint, import order), the package's
# layers (import-linter, the contract in pyproject.toml) and mypy (its files in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check tsmcli tests benchmarks tools scripts docs
.venv/bin/lint-imports --no-cache
.venv/bin/mypy
