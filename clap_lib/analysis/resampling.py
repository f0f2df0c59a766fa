"""Statistics under the metrics: Pearson r with its exact / Monte-Carlo permutation p-value and bootstrap interval,
and the class-stratified bootstrap (resampling clips within each class)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class PearsonResult:
    r: float
    p: float
    n: int


def _xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"x and y need equal length >= 3, got {len(x)} and {len(y)}")
    return x, y


def pearson(x, y) -> PearsonResult:
    """Pearson r with its two-sided parametric p-value (scipy.stats.pearsonr)."""
    x, y = _xy(x, y)
    res = stats.pearsonr(x, y)
    return PearsonResult(r=float(res.statistic), p=float(res.pvalue), n=len(x))


def _zscore(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(axis=-1, keepdims=True)) / a.std(axis=-1, keepdims=True)


#: up to this many distinct permutations (8! = 40,320; 9! = 362,880), the permutation p is computed exactly
EXACT_PERMUTATIONS = 400_000


def pearson_permutation(x, y, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided permutation p-value of Pearson r, shuffling y.

    With ``n! <= EXACT_PERMUTATIONS`` (n <= 9: the paper's 6 combinations, 9 with ``strict``) every permutation is
    enumerated and ``p = #(|r_perm| >= |r|) / n!`` exactly (no Monte Carlo noise at a boundary such as 0.05;
    ``n_perm`` and ``seed`` are then unused); otherwise ``(1 + #(|r_perm| >= |r|)) / (1 + n_perm)`` over
    ``n_perm`` random permutations.
    """
    x, y = _xy(x, y)
    xz, yz = _zscore(x), _zscore(y)
    r_obs = abs(xz @ yz) / len(x)
    if math.factorial(len(x)) <= EXACT_PERMUTATIONS:
        perms = np.array(list(itertools.permutations(range(len(x)))), dtype=np.intp)
        r = yz[perms] @ xz / len(x)
        return float(np.mean(np.abs(r) >= r_obs - 1e-12))
    rng = np.random.default_rng(seed)
    count, done = 0, 0
    while done < n_perm:
        m = min(n_perm - done, max(1, 2_000_000 // len(x)))
        r = rng.permuted(np.tile(yz, (m, 1)), axis=1) @ xz / len(x)
        count += int(np.sum(np.abs(r) >= r_obs - 1e-12))
        done += m
    return (1 + count) / (1 + n_perm)


def _percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(samples, [a, 100 - a])
    return float(lo), float(hi)


def pearson_bootstrap_ci(x, y, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of r, resampling (x, y) pairs; degenerate resamples are skipped."""
    x, y = _xy(x, y)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.mean(_zscore(x[idx]) * _zscore(y[idx]), axis=1)
    return _percentile_ci(r, level)


def stratified_resample(labels, rng: np.random.Generator) -> np.ndarray:
    """Indices drawn with replacement *within* each class; per-class counts are preserved."""
    return _stratified_draw(_groups(labels), rng)


def _groups(labels) -> list[np.ndarray]:
    labels = np.asarray(labels)
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _stratified_draw(groups: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([g[rng.integers(0, len(g), size=len(g))] for g in groups])
