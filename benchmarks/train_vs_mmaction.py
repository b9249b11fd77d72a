"""The training step, mmaction2 0.x's own beside tsm's, in one process (run in the scratch venv with
mmaction2 0.24.1, tools/mmaction_reference/README.md, plus typer, rich, av and tqdm):

    PYTHONPATH=. /tmp/mmvenv/bin/python benchmarks/train_vs_mmaction.py \\
        --configs /tmp/mmdl/mma/mmaction/.mim/configs/recognition/tsm [--batch 2] [--rounds 5]

mmaction2's step is what its runner does for one batch: `model.train_step(data, optimizer)` (forward and
loss), backward, its clip-grad hook's clipping and the optimizer built by its TSMOptimizerConstructor.
tsm's is `tsm train`'s own step (tsmcli.train.loop.train_step), with tsm train's defaults (channels-last
on the CPU) and also contiguous fp32. The same batch of random frames and labels for all, random weights,
2 threads, glibc's allocator tuned as `tsm` tunes it. Contenders interleave round by round; the table gives
median ms per step and its ratio to mmaction2's. Beside them, the machine's limit: the step's arithmetic
(3x the forward's multiply-adds, x2 FLOPs each) over its time, as a share of a large fp32 matrix
multiply's rate.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

# mmaction2 0.x predates numpy 1.24's removal of np.int and np.float; np.bool is left alone: aliasing it
# breaks numpy.ma
np.int, np.float = int, float
import mmcv  # noqa: E402

_version, mmcv.__version__ = mmcv.__version__, "1.7.0"  # the 0.24.1 wheel asserts mmcv <= 1.7.0
import mmaction  # noqa: E402,F401

mmcv.__version__ = _version
import torch  # noqa: E402
from mmaction.models import build_model as build_mmaction  # noqa: E402
from mmcv import Config  # noqa: E402
from mmcv.runner import build_optimizer as build_mmcv_optimizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import tsmcli  # noqa: E402
from tsmcli.allocator import tune_cpu_allocator  # noqa: E402
from tsmcli.complexity import count_complexity  # noqa: E402
from tsmcli.speed import training_step  # noqa: E402

CASES = {"TSM-R50": ("tsm_r50_1x1x8_50e_kinetics400_rgb", "tsm_r50_1x1x8_50e_k400"),
         "MobileNetV2-TSM": ("tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb", "tsm_mobilenetv2_dense_1x1x8_100e_k400")}


def timed(step):
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def mmaction_step(config, imgs, labels):
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = None
    model = build_mmaction(cfg.model)
    model.init_weights()
    model.train()
    optimizer = build_mmcv_optimizer(model, cfg.optimizer)
    clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
    data = {"imgs": imgs, "label": labels[:, None]}

    def step():
        outputs = model.train_step(data, optimizer)
        optimizer.zero_grad()
        outputs["loss"].backward()
        if clip:
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], **clip)
        optimizer.step()

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", required=True, help="mmaction2's configs/recognition/tsm folder")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per contender and round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_cpu_allocator()
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    gemm = 2 * 2048 ** 3 / min(timed(lambda: torch.mm(a, b)) for _ in range(5)) / 1e9
    print(f"# {args.threads} threads; 2048x2048 fp32 matrix multiply: {gemm:.0f} GFLOP/s")
    print("| model | input | contender | ms/step | x mmaction2 | GFLOP/s | of the GEMM rate |")
    print("|---|---|---|---|---|---|---|")
    cpu = torch.device("cpu")
    for name in args.cases:
        config, preset = CASES[name]
        torch.manual_seed(0)
        shape = (args.batch, 8, 3, 224, 224)
        imgs = torch.randn(shape)
        labels = torch.randint(400, (args.batch,))
        steps = {"mmaction2": mmaction_step(os.path.join(args.configs, config + ".py"), imgs, labels)}
        for contender, channels_last in (("tsm fp32 contiguous", False), ("tsm default (channels-last)", None)):
            model = tsmcli.build_model(preset, pretrained=False)
            steps[contender] = training_step(model, cpu, shape, "none", channels_last, False)[0]
        flops = 2 * 3 * args.batch * count_complexity(tsmcli.build_model(preset, pretrained=False), 8, 224, 224)["flops"]
        for step in steps.values():
            step()  # warm-up
        times = {contender: [] for contender in steps}
        for _ in range(args.rounds):
            for contender, step in steps.items():
                times[contender].append(statistics.median(timed(step) for _ in range(args.steps)))
        reference = statistics.median(times["mmaction2"])
        for contender in steps:
            seconds = statistics.median(times[contender])
            rate = flops / seconds / 1e9
            print(f"| {name} | {'x'.join(map(str, shape))} | {contender} | {seconds * 1e3:.0f} | "
                  f"{reference / seconds:.2f} | {rate:.0f} | {rate / gemm:.0%} |", flush=True)


if __name__ == "__main__":
    main()
