"""Write tsmcli/presets/zoo_checkpoints.json from mmaction2 0.24.1's TSM metafile.

    python tools/make_zoo_checkpoints.py PATH/TO/configs/recognition/tsm/metafile.yml

The metafile ships in the mmaction2 0.24.1 wheel (`mmaction/.mim/configs/recognition/tsm/metafile.yml`;
`pip download --no-deps mmaction2==0.24.1` and unzip it). The table maps each published checkpoint
file name to its download URL and the config (our preset alias) it was trained with.
"""
import json
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "tsmcli/presets/zoo_checkpoints.json"


def main(metafile):
    models = yaml.safe_load(Path(metafile).read_text())["Models"]
    table = {}
    for model in models:
        url = model.get("Weights")
        if not url:
            continue
        config = Path(model["Config"]).stem
        table[url.rsplit("/", 1)[1]] = {"url": url, "config": config}
    OUT.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")
    print(f"wrote {len(table)} checkpoints to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
