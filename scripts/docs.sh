#!/usr/bin/env bash
# Build the documentation site into docs/_build/html, warnings as errors (the docs extra: scripts/setup.sh
# installs it). An argument is another output folder.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/_build/html}
.venv/bin/python -m sphinx -W --keep-going -q -b html -d "$out/../doctrees" docs "$out"
echo "docs: $out/index.html"
