"""Uncertainty of the paper's metrics: bootstrap / subsampling intervals, seed summaries, correlations.

Two sources of randomness are treated separately, because they act on different units:

* **Test clips** (accuracy, silhouettes). The evaluation clips of each class are a sample; the interval is a
  percentile bootstrap that resamples clips *within* each class (:func:`clap_lib.metrics.stratified_resample`),
  so every class keeps its clip count and the chance level stays fixed.

  The silhouette of a bootstrap resample is computed with the resample as **clip weights** and copies of a
  clip excluded from its own intra-class mean: a duplicated clip sits at distance 0 from its copy, and
  counting that pair would inflate ``a(i)`` -> silhouette upwards in every resample (a bias of the naive
  bootstrap, not a property of the data). With all weights 1 the weighted silhouette equals
  :func:`clap_lib.metrics.silhouette` exactly (tested).

  The silhouette is a strongly biased estimator at 8 clips per class (``b(i)`` is a minimum of noisy class
  means, and ``a(i)`` averages few pairs): in a simulation with 25 Gaussian classes the expected 8-clip value
  was 0.023 against 0.053 with unlimited clips, and the bootstrap distribution is shifted by about the same
  amount again, so the plain percentile interval covered neither (0% / 25% of 150 replications). The
  silhouette intervals are therefore **centred**: ``[v - q_hi, v - q_lo]`` with ``q`` the quantiles of
  ``s* - mean s*``. Their estimand is the Table-2 value one would get with another draw of the same number of
  test clips per class (the quantity compared across combinations); coverage of that value was 99% (slightly
  conservative: resamples hold only ~63% distinct clips). Accuracy is a mean of per-clip indicators, whose
  bootstrap is unbiased, so it keeps the plain percentile interval.

* **Labels** (the three topological similarities ``S = max_k S_k``, computed on 25-ish label points). Resampling
  labels with replacement would put duplicate points in a cloud and break the k-NN neighbourhoods, so the
  interval is a **delete-d jackknife** over labels (Shao & Wu 1989; "jackknife histogram", Wu 1990): ``n_boot``
  random subsets of ``r = round(fraction * n)`` labels *without* replacement (``d = n - r >= 1`` deleted),
  ``S_r`` recomputed on each subset. The delete-d jackknife is consistent for non-smooth statistics such as a
  maximum over ``k`` when ``d`` grows with ``n`` (the delete-1 jackknife is not), and its variance factor is
  ``r / d``: ``S_n - theta`` is approximated in law by ``sqrt(r/d) * (S_r* - mean S_r*)``. We centre on the
  subset *mean* rather than on ``S_n`` because ``S``'s expectation depends on the number of points (chance
  ``S_2 = (1 + 1/(n-1)) / 2``), so ``S_r*`` is shifted against ``S_n`` by the cloud size alone; centring keeps
  only the spread. The interval is the "basic" (reflected) one,
  ``[S_n - c q_hi, S_n - c q_lo]`` with ``c = sqrt(r/d)`` and ``q`` the quantiles of ``S_r* - mean S_r*``,
  clipped to ``[0, 1]``. It contains ``S_n`` whenever the subset mean lies between the two quantiles (always
  except for pathological, extremely skewed subset distributions). The interval answers "how much would S move
  with another label set of this size", which is the relevant variability for a 25-class split; clip sampling
  noise in the label means is available separately from :func:`topo_clip_intervals`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import metrics
from .metrics import _percentile_ci  # one definition of the percentile CI for the whole package

__all__ = ["Interval", "metric_intervals", "topo_clip_intervals", "weighted_silhouettes", "bootstrap_weights",
           "label_subsample_interval", "seed_summary", "correlation_report", "TOPO_PAIRS"]

#: result-table name -> (first cloud, second cloud) of the paper's Table 3, on label-wise means of the audio.
TOPO_PAIRS = {"topo_xa_Ea": ("x_a", "E_a"), "topo_xt_Et": ("x_t", "E_t"), "topo_Ea_Et": ("E_a", "E_t")}


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval at confidence ``level``."""
    value: float
    lo: float
    hi: float
    level: float = 0.95

    def format(self, digits: int = 2) -> str:
        """``"0.61 [0.55, 0.66]"``."""
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"

    @property
    def width(self) -> float:
        return self.hi - self.lo

    def contains(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def as_columns(self, name: str) -> dict[str, float]:
        """``{name: value, name_lo: lo, name_hi: hi}`` -- the results-table layout read by claims/report."""
        return {name: self.value, f"{name}_lo": self.lo, f"{name}_hi": self.hi}


# ----------------------------------------------------------------------------- clip bootstrap

def bootstrap_weights(y, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``W[b, j]`` = how often clip ``j`` is drawn in stratified resample ``b`` (row sums = n, class sums fixed)."""
    y = np.asarray(y)
    W = np.empty((n_boot, len(y)))
    for b in range(n_boot):
        W[b] = np.bincount(metrics.stratified_resample(y, rng), minlength=len(y))
    return W


def _one_hot(y) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(np.asarray(y), return_inverse=True)
    Y = np.zeros((len(inv), len(uniq)))
    Y[np.arange(len(inv)), inv] = 1.0
    return Y, inv


def weighted_silhouettes(X, y, W, metric: str = "cosine", chunk_elems: int = 4_000_000) -> np.ndarray:
    """Silhouette of ``X`` (labels ``y``) under each row of clip weights ``W`` (shape ``(B, n)``).

    ``a(i) = sum_{j in C(i), j != i} w_j d_ij / sum_{j in C(i), j != i} w_j`` (copies of clip i excluded),
    ``b(i) = min_{c != C(i)} sum_{j in c} w_j d_ij / sum_{j in c} w_j``, ``s(i) = (b - a) / max(a, b)``
    (0 when i has no other clip of its class, as in sklearn), and the result is ``sum_i w_i s(i) / sum_i w_i``.
    Every class must have positive total weight in every row (true for stratified resamples).
    """
    D = metrics.pairwise_distances(X, metric)
    np.fill_diagonal(D, 0.0)
    Y, inv = _one_hot(y)
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    n, C = Y.shape
    if W.shape[1] != n:
        raise ValueError(f"W must have {n} columns (one weight per clip), got shape {W.shape}")
    step = max(1, chunk_elems // (n * C))  # bound the (B, n, C) intermediate
    out = np.empty(len(W))
    rows = np.arange(n)
    for s in range(0, len(W), step):
        Wc = W[s:s + step]
        sums = D @ (Wc[:, :, None] * Y[None])          # (b, n, C): sum_j w_j d_ij over clips j of class c
        tot = Wc @ Y                                    # (b, C): class weights
        if np.any(tot <= 0):
            raise ValueError("every class needs positive weight in every resample")
        own_cnt = tot[:, inv] - Wc                      # other clips of i's class (copies of i removed)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = sums[:, rows, inv] / own_cnt            # d_ii = 0, so copies of i add nothing to the sum
            mean_other = sums / tot[:, None, :]
            mean_other[:, rows, inv] = np.inf
            b = mean_other.min(axis=2)
            s_i = (b - a) / np.maximum(a, b)
        s_i = np.where((own_cnt > 0) & np.isfinite(s_i), s_i, 0.0)
        out[s:s + step] = np.sum(Wc * s_i, axis=1) / Wc.sum(axis=1)
    return out


def _interval(value: float, samples: np.ndarray, level: float) -> Interval:
    """Plain percentile interval of the resampled statistic."""
    lo, hi = _percentile_ci(samples, level)
    return Interval(float(value), lo, hi, level)


def _centred_interval(value: float, samples: np.ndarray, level: float, scale: float = 1.0,
                      bounds: tuple[float, float] = (-np.inf, np.inf)) -> Interval:
    """``[v - scale * q_hi, v - scale * q_lo]``, ``q`` the quantiles of ``samples - mean(samples)``: the spread
    of the resampled statistic around its own mean, placed at the point estimate (drops a systematic shift of
    the resamples; contains ``v`` whenever the mean lies between the quantiles), clipped to ``bounds``."""
    q_lo, q_hi = _percentile_ci(samples - np.nanmean(samples), level)
    lo, hi = np.clip([value - scale * q_hi, value - scale * q_lo], *bounds)
    return Interval(float(value), float(lo), float(hi), level)


# ----------------------------------------------------------------------------- label subsampling

def _subset_k_max(k_max: int | None, r: int) -> int | None:
    # None keeps the default rule n // 2 on the subset; a fixed k_max cannot exceed the subset size.
    return None if k_max is None else min(k_max, r)


def label_subsample_interval(P, Q, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                             fraction: float = 0.8, k_min: int = 2, k_max: int | None = None) -> Interval:
    """Delete-d jackknife interval of ``S = max_k S_k`` over the rows (labels) of the paired clouds P, Q.

    See the module docstring for the definition. ``r = min(round(fraction * n), n - 1)`` labels are kept per
    subset; ``r`` must be at least 3 and at least ``2 * k_min`` so that the k range is not empty.
    """
    P, Q = np.asarray(P, dtype=np.float64), np.asarray(Q, dtype=np.float64)
    n = len(P)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    r = min(int(round(fraction * n)), n - 1)
    if r < max(3, 2 * k_min):
        raise ValueError(f"label subsampling needs round({fraction} * n) >= max(3, 2 * k_min); got n={n}, r={r}")
    S = metrics.topological_similarity(P, Q, k_min, k_max).S
    rng = np.random.default_rng(seed)
    km = _subset_k_max(k_max, r)
    sub = np.empty(n_boot)
    for b in range(n_boot):
        idx = np.sort(rng.choice(n, size=r, replace=False))
        sub[b] = metrics.topological_similarity(P[idx], Q[idx], k_min, km).S
    return _centred_interval(S, sub, level, scale=np.sqrt(r / (n - r)), bounds=(0.0, 1.0))


# ----------------------------------------------------------------------------- the metrics of Tables 1-3

def _check_sel(sel: dict) -> tuple[np.ndarray, ...]:
    missing = [k for k in ("x_a", "E_a", "y", "x_t", "E_t") if k not in sel]
    if missing:
        raise KeyError(f"emb_sel is missing key(s) {missing}; needs x_a, E_a, y (row into E_t), x_t, E_t")
    x_a, E_a = np.asarray(sel["x_a"], float), np.asarray(sel["E_a"], float)
    x_t, E_t = np.asarray(sel["x_t"], float), np.asarray(sel["E_t"], float)
    y = np.asarray(sel["y"])
    if not (len(x_a) == len(E_a) == len(y)):
        raise ValueError(f"x_a, E_a and y need one row per clip; got {len(x_a)}, {len(E_a)}, {len(y)}")
    if len(x_t) != len(E_t):
        raise ValueError(f"x_t and E_t need one row per label; got {len(x_t)} and {len(E_t)}")
    absent = sorted(set(range(len(E_t))) - set(np.unique(y).tolist()))
    if absent:
        raise ValueError(f"labels {absent} (rows of E_t) have no clip; select the labels that have clips")
    return x_a, E_a, y, x_t, E_t


def metric_intervals(emb_sel: dict, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                     k_min: int = 2, k_max: int | None = None, fraction: float = 0.8) -> dict[str, Interval]:
    """Intervals of every metric of the results table for one trained model.

    ``emb_sel``: ``x_a``, ``E_a`` (clips), ``y`` (row of each clip's label in ``x_t``/``E_t``), ``x_t``, ``E_t``
    (labels; every row must have at least one clip) -- the selection :func:`clap_lib.experiment.run_metrics`
    makes. Returns ``accuracy``, ``sil_x_a``, ``sil_E_a``, ``sil_diff`` (= sil_x_a - sil_E_a, on the *same*
    resamples, i.e. a paired interval) from one stratified clip bootstrap (accuracy: percentile; silhouettes:
    centred, see the module docstring), and ``topo_xa_Ea``, ``topo_xt_Et``,
    ``topo_Ea_Et`` from the label delete-d jackknife (module docstring). Point estimates are exactly the
    values of ``run_metrics``.
    """
    x_a, E_a, y, x_t, E_t = _check_sel(emb_sel)
    clip_ss, label_ss = np.random.SeedSequence(seed).spawn(2)
    W = bootstrap_weights(y, n_boot, np.random.default_rng(clip_ss))

    correct = (metrics.zero_shot_predict(E_a, E_t) == y).astype(float)
    acc_boot = W @ correct / len(y)  # vectorised: accuracy of resample b = weighted mean of correctness
    sil_xa_boot, sil_Ea_boot = weighted_silhouettes(x_a, y, W), weighted_silhouettes(E_a, y, W)
    sil_xa, sil_Ea = metrics.silhouette(x_a, y), metrics.silhouette(E_a, y)
    out = {"accuracy": _interval(float(correct.mean()), acc_boot, level),
           "sil_x_a": _centred_interval(sil_xa, sil_xa_boot, level, bounds=(-1.0, 1.0)),
           "sil_E_a": _centred_interval(sil_Ea, sil_Ea_boot, level, bounds=(-1.0, 1.0)),
           "sil_diff": _centred_interval(sil_xa - sil_Ea, sil_xa_boot - sil_Ea_boot, level, bounds=(-2.0, 2.0))}

    clouds = {"x_a": metrics.label_means(x_a, y)[0], "E_a": metrics.label_means(E_a, y)[0], "x_t": x_t, "E_t": E_t}
    label_seed = int(label_ss.generate_state(1)[0])  # same label subsets for the three pairs
    for name, (p, q) in TOPO_PAIRS.items():
        out[name] = label_subsample_interval(clouds[p], clouds[q], n_boot, label_seed, level, fraction, k_min, k_max)
    return out


def topo_clip_intervals(emb_sel: dict, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                        k_min: int = 2, k_max: int | None = None) -> dict[str, Interval]:
    """Clip-sampling intervals of ``topo_xa_Ea`` and ``topo_Ea_Et``: the label means are recomputed from
    stratified clip resamples (no duplicate *label* points arise) and ``S`` is recomputed on them; ``x_t`` and
    ``E_t`` do not depend on clips, so ``topo_xt_Et`` has no clip-sampling interval. Centred intervals, as for
    the silhouettes: resampled means are noisier than the sample means, which shifts ``S*`` down systematically."""
    x_a, E_a, y, x_t, E_t = _check_sel(emb_sel)
    W = bootstrap_weights(y, n_boot, np.random.default_rng(seed))
    Y, _ = _one_hot(y)

    def means(X: np.ndarray, w: np.ndarray) -> np.ndarray:
        Wy = w[:, None] * Y
        return (Wy.T @ X) / Wy.sum(axis=0)[:, None]

    boot = {"topo_xa_Ea": np.empty(n_boot), "topo_Ea_Et": np.empty(n_boot)}
    for b, w in enumerate(W):
        mx, mE = means(x_a, w), means(E_a, w)
        boot["topo_xa_Ea"][b] = metrics.topological_similarity(mx, mE, k_min, k_max).S
        boot["topo_Ea_Et"][b] = metrics.topological_similarity(mE, E_t, k_min, k_max).S
    mx, mE = metrics.label_means(x_a, y)[0], metrics.label_means(E_a, y)[0]
    point = {"topo_xa_Ea": metrics.topological_similarity(mx, mE, k_min, k_max).S,
             "topo_Ea_Et": metrics.topological_similarity(mE, E_t, k_min, k_max).S}
    return {k: _centred_interval(point[k], boot[k], level, bounds=(0.0, 1.0)) for k in boot}


# ----------------------------------------------------------------------------- seeds and correlations

def seed_summary(df_per_seed: pd.DataFrame, by: Sequence[str] = ("pretraining", "training"),
                 metric_cols: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per combination: ``n_seeds`` and ``<metric>_mean/_std/_min/_max`` for every metric column.

    Metric columns default to the numeric columns other than ``seed``, the ``by`` keys and interval columns
    (``*_lo``/``*_hi``). ``std`` is the sample standard deviation (ddof=1; NaN for a single seed). Rows keep
    the order in which combinations first appear.
    """
    by = list(by)
    missing = [c for c in ["seed", *by] if c not in df_per_seed.columns]
    if missing:
        raise KeyError(f"df_per_seed is missing column(s) {missing}")
    if metric_cols is None:
        metric_cols = [c for c in df_per_seed.select_dtypes("number").columns
                       if c != "seed" and c not in by and not c.endswith(("_lo", "_hi"))]
    g = df_per_seed.groupby(by, sort=False)
    out = g["seed"].nunique().rename("n_seeds").to_frame()
    for m in metric_cols:
        out[f"{m}_mean"] = g[m].mean()
        out[f"{m}_std"] = g[m].std(ddof=1)
        out[f"{m}_min"] = g[m].min()
        out[f"{m}_max"] = g[m].max()
    return out.reset_index()


def correlation_report(x, y, n_perm: int = 10000, n_boot: int = 2000, seed: int = 0,
                       level: float = 0.95) -> dict:
    """Pearson r of (x, y) with its parametric p (``p``), permutation p (``p_perm``, two-sided, shuffling y)
    and percentile bootstrap interval (``ci_lo``, ``ci_hi``) over resampled pairs; ``n``, ``level``.
    A constant x or y has no correlation: every number is NaN."""
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    out = {"n": int(len(x)), "level": level}
    if len(x) == len(y) and len(x) >= 3 and (np.ptp(x) == 0 or np.ptp(y) == 0):
        return out | {"r": float("nan"), "p": float("nan"), "p_perm": float("nan"),
                      "ci_lo": float("nan"), "ci_hi": float("nan")}
    pr = metrics.pearson(x, y)  # raises on unequal length / n < 3
    lo, hi = metrics.pearson_bootstrap_ci(x, y, n_boot, seed, level)
    return out | {"r": pr.r, "p": pr.p, "p_perm": metrics.pearson_permutation(x, y, n_perm, seed),
                  "ci_lo": lo, "ci_hi": hi}
