#!/usr/bin/env bash
# The main job on the built-in default, from a fresh clone, on the CPU (its time: docs/benchmarks.md, "The main job"):
# make the toy dataset, train a small TSM on it, train the same model with the shift disabled, and
# compare: the classes differ only in frame order, so only the temporal shift can tell them apart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TSM=.venv/bin/tsm
$TSM prepare toy --root data/toy
$TSM train --preset tsm_r18_1x1x8_toy --device cpu --work-dir work_dirs/toy_tsm
$TSM train --preset tsm_r18_1x1x8_toy --device cpu --work-dir work_dirs/toy_no_shift --set model.shift=false
.venv/bin/python - <<'PY'
import json
def last_val(path):
    return [json.loads(l) for l in open(path) if '"mode": "val"' in l][-1]["top1"]
tsm, plain = last_val("work_dirs/toy_tsm/log.jsonl"), last_val("work_dirs/toy_no_shift/log.jsonl")
print(f"\ntoy validation top-1: TSM {tsm:.1%}  |  same model without the shift {plain:.1%} "
      f"(order-blind averaging can only reach ~50%)")
PY
$TSM plot work_dirs/toy_tsm work_dirs/toy_no_shift --name TSM --name "no shift" --out work_dirs/toy_curves.png
