"""Frame sampling against mmaction2 0.24.1 (tests/data/mmaction/sampling.json)."""
import json

import numpy as np
import pytest
from conftest import TESTS

from tsmcli.data.sampling import SAMPLERS

FIXTURE = json.loads((TESTS / "data/mmaction/sampling.json").read_text())


def build(case, test_mode):
    args = {k: case[k] for k in ("num_clips", "clip_len", "frame_interval", "twice_sample", "sample_range",
                                 "num_sample_positions") if k in case}
    return SAMPLERS[case["sampler"]](test_mode=test_mode, **args)


def test_test_mode_indices_equal_mmactions():
    assert len(FIXTURE["test"]) == 800
    for case in FIXTURE["test"]:
        sampler = build(case, test_mode=True)
        got = sampler(case["total_frames"]).tolist()
        assert got == case["frame_inds"], case


@pytest.mark.parametrize("case", FIXTURE["train"], ids=lambda c: f"{c['sampler']}-{c['total_frames']}-{c['num_clips']}")
def test_training_draws_follow_mmactions_distribution(case):
    sampler = build(case, test_mode=False)
    rng = np.random.default_rng(0)
    draws = case["draws"]
    ours = [dict() for _ in case["counts"]]
    for _ in range(draws):
        inds = sampler(case["total_frames"], rng)
        assert ((0 <= inds) & (inds < case["total_frames"])).all()
        for pos, value in enumerate(inds.tolist()):
            ours[pos][value] = ours[pos].get(value, 0) + 1
    for pos, theirs in enumerate(case["counts"]):
        theirs = {int(k): v for k, v in theirs.items()}
        assert set(ours[pos]) == set(theirs), (pos, sorted(ours[pos]), sorted(theirs))
        values = np.array(sorted(theirs))
        p_ours = np.array([ours[pos][v] for v in values]) / draws
        p_theirs = np.array([theirs[v] for v in values]) / draws
        # two empirical distributions of `draws` samples: their total variation shrinks like sqrt(k/N)
        tv = 0.5 * np.abs(p_ours - p_theirs).sum()
        assert tv < 0.02 + np.sqrt(len(values) / draws), (pos, tv)
        mean, std = (values * p_theirs).sum(), np.sqrt((values ** 2 * p_theirs).sum() - (values * p_theirs).sum() ** 2)
        assert abs((values * p_ours).sum() - mean) <= 5 * std * np.sqrt(2 / draws) + 1e-9, pos


def test_same_seed_same_draw_and_different_items_differ():
    sampler = SAMPLERS["SampleFrames"](num_clips=8)
    a = sampler(300, np.random.default_rng([1, 0, 5]))
    b = sampler(300, np.random.default_rng([1, 0, 5]))
    c = sampler(300, np.random.default_rng([1, 0, 6]))
    assert (a == b).all() and not (a == c).all()
