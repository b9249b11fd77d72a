#!/usr/bin/env bash
# The online (causal) shift against the bidirectional one and no shift, on the main job's toy data: four
# trainings of tsm_r18_1x1x8_toy (about 12 minutes on 2 CPU cores; the online one twice: as tsm's online shift
# moves them, as many channels as the bidirectional shift, and with half as many, the paper's online budget,
# shift_div=16), then the online models streamed frame by frame over the validation videos. Figures: README "Streaming"; curves: work_dirs/online_toy/curves.png.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TSM=.venv/bin/tsm
[ -f data/toy/toy_val_list_videos.txt ] || $TSM prepare toy --root data/toy
OUT=work_dirs/online_toy
$TSM train -p tsm_r18_1x1x8_toy --device cpu --work-dir $OUT/bidirectional
$TSM train -p tsm_r18_1x1x8_toy --device cpu --work-dir $OUT/online --set model.shift_mode=online
$TSM train -p tsm_r18_1x1x8_toy --device cpu --work-dir $OUT/online_div16 --set model.shift_mode=online --set model.shift_div=16
$TSM train -p tsm_r18_1x1x8_toy --device cpu --work-dir $OUT/no_shift --set model.shift=false
$TSM plot $OUT/bidirectional $OUT/online $OUT/online_div16 $OUT/no_shift --out $OUT/curves.png
.venv/bin/python - "$OUT" <<'PY'
import json, sys
import tsmcli
from tsmcli.data import load_annotations

out = sys.argv[1]
def last_val(run):
    return [json.loads(l) for l in open(f"{out}/{run}/log.jsonl") if '"mode": "val"' in l][-1]["top1"]
records = load_annotations("data/toy/toy_val_list_videos.txt", "videos", "data/toy/videos")
def streamed(run):
    model = tsmcli.load_model(f"{out}/{run}/best.pth")
    right = sum(list(tsmcli.stream(model, r.path, mode="incremental"))[-1].top[0][0] == r.label for r in records)
    return right / len(records)
print(f"\ntoy validation top-1 ({len(records)} videos): bidirectional {last_val('bidirectional'):.1%} | "
      f"online {last_val('online'):.1%} (streamed frame by frame: {streamed('online'):.1%}) | "
      f"online, half the channels {last_val('online_div16'):.1%} (streamed: {streamed('online_div16'):.1%}) | "
      f"no shift {last_val('no_shift'):.1%}")
PY
