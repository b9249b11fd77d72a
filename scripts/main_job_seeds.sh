#!/usr/bin/env bash
# The main job over several training seeds: for each seed, tsm_r18_1x1x8_toy with and without the shift on
# the same toy data (tsm prepare toy writes the same bytes every time), then a table of the last validation
# top-1. About 4.5 minutes a seed on 2 CPU cores.  bash scripts/main_job_seeds.sh [SEEDS]  (default: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TSM=.venv/bin/tsm
seeds=("${@:-0 1 2}")
seeds=(${seeds[*]})
$TSM prepare toy --root data/toy > /dev/null
for seed in "${seeds[@]}"; do
    $TSM train -p tsm_r18_1x1x8_toy --device cpu --seed "$seed" --work-dir "work_dirs/seeds/tsm_$seed" > /dev/null
    $TSM train -p tsm_r18_1x1x8_toy --device cpu --seed "$seed" --work-dir "work_dirs/seeds/no_shift_$seed" \
        --set model.shift=false > /dev/null
done
.venv/bin/python - "${seeds[@]}" <<'PY'
import json, sys
def last_val(run):
    return [json.loads(l) for l in open(f"work_dirs/seeds/{run}/log.jsonl") if '"mode": "val"' in l][-1]["top1"]
print("| seed | TSM | without the shift |\n|---|---|---|")
for seed in sys.argv[1:]:
    print(f"| {seed} | {last_val(f'tsm_{seed}'):.1%} | {last_val(f'no_shift_{seed}'):.1%} |")
PY
