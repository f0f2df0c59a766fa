"""Hierarchical bootstrap (seeds, then clips) and paired comparisons (issue 20)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from clap_lib.analysis.hierarchical import hierarchical_bootstrap, paired_difference, replicate_means


def _exact(X: np.ndarray, clips: str) -> dict[float, float]:
    """Every equally likely resample of a small matrix enumerated: value -> probability."""
    S, n = X.shape
    seed_draws = list(itertools.product(range(S), repeat=S))
    clip_draws = list(itertools.product(range(n), repeat=n))
    vals = []
    for s in seed_draws:
        if clips == "shared":
            vals += [X[np.ix_(s, c)].mean() for c in clip_draws]
        else:
            vals += [
                np.mean([X[si, list(c)].mean() for si, c in zip(s, cs)])
                for cs in itertools.product(clip_draws, repeat=S)
            ]
    v, k = np.unique(np.round(vals, 12), return_counts=True)
    return dict(zip(v.tolist(), (k / k.sum()).tolist()))


def test_two_seeds_two_clips_by_hand():
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    # by hand: seeds (0,0) give clip means 1, .5, .5, 0; seeds (0,1) and (1,0) give 1, .75, .75, .5; (1,1) all 1
    hand = {0.0: 1 / 16, 0.5: 4 / 16, 0.75: 4 / 16, 1.0: 7 / 16}
    assert _exact(X, "shared") == pytest.approx(hand)
    reps = replicate_means(X, 40_000, seed=1)
    v, k = np.unique(reps, return_counts=True)
    assert v.tolist() == [0.0, 0.5, 0.75, 1.0]
    assert k / k.sum() == pytest.approx([hand[x] for x in v], abs=0.01)
    assert reps.mean() == pytest.approx(0.75, abs=0.005)  # the exact expectation: the grand mean


@pytest.mark.parametrize("clips", ["shared", "per_seed"])
def test_bootstrap_distribution_matches_enumeration(clips):
    X = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    exact = _exact(X, clips)
    reps = replicate_means(X, 60_000, seed=2, clips=clips)
    v, k = np.unique(np.round(reps, 12), return_counts=True)
    assert set(v.tolist()) <= set(exact)
    got = dict(zip(v.tolist(), (k / k.sum()).tolist()))
    assert max(abs(got.get(x, 0.0) - p) for x, p in exact.items()) < 0.01


def test_per_seed_variance_has_the_two_stage_closed_form():
    """Var*(M) = (Var_s(mu_s) + mean_s(sigma_s^2) / n) / S, with biased (1/N) variances: the known answer of the
    two-stage bootstrap of nested data."""
    X = np.random.default_rng(0).integers(0, 2, size=(4, 30)).astype(float)
    S, n = X.shape
    closed = (X.mean(1).var() + X.var(1).mean() / n) / S
    reps = replicate_means(X, 40_000, seed=3, clips="per_seed")
    assert reps.var() == pytest.approx(closed, rel=0.04)


def test_one_seed_is_the_clip_bootstrap_of_scipy():
    x = np.random.default_rng(4).integers(0, 2, size=200).astype(float)
    ours = hierarchical_bootstrap(x[None], n_boot=20_000, seed=5)
    ref = stats.bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", random_state=6).confidence_interval
    assert ours.value == x.mean()
    assert (ours.lo, ours.hi) == pytest.approx((ref.low, ref.high), abs=0.006)


def test_strata_keep_class_counts():
    # two classes whose clips all score alike: a class-stratified clip draw cannot move the mean
    X = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    r = hierarchical_bootstrap(X, n_boot=500, strata=[0, 0, 1, 1], null=0.5)
    assert (r.value, r.lo, r.hi, r.p) == (0.5, 0.5, 0.5, 1.0)
    assert hierarchical_bootstrap(X, n_boot=500).hi > 0.5  # without strata it can


def test_paired_difference_cancels_shared_variation():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2, size=(3, 100)).astype(float)
    shifted = np.minimum(base + (rng.random((3, 100)) < 0.1), 1.0)  # b = a plus 10 % of clips flipped to correct
    d = paired_difference(shifted, base, n_boot=4000, seed=8)
    assert d.value == pytest.approx((shifted - base).mean())
    assert d.lo > 0 and d.p < 0.01
    # unpaired, the two intervals overlap: the pairing is what resolves the difference
    a, b = hierarchical_bootstrap(shifted, 4000, 8), hierarchical_bootstrap(base, 4000, 8)
    assert a.lo < b.hi
    same = paired_difference(base, base, n_boot=100)
    assert (same.value, same.lo, same.hi, same.p) == (0.0, 0.0, 0.0, 1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same seeds and clips"):
        paired_difference(np.ones((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="clips 'x'"):
        replicate_means(np.ones((2, 2)), 10, clips="x")
    with pytest.raises(ValueError, match="one label per clip"):
        replicate_means(np.ones((2, 2)), 10, strata=[0])
    with pytest.raises(ValueError, match="non-finite"):
        hierarchical_bootstrap(np.array([[np.nan]]))
