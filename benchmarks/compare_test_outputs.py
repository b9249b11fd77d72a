"""Two `tsm test --out` files of the same videos side by side: how far a precision or a backend moves
the results.

    tsm test work_dirs/toy_tsm/best.pth --out fp32.json
    tsm test work_dirs/toy_tsm/best.pth --amp bf16 --out bf16.json
    python benchmarks/compare_test_outputs.py fp32.json bf16.json
"""
import argparse
import json


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("other")
    args = parser.parse_args()
    runs = [json.load(open(path)) for path in (args.reference, args.other)]
    videos = [{v["path"]: v for v in run["videos"]} for run in runs]
    if videos[0].keys() != videos[1].keys():
        raise SystemExit("the two files score different videos")
    same_top1, worst = 0, 0.0
    for path, ref in videos[0].items():
        a, b = ref["scores"], videos[1][path]["scores"]
        same_top1 += max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
        worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
    for path, run in zip((args.reference, args.other), runs):
        print(f"{path}: top-1 {run['metrics']['top1']:.2%}")
    print(f"same top-1 class: {same_top1}/{len(videos[0])} videos; largest class-probability difference {worst:.2e}")


if __name__ == "__main__":
    main()
