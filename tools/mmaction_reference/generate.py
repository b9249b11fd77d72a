"""Produce the mmaction2 0.24.1 reference fixtures in tests/data/mmaction/.

Runs in a scratch virtualenv that has mmaction2 0.24.1 and mmcv 1.7.x (see README.md beside this file),
never in ours. Writes:
  configs.json  - the resolved config fields of each zoo configuration plus its parameter count
  outputs.json  - for a set of model cases: the state-dict key names and shapes, the input shape, and
                  the test-mode outputs of mmaction2's own model with deterministic weights
                  (tests/reference_weights.py fills both sides with identical values)
  features.json - the same cases' outputs in mmaction2's feature-extraction test mode
  flops.json    - mmaction2's tools/analysis/get_flops.py figures (mmcv's counter) for one clip of
                  R50, R101 and MobileNetV2 at 224x224
  multilabel.json - mmaction2's mean_average_precision, mmit_mean_average_precision and its multi-label
                  head loss (BCE with logits, label_smooth_eps) on seeded cases
  non_local.json - the three non-local models with weights as input-sensitive as a trained model's (full
                  size embedding convolutions, the blocks' output BatchNorm well away from zero, the
                  classifier scaled to logits of a few units on the real clip), and mmaction2's
                  probabilities on the real Kinetics clip (../shared/fixtures/videos/demo.mp4, read by
                  tsm's efficient scheme, whose parity with mmaction2's pipeline pipeline.json checks)
"""
import argparse
import json
import os
import sys

import numpy as np

# mmaction2 0.x predates numpy 1.24's removal of np.int and np.float; np.bool is left alone: aliasing it
# breaks numpy.ma
np.int, np.float = int, float
import mmcv  # noqa: E402

_mmcv_version = mmcv.__version__
mmcv.__version__ = "1.7.0"  # the 0.24.1 wheel asserts mmcv <= 1.7.0; 1.7.2 lite works the same here
import mmaction  # noqa: E402,F401

mmcv.__version__ = _mmcv_version
import torch  # noqa: E402
from mmaction.models import build_model  # noqa: E402
from mmcv import Config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))
from reference_weights import NORM_SCALE, fill_state_dict, input_clip  # noqa: E402

ZOO = [
    "tsm_r50_1x1x8_50e_kinetics400_rgb", "tsm_r50_1x1x8_100e_kinetics400_rgb",
    "tsm_r50_gpu_normalize_1x1x8_50e_kinetics400_rgb", "tsm_r50_video_1x1x8_50e_kinetics400_rgb",
    "tsm_r50_dense_1x1x8_50e_kinetics400_rgb", "tsm_r50_dense_1x1x8_100e_kinetics400_rgb",
    "tsm_r50_1x1x16_50e_kinetics400_rgb", "tsm_r50_1x1x16_100e_kinetics400_rgb",
    "tsm_nl_embedded_gaussian_r50_1x1x8_50e_kinetics400_rgb",
    "tsm_nl_gaussian_r50_1x1x8_50e_kinetics400_rgb",
    "tsm_nl_dot_product_r50_1x1x8_50e_kinetics400_rgb",
    "tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb",
    "tsm_r50_video_1x1x8_50e_diving48_rgb", "tsm_r50_video_1x1x16_50e_diving48_rgb",
    "tsm_r50_1x1x8_50e_jester_rgb",
    "tsm_r50_1x1x8_50e_sthv1_rgb", "tsm_r50_flip_1x1x8_50e_sthv1_rgb",
    "tsm_r50_randaugment_1x1x8_50e_sthv1_rgb", "tsm_r50_ptv_randaugment_1x1x8_50e_sthv1_rgb",
    "tsm_r50_ptv_augmix_1x1x8_50e_sthv1_rgb", "tsm_r50_flip_randaugment_1x1x8_50e_sthv1_rgb",
    "tsm_r50_1x1x16_50e_sthv1_rgb", "tsm_r101_1x1x8_50e_sthv1_rgb",
    "tsm_r50_mixup_1x1x8_50e_sthv1_rgb", "tsm_r50_cutmix_1x1x8_50e_sthv1_rgb",
    "tsm_r50_1x1x8_50e_sthv2_rgb", "tsm_r50_1x1x16_50e_sthv2_rgb", "tsm_r101_1x1x8_50e_sthv2_rgb",
    "tsm_k400_pretrained_r50_1x1x8_25e_hmdb51_rgb", "tsm_k400_pretrained_r50_1x1x16_25e_hmdb51_rgb",
    "tsm_k400_pretrained_r50_1x1x8_25e_ucf101_rgb", "tsm_k400_pretrained_r50_1x1x16_25e_ucf101_rgb",
    # TSM configs that mmaction2 0.x ships outside the zoo table (two of them inference-only)
    "tsm_temporal_pool_r50_1x1x8_50e_kinetics400_rgb", "tsm_r50_video_inference_1x1x8_100e_kinetics400_rgb",
    "tsm_mobilenetv2_video_dense_1x1x8_100e_kinetics400_rgb",
    "tsm_mobilenetv2_video_inference_dense_1x1x8_100e_kinetics400_rgb",
]

# (case name, config, input shape N x views*T x 3 x H x W)
OUTPUT_CASES = [
    ("r50_two_views", "tsm_r50_1x1x8_50e_kinetics400_rgb", (1, 16, 3, 64, 64)),
    ("r50_16seg", "tsm_r50_1x1x16_50e_kinetics400_rgb", (1, 16, 3, 64, 64)),
    ("r101", "tsm_r101_1x1x8_50e_sthv1_rgb", (1, 8, 3, 64, 64)),
    ("mobilenetv2", "tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb", (2, 8, 3, 64, 64)),
    ("nl_embedded_gaussian", "tsm_nl_embedded_gaussian_r50_1x1x8_50e_kinetics400_rgb", (1, 8, 3, 96, 96)),
    ("nl_gaussian", "tsm_nl_gaussian_r50_1x1x8_50e_kinetics400_rgb", (1, 8, 3, 96, 96)),
    ("nl_dot_product", "tsm_nl_dot_product_r50_1x1x8_50e_kinetics400_rgb", (1, 8, 3, 96, 96)),
    ("temporal_pool", "tsm_temporal_pool_r50_1x1x8_50e_kinetics400_rgb", (1, 8, 3, 64, 64)),
]

CONFIG_FIELDS = ["model", "data", "optimizer", "optimizer_config", "lr_config", "total_epochs",
                 "evaluation", "checkpoint_config", "module_hooks", "load_from"]


def load_config(config_dir, name):
    cfg = Config.fromfile(os.path.join(config_dir, name + ".py"))
    cfg.model.backbone.pretrained = None
    return cfg


def build(cfg):
    model = build_model(cfg.model)  # the recognizer's __init__ already applies shift / NL / pool
    model.eval()
    return model


def dump_configs(config_dir):
    out = {}
    for name in ZOO:
        cfg = Config.fromfile(os.path.join(config_dir, name + ".py"))
        fields = {k: cfg._cfg_dict.to_dict()[k] for k in CONFIG_FIELDS if k in cfg}
        cfg.model.backbone.pretrained = None
        fields["num_params"] = sum(p.numel() for p in build(cfg).parameters())
        out[name] = json.loads(json.dumps(fields, default=list))
        print(name, fields["num_params"], flush=True)
    return out


def run_case(config_dir, config, shape):
    model = build(load_config(config_dir, config))
    keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    norm_scale = (1.0, 1.5) if "mobilenetv2" in config else NORM_SCALE  # see reference_weights.fill_value
    model.load_state_dict(fill_state_dict(keys, norm_scale))
    imgs = input_clip(shape)
    with torch.no_grad():
        flat = imgs.reshape((-1,) + imgs.shape[2:])
        cls_score = model.cls_head(model.extract_feat(flat), flat.shape[0] // imgs.shape[0])
        final = model(imgs, return_loss=False)
    return {"config": config, "input_shape": list(shape), "keys": keys, "norm_scale": norm_scale,
            "cls_score": cls_score.tolist(), "output": np.asarray(final).tolist()}


def feature_case(config_dir, config, shape):
    """mmaction2's feature-extraction test mode (test_cfg.feature_extraction) on a case's weights and input."""
    cfg = load_config(config_dir, config)
    cfg.model.test_cfg = dict(feature_extraction=True)
    model = build(cfg)
    keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    norm_scale = (1.0, 1.5) if "mobilenetv2" in config else NORM_SCALE
    model.load_state_dict(fill_state_dict(keys, norm_scale))
    return {"config": config, "input_shape": list(shape), "features": np.asarray(model(input_clip(shape), return_loss=False)).tolist()}


# (config, the --shape given to get_flops.py: T x 3 x H x W, to which mmcv adds a batch of 1)
FLOPS_CASES = [
    ("tsm_r50_1x1x8_50e_kinetics400_rgb", (8, 3, 224, 224)),
    ("tsm_r50_1x1x16_50e_kinetics400_rgb", (16, 3, 224, 224)),
    ("tsm_r101_1x1x8_50e_sthv1_rgb", (8, 3, 224, 224)),
    ("tsm_mobilenetv2_dense_1x1x8_100e_kinetics400_rgb", (8, 3, 224, 224)),
]


def flops_cases(config_dir):
    """What get_flops.py prints, as numbers: it calls mmcv's get_model_complexity_info on forward_dummy."""
    from mmcv.cnn import get_model_complexity_info

    cases = []
    for config, shape in FLOPS_CASES:
        model = build(load_config(config_dir, config))
        model.forward = model.forward_dummy
        flops, params = get_model_complexity_info(model, shape, print_per_layer_stat=False, as_strings=False)
        cases.append({"config": config, "shape": list(shape), "flops": int(flops), "params": int(params)})
        print(config, flops, params, flush=True)
    return cases


def multilabel_cases():
    """mmaction2's two multi-label metrics on seeded scores (rounded: ties) and multi-hot labels, with
    classes that have no positive video; and its multi-label head loss with and without label smoothing."""
    from mmaction.core.evaluation import mean_average_precision, mmit_mean_average_precision
    from mmaction.models import build_head

    rng = np.random.RandomState(5)
    metrics = []
    for n, k, empty_classes in ((40, 6, 0), (120, 12, 2), (25, 9, 3)):
        scores = rng.rand(n, k).round(1)
        labels = (rng.rand(n, k) < 0.3).astype(np.int64)
        labels[:, k - empty_classes:] = 0
        labels[np.arange(n), rng.randint(0, k - empty_classes, size=n)] = 1  # every video has a label
        metrics.append({"scores": scores.tolist(), "labels": labels.tolist(), "empty_classes": empty_classes,
                        "mean_average_precision": float(mean_average_precision(list(scores), list(labels))),
                        "mmit_mean_average_precision": float(mmit_mean_average_precision(list(scores), list(labels)))})
    losses = []
    for eps in (0.0, 0.1):
        head = build_head(dict(type="TSMHead", num_classes=7, in_channels=16, num_segments=1, multi_class=True,
                               label_smooth_eps=eps, loss_cls=dict(type="BCELossWithLogits", loss_weight=160.0)))
        logits = torch.from_numpy(rng.randn(5, 7).astype(np.float32))
        labels = torch.from_numpy((rng.rand(5, 7) < 0.4).astype(np.float32))
        loss = head.loss(logits, labels)["loss_cls"]
        losses.append({"label_smooth_eps": eps, "loss_weight": 160.0, "logits": logits.tolist(),
                       "labels": labels.tolist(), "loss": float(loss)})
    return {"metrics": metrics, "losses": losses}


NON_LOCAL_CASES = [(mode, f"tsm_nl_{mode}_r50_1x1x8_50e_kinetics400_rgb")
                   for mode in ("embedded_gaussian", "gaussian", "dot_product")]
REAL_LOGIT_STD = 3.0  # a trained Kinetics model's logits on a real clip spread over a few units


def real_clip(shared):
    """demo.mp4 as tsm's efficient scheme reads it for the R50 presets: (1, 8, 3, 224, 224)."""
    sys.path.insert(0, REPO)
    import tsmcli
    from tsmcli.data.pipeline import read_clip
    from tsmcli.data.schemes import scheme_pipeline

    preset = tsmcli.load_preset("tsm_r50_1x1x8_50e_k400")
    return read_clip(os.path.join(shared, "fixtures/videos/demo.mp4"), scheme_pipeline(preset["data"], "efficient")).imgs[None]


def non_local_cases(config_dir, shared):
    clip = real_clip(shared)
    noise = torch.randn(clip.shape, generator=torch.Generator().manual_seed(0))
    cases = {}
    for mode, config in NON_LOCAL_CASES:
        model = build(load_config(config_dir, config))
        keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        model.load_state_dict(fill_state_dict(keys, NORM_SCALE, non_local_scale=1.0))
        flat = clip.reshape((-1,) + clip.shape[2:])
        logits = model.cls_head(model.extract_feat(flat), flat.shape[0])
        fc_scale = REAL_LOGIT_STD / float(logits.std())
        model.cls_head.fc_cls.weight.mul_(fc_scale)
        model.cls_head.fc_cls.bias.mul_(fc_scale)
        logits = model.cls_head(model.extract_feat(flat), flat.shape[0])
        flat_noise = noise.reshape((-1,) + noise.shape[2:])
        noise_logits = model.cls_head(model.extract_feat(flat_noise), flat_noise.shape[0])
        cases[mode] = {"config": config, "keys": keys, "norm_scale": NORM_SCALE, "non_local_scale": 1.0,
                       "fc_scale": fc_scale, "clip_shape": list(clip.shape),
                       "real_logit_std": float(logits.std()), "noise_logit_std": float(noise_logits.std()),
                       "probs": np.asarray(model(clip, return_loss=False)).tolist()}
        print(mode, "logit std: real clip", round(float(logits.std()), 2), "noise", round(float(noise_logits.std()), 2),
              flush=True)
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-dir", required=True,
                        help="mmaction2's configs/recognition/tsm (the wheel ships it in mmaction/.mim)")
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "mmaction"))
    parser.add_argument("--only", choices=["models", "configs", "sampling", "pipeline", "metrics", "features",
                                                   "multilabel", "flops", "non_local"],
                        help="regenerate one part only")
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.only in (None, "sampling"):
        with open(os.path.join(args.out, "sampling.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, **sampling_cases()}, f)
    if args.only in (None, "pipeline"):
        with open(os.path.join(args.out, "pipeline.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, **pipeline_cases(args.config_dir, args.shared)}, f)
    if args.only in (None, "metrics"):
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, "cases": metric_cases()}, f)
    if args.only in (None, "multilabel"):
        with open(os.path.join(args.out, "multilabel.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, **multilabel_cases()}, f)
    if args.only in (None, "flops"):
        with torch.no_grad(), open(os.path.join(args.out, "flops.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, "cases": flops_cases(args.config_dir)}, f, indent=1)
    if args.only in (None, "features"):
        with torch.no_grad():
            cases = {case: feature_case(args.config_dir, config, shape) for case, config, shape in OUTPUT_CASES}
        with open(os.path.join(args.out, "features.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, "cases": cases}, f)
    if args.only in (None, "non_local"):
        with torch.no_grad():
            cases = non_local_cases(args.config_dir, args.shared)
        with open(os.path.join(args.out, "non_local.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, "cases": cases}, f)
    if args.only in ("sampling", "pipeline", "metrics", "features", "multilabel", "flops", "non_local"):
        return
    torch.set_grad_enabled(False)
    if args.only != "configs":
        cases = {}
        for case, config, shape in OUTPUT_CASES:
            cases[case] = run_case(args.config_dir, config, shape)
            print(case, "done", flush=True)
        with open(os.path.join(args.out, "outputs.json"), "w") as f:
            json.dump({"mmaction2": mmaction.__version__, "cases": cases}, f)
    configs = dump_configs(args.config_dir)
    with open(os.path.join(args.out, "configs.json"), "w") as f:
        json.dump({"mmaction2": mmaction.__version__, "configs": configs}, f, indent=1, sort_keys=True)



def sampling_cases():
    """Frame indices of mmaction2's SampleFrames / DenseSampleFrames: exact in test mode, the
    per-position distribution over many draws in training mode."""
    from mmaction.datasets.pipelines import DenseSampleFrames, SampleFrames

    frame_counts = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 63, 64, 65, 100, 150, 300]
    test = []
    for n in frame_counts:
        for clips in (1, 3, 8, 16):
            for clip_len, interval in ((1, 1), (2, 1), (1, 2), (4, 2)):
                for twice in (False, True):
                    args = dict(clip_len=clip_len, frame_interval=interval, num_clips=clips,
                                twice_sample=twice, test_mode=True)
                    out = SampleFrames(**args)(dict(total_frames=n, start_index=0))
                    test.append({"sampler": "SampleFrames", "total_frames": n, **args,
                                 "frame_inds": out["frame_inds"].tolist()})
            for sample_range, positions in ((64, 10), (32, 4)):
                args = dict(clip_len=1, frame_interval=1, num_clips=clips, test_mode=True,
                            sample_range=sample_range, num_sample_positions=positions)
                out = DenseSampleFrames(**args)(dict(total_frames=n, start_index=0))
                test.append({"sampler": "DenseSampleFrames", "total_frames": n, **args,
                             "frame_inds": out["frame_inds"].tolist()})
    train = []
    np.random.seed(0)
    for n, clips, clip_len, dense in [(300, 8, 1, False), (17, 8, 1, False), (9, 8, 1, False),
                                      (5, 8, 1, False), (100, 16, 1, False), (40, 3, 4, False),
                                      (300, 8, 1, True), (70, 8, 1, True), (20, 8, 1, True)]:
        sampler = (DenseSampleFrames if dense else SampleFrames)(clip_len=clip_len, num_clips=clips)
        draws = 4000
        counts = [dict() for _ in range(clips * clip_len)]
        for _ in range(draws):
            inds = sampler(dict(total_frames=n, start_index=0))["frame_inds"]
            for pos, value in enumerate(inds.tolist()):
                counts[pos][value] = counts[pos].get(value, 0) + 1
        train.append({"sampler": "DenseSampleFrames" if dense else "SampleFrames", "total_frames": n,
                      "num_clips": clips, "clip_len": clip_len, "draws": draws,
                      "counts": [{str(k): v for k, v in sorted(c.items())} for c in counts]})
    return {"test": test, "train": train}



def pipeline_cases(config_dir, shared):
    """mmaction2's own test pipeline + model on the shared demo video and frame folder."""
    from mmaction.datasets.pipelines import Compose

    weights_case = run_case(config_dir, "tsm_r50_1x1x8_50e_kinetics400_rgb", (1, 8, 3, 32, 32))
    out = {"keys": weights_case["keys"]}
    inputs = {
        "video": ("tsm_r50_video_1x1x8_50e_kinetics400_rgb",
                  dict(filename=os.path.join(shared, "fixtures/videos/demo.mp4"), label=-1, start_index=0,
                       modality="RGB")),
        # the same with Resize to short side 320, so that the resize kernel is exercised too
        "video_resized": ("tsm_r50_video_1x1x8_50e_kinetics400_rgb",
                          dict(filename=os.path.join(shared, "fixtures/videos/demo.mp4"), label=-1,
                               start_index=0, modality="RGB")),
        "rawframes": ("tsm_r50_1x1x8_50e_kinetics400_rgb",
                      dict(frame_dir=os.path.join(shared, "fixtures/frames"), total_frames=10, label=-1,
                           start_index=1, filename_tmpl="img_{:05}.jpg", modality="RGB", offset=0)),
    }
    for name, (config, results) in inputs.items():
        cfg = load_config(config_dir, config)
        if name == "video_resized":
            next(s for s in cfg.data.test.pipeline if s["type"] == "Resize")["scale"] = (-1, 320)
        model = build(cfg)
        model.load_state_dict(fill_state_dict(out["keys"]))
        data = Compose(cfg.data.test.pipeline)(dict(results))
        imgs = data["imgs"]  # (views*T, 3, 224, 224), normalised
        with torch.no_grad():
            probs = model(imgs[None], return_loss=False)[0]
        raw = Compose([s for s in cfg.data.test.pipeline if s["type"] not in ("Normalize",)][:-3])(dict(results))
        out[name] = {
            "config": config,
            "frame_inds": [int(i) for i in raw["frame_inds"]],
            "shape": list(imgs.shape),
            "channel_means": imgs.mean(dim=(2, 3)).tolist(),
            "pixels": imgs[:, :, ::16, ::16].tolist(),
            "probs": probs.tolist(),
            "top5": np.argsort(-probs)[:5].tolist(),
        }
    return out



def metric_cases():
    """mmaction2's top_k_accuracy and mean_class_accuracy on seeded scores, with every class present
    and with some classes never labelled (where mmaction2 averages over labelled and predicted ones)."""
    from mmaction.core.evaluation import mean_class_accuracy, top_k_accuracy

    rng = np.random.RandomState(3)
    cases = []
    for n, k_classes, missing in ((60, 5, False), (200, 10, False), (40, 8, True), (30, 6, True)):
        scores = rng.rand(n, k_classes).round(2)  # rounding makes ties, as low-precision scores have
        labels = rng.randint(0, k_classes - (3 if missing else 0), size=n)
        if not missing:
            labels[:k_classes] = np.arange(k_classes)
        cases.append({"scores": scores.tolist(), "labels": labels.tolist(),
                      "top1": top_k_accuracy(list(scores), list(labels), (1,))[0],
                      "top5": top_k_accuracy(list(scores), list(labels), (5,))[0],
                      "mean_class_accuracy": mean_class_accuracy(list(scores), list(labels)),
                      "every_class_labelled": not missing})
    return cases


if __name__ == "__main__":
    main()
