#!/usr/bin/env bash
# The main job on the built-in default, from a fresh clone: set-up, the presets, a model built from one,
# and the shift-overhead benchmark at a small size.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/tsm presets list
.venv/bin/tsm presets show tsm_r50_1x1x8_50e_k400 --set model.pretrained=null | sed -n 1,25p
.venv/bin/python benchmarks/shift_overhead.py --size 112 --rounds 5
