"""Times mmaction2 0.x's own train/test pipeline (run with the scratch venv's python; see
benchmarks/data_vs_mmaction.py). Prints one JSON line: {"clips_per_s": ...}."""
import argparse
import json
import time

import numpy as np

# mmaction2 0.x predates numpy 1.24's removal of np.int and np.float; np.bool is left alone: aliasing it
# breaks numpy.ma
np.int, np.float = int, float
import mmcv  # noqa: E402

_version = mmcv.__version__
mmcv.__version__ = "1.7.0"  # the 0.24.1 wheel asserts mmcv <= 1.7.0
from mmaction.datasets.pipelines import Compose  # noqa: E402

mmcv.__version__ = _version


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("items", nargs="+", help="videos, or frame_dir:total_frames for rawframes")
    args = parser.parse_args()
    cfg = mmcv.Config.fromfile(args.config)
    pipeline = Compose(getattr(cfg.data, args.split).pipeline)
    results = []
    for item in args.items:
        if ":" in item:
            frame_dir, total = item.rsplit(":", 1)
            results.append(dict(frame_dir=frame_dir, total_frames=int(total), label=0, start_index=1,
                                filename_tmpl="img_{:05}.jpg", modality="RGB", offset=0))
        else:
            results.append(dict(filename=item, label=0, start_index=0, modality="RGB"))
    pipeline(dict(results[0]))
    start = time.perf_counter()
    for i in range(args.clips):
        pipeline(dict(results[i % len(results)]))
    print(json.dumps({"clips_per_s": args.clips / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
