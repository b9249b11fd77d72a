"""Judging a reduced-precision export (bf16, int8) on real clips it was not calibrated on: top-1
agreement with the fp32 PyTorch model, how far the probabilities moved, and accuracy before and after
where the clips have labels. Random clips and random weights exaggerate or hide such errors, so they
are never the judge here."""
import numpy as np

from ..errors import JobFailed

# A quantization that is broken (a wrong scale, a saturated layer) agrees on few clips, a sound one on
# nearly all (docs/benchmarks.md, "int8 calibration clips"); the margin leaves room for the one or two
# borderline clips of a small verification set without passing a model that changes its answers.
DEFAULT_MIN_AGREEMENT = 0.95


def agreement(model, run, clips):
    """Compare `run(clip) -> probabilities (1, K) numpy` with the fp32 model on every clip of a ClipSet."""
    import torch

    ours, theirs = [], []
    for clip in clips.clips:
        with torch.no_grad():
            ours.append(model(clip).float().numpy()[0])
        theirs.append(np.asarray(run(clip), dtype=np.float32)[0])
    ours, theirs = np.stack(ours), np.stack(theirs)
    diff = np.abs(ours - theirs)
    report = {"clips": len(clips), "source": clips.source, "top1_agree": float(np.mean(ours.argmax(1) == theirs.argmax(1))),
              "mean_prob_diff": float(diff.max(1).mean()), "max_prob_diff": float(diff.max()),
              "unreadable": clips.unreadable}
    if clips.labelled():
        labels = np.asarray(clips.labels)
        report["accuracy_fp32"] = float(np.mean(ours.argmax(1) == labels))
        report["accuracy_exported"] = float(np.mean(theirs.argmax(1) == labels))
    return report


def check_agreement(report, min_agreement, what):
    """Fail (exit 1, nothing written) when the export agrees with fp32 on fewer clips than asked."""
    if not report["top1_agree"] >= min_agreement:
        raise JobFailed(f"{what}: top-1 agrees with the fp32 model on {report['top1_agree']:.1%} of {report['clips']} "
                        f"held-out clips (< --min-agreement {min_agreement:g}); nothing was written. Try more "
                        "calibration clips (--calibration-clips), or a higher precision")
