"""Hierarchical bootstrap over training seeds and test clips, and paired comparisons of two conditions.

Data: ``X[s, j]``, a per-clip score (accuracy: 1 if clip j is classified correctly by the model of seed s) of S
seeds on the same n test clips. The statistic is the grand mean ``mean_s mean_j X[s, j]``.

One bootstrap replicate draws S seeds with replacement, then clips with replacement (within each class when
``strata`` is given, so every class keeps its clip count and chance stays fixed), and takes the mean of ``X`` over
the drawn seeds and clips. Two ways to draw the clips:

* ``clips="shared"`` (default): one clip draw per replicate, used for every drawn seed. Every seed is scored on the
  *same* fold-5 clips (seeds and clips are crossed, not nested), so a hard clip is hard for every seed; one shared
  draw keeps that correlation, and the clip part of the variance does not shrink with more seeds (it should not:
  more seeds do not add test clips).
* ``clips="per_seed"``: a new clip draw for each drawn seed (the textbook two-stage bootstrap of nested data, for
  seeds that were scored on different clips). On crossed data it understates the clip part by about 1/S.

A paired comparison (:func:`paired_difference`) resamples *the same* seeds and clips for both conditions and
bootstraps the mean of ``X_a - X_b``: the seed-to-seed and clip-to-clip variation common to both cancels. The two
matrices must be aligned (row s = the same training seed, column j = the same clip).

Intervals are percentile intervals of the replicates; ``p`` is the two-sided bootstrap p value of "the mean is
``null``": ``2 min(P*(M <= null), P*(M >= null))``, capped at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clap_lib.analysis.resampling import _percentile_ci

__all__ = ["HierarchicalResult", "replicate_means", "hierarchical_bootstrap", "paired_difference"]

CLIP_MODES = ("shared", "per_seed")


@dataclass(frozen=True)
class HierarchicalResult:
    value: float  # the grand mean of X (or of X_a - X_b)
    lo: float
    hi: float
    p: float  # two-sided bootstrap p of "mean = null"
    null: float
    n_seeds: int
    n_clips: int
    n_boot: int
    level: float


def _check(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or 0 in X.shape:
        raise ValueError(f"X must be a non-empty (seeds, clips) matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X holds non-finite values")
    return X


def _clip_draws(n: int, strata, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Clip indices of shape (*shape, n): with replacement, within each stratum (class) when given."""
    if strata is None:
        return rng.integers(0, n, size=(*shape, n))
    strata = np.asarray(strata)
    if strata.shape != (n,):
        raise ValueError(f"strata needs one label per clip ({n}), got shape {strata.shape}")
    out = np.empty((*shape, n), dtype=np.int64)
    for c in np.unique(strata):
        members = np.flatnonzero(strata == c)
        out[..., members] = members[rng.integers(0, len(members), size=(*shape, len(members)))]
    return out


def replicate_means(X, n_boot: int, seed: int = 0, strata=None, clips: str = "shared") -> np.ndarray:
    """The grand mean of `X` in each of `n_boot` hierarchical resamples (module docstring)."""
    X = _check(X)
    if clips not in CLIP_MODES:
        raise ValueError(f"clips {clips!r}: allowed {list(CLIP_MODES)}")
    S, n = X.shape
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // (S * n))  # bound the (chunk, S, n) gather
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        s_idx = rng.integers(0, S, size=(b, S))
        if clips == "shared":
            c_idx = _clip_draws(n, strata, (b,), rng)[:, None, :]
        else:
            c_idx = _clip_draws(n, strata, (b, S), rng)
        out[start : start + b] = X[s_idx[:, :, None], c_idx].mean(axis=(1, 2))
    return out


def _result(value: float, reps: np.ndarray, null: float, shape, n_boot: int, level: float) -> HierarchicalResult:
    lo, hi = _percentile_ci(reps, level)
    p = min(1.0, 2 * min(float(np.mean(reps <= null)), float(np.mean(reps >= null))))
    return HierarchicalResult(float(value), lo, hi, p, float(null), shape[0], shape[1], n_boot, level)


def hierarchical_bootstrap(
    X, n_boot: int = 2000, seed: int = 0, level: float = 0.95, strata=None, clips: str = "shared", null: float = 0.0
) -> HierarchicalResult:
    """Grand mean of `X` (seeds x clips) with its hierarchical percentile interval; `null` e.g. chance (1/|T|)."""
    X = _check(X)
    return _result(X.mean(), replicate_means(X, n_boot, seed, strata, clips), null, X.shape, n_boot, level)


def paired_difference(
    X_a, X_b, n_boot: int = 2000, seed: int = 0, level: float = 0.95, strata=None, clips: str = "shared"
) -> HierarchicalResult:
    """Mean of X_a - X_b over the same seeds and clips, with its interval and the p of "no difference"."""
    X_a, X_b = _check(X_a), _check(X_b)
    if X_a.shape != X_b.shape:
        raise ValueError(f"paired conditions need the same seeds and clips; shapes {X_a.shape} and {X_b.shape}")
    D = X_a - X_b
    return _result(D.mean(), replicate_means(D, n_boot, seed, strata, clips), 0.0, D.shape, n_boot, level)
