#!/usr/bin/env bash
# The multi-label toy: TSM against the same model without the shift (two trainings of
# tsm_r18_1x1x8_toy_multilabel, about 2 minutes on 2 CPU cores), then each tested. Every video shows a
# square and a circle, each moving left or right: two of four labels, told apart only by frame order.
# Figures: README "Multi-label".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TSM=.venv/bin/tsm
[ -f data/toy_multilabel/toy_multilabel_val_list_videos.txt ] || $TSM prepare toy --multi-label
OUT=work_dirs/multilabel_toy
$TSM train -p tsm_r18_1x1x8_toy_multilabel --device cpu --deterministic --work-dir $OUT/tsm
$TSM train -p tsm_r18_1x1x8_toy_multilabel --device cpu --deterministic --work-dir $OUT/no_shift --set model.shift=false
for run in tsm no_shift; do
  $TSM test $OUT/$run/latest.pth --device cpu --out $OUT/$run/test.json > /dev/null
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys

out = sys.argv[1]
m = {run: json.load(open(f"{out}/{run}/test.json"))["metrics"] for run in ("tsm", "no_shift")}
print(f"\nmulti-label toy validation mAP: TSM {m['tsm']['mean_average_precision']:.3f} "
      f"(MMiT mAP {m['tsm']['mmit_mean_average_precision']:.3f})  |  without the shift "
      f"{m['no_shift']['mean_average_precision']:.3f} (MMiT mAP {m['no_shift']['mmit_mean_average_precision']:.3f}); "
      "chance: about 0.5 (MMiT 0.68)")
PY
