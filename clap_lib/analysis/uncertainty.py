"""Uncertainty of the paper's metrics: bootstrap / subsampling intervals, seed summaries, correlations.

Two sources of randomness are treated separately, because they act on different units:

* **Test clips** (accuracy, silhouettes). The evaluation clips of each class are a sample; the interval is a
  percentile bootstrap that resamples clips *within* each class (:func:`clap_lib.analysis.resampling.stratified_resample`),
  so every class keeps its clip count and the chance level stays fixed.

  The silhouette of a bootstrap resample is computed with the resample as **clip weights** and copies of a
  clip excluded from its own intra-class mean: a duplicated clip sits at distance 0 from its copy, and
  counting that pair would inflate ``a(i)`` -> silhouette upwards in every resample (a bias of the naive
  bootstrap, not a property of the data). With all weights 1 the weighted silhouette equals
  :func:`clap_lib.analysis.metrics.silhouette` exactly (tested).

  The silhouette is a strongly biased estimator at 8 clips per class (``b(i)`` is a minimum of noisy class
  means, and ``a(i)`` averages few pairs): in a simulation with 25 Gaussian classes the expected 8-clip value
  was 0.023 against 0.053 with unlimited clips, and the bootstrap distribution is shifted by about the same
  amount again, so the plain percentile interval covered neither (0% / 25% of 150 replications). The
  silhouette intervals are therefore **centred**: ``[v - q_hi, v - q_lo]`` with ``q`` the quantiles of
  ``s* - mean s*``. Their estimand is the Table-2 value one would get with another draw of the same number of
  test clips per class (the quantity compared across combinations); coverage of that value was 99% (slightly
  conservative: resamples hold only ~63% distinct clips). Accuracy is a mean of per-clip indicators, whose
  bootstrap is unbiased, so it keeps the plain percentile interval.

* **Points of the S clouds** (the three topological similarities ``S = max_k S_k``: ``topo_xa_Ea`` on clips,
  ``topo_xt_Et`` and ``topo_Ea_Et`` on 25-ish label points). Resampling points with replacement would put
  duplicate points in a cloud and break the k-NN neighbourhoods, so the interval is a **delete-d jackknife**
  over the points (clips for ``topo_xa_Ea``, labels otherwise) (Shao & Wu 1989; "jackknife histogram", Wu 1990): ``n_boot``
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
  noise in the label means is available separately from :func:`topo_clip_intervals`. The edge-free summary
  ``<name>_excess`` (:class:`clap_lib.analysis.metrics.TopoSummary`) gets an interval from the same subsets.

* **Seeds** (:func:`seed_intervals`). Each training seed gives one model, scored on the *same* test clips. The
  interval of a cell's mean over ``m`` seeds adds two independent parts in quadrature: the seed part, a t
  interval over seeds (``t_{m-1} * sd / sqrt(m)``; none for one seed), and the clip part, the *mean* of the
  per-seed half-widths (lower and upper separately). The clip part is not divided by ``sqrt(m)`` because the
  seeds share the test clips, so their clip noise is (close to) perfectly correlated; the mean half-width is
  exact for perfect correlation and an upper bound otherwise (the sd of a mean is at most the mean of the sds).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from clap_lib.analysis import metrics, resampling
from clap_lib.analysis.resampling import _percentile_ci  # one definition of the percentile CI for the whole package

__all__ = ["Interval", "metric_intervals", "topo_clip_intervals", "weighted_silhouettes", "bootstrap_weights",
           "label_subsample_interval", "subsample_intervals", "seed_summary", "seed_intervals", "combine_seeds",
           "correlation_report", "TOPO_PAIRS"]

#: result-table name -> (first cloud, second cloud) of the paper's Table 3 (points: clips for x_a/E_a, labels
#: otherwise, E_a as label means when paired with E_t; see :func:`clap_lib.analysis.metrics.topo_clouds`).
TOPO_PAIRS = {name: pair[:2] for name, pair in metrics.TOPO_PAIRS.items()}


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
        W[b] = np.bincount(resampling.stratified_resample(y, rng), minlength=len(y))
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

def subsample_intervals(P, Q, n_boot: int = 200, seed: int = 0, level: float = 0.95, fraction: float = 0.8,
                        k_min: int = 2, k_max: int | None = None,
                        include_self: bool = True) -> dict[str, Interval]:
    """Delete-d jackknife intervals of ``S = max_k S_k`` (key ``"S"``) and of its edge-free summary
    ``excess = max_k (S_k - chance_k)`` (key ``"excess"``) over the rows (points) of the paired clouds P, Q.

    See the module docstring for the definition. ``r = min(round(fraction * n), n - 1)`` points are kept per
    subset; ``r`` must be at least 3 and at least ``2 * k_min`` so that the k range is not empty. A fixed
    ``k_max`` is cut to ``n // 2`` of a smaller cloud or subset (:func:`clap_lib.analysis.metrics.cap_k_max`).
    """
    P, Q = np.asarray(P, dtype=np.float64), np.asarray(Q, dtype=np.float64)
    n = len(P)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    r = min(int(round(fraction * n)), n - 1)
    if r < max(3, 2 * k_min):
        raise ValueError(f"label subsampling needs round({fraction} * n) >= max(3, 2 * k_min); got n={n}, r={r}")

    def stats_of(A: np.ndarray, B: np.ndarray) -> tuple[float, float]:
        res = metrics.topological_similarity(A, B, k_min, metrics.cap_k_max(k_max, len(A), k_min),
                                             include_self=include_self)
        return res.S, metrics.excess_over_chance(res.curve, include_self)[0]

    S, ex = stats_of(P, Q)
    rng = np.random.default_rng(seed)
    sub = np.empty((n_boot, 2))
    for b in range(n_boot):
        idx = np.sort(rng.choice(n, size=r, replace=False))
        sub[b] = stats_of(P[idx], Q[idx])
    c = np.sqrt(r / (n - r))
    return {"S": _centred_interval(S, sub[:, 0], level, scale=c, bounds=(0.0, 1.0)),
            "excess": _centred_interval(ex, sub[:, 1], level, scale=c, bounds=(-1.0, 1.0))}


def label_subsample_interval(P, Q, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                             fraction: float = 0.8, k_min: int = 2, k_max: int | None = None,
                             include_self: bool = True) -> Interval:
    """Delete-d jackknife interval of ``S = max_k S_k`` over the rows of P, Q (``subsample_intervals(...)["S"]``)."""
    return subsample_intervals(P, Q, n_boot, seed, level, fraction, k_min, k_max, include_self)["S"]


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
                     k_min: int = 2, k_max: int | None = None, fraction: float = 0.8,
                     include_self: bool = True) -> dict[str, Interval]:
    """Intervals of every metric of the results table for one trained model.

    ``emb_sel``: ``x_a``, ``E_a`` (clips), ``y`` (row of each clip's label in ``x_t``/``E_t``), ``x_t``, ``E_t``
    (labels; every row must have at least one clip) -- the selection :func:`clap_lib.pipeline.evaluation.eval_selection`
    makes. Returns ``accuracy``, ``sil_x_a``, ``sil_E_a``, ``sil_diff`` (= sil_x_a - sil_E_a, on the *same*
    resamples, i.e. a paired interval) from one stratified clip bootstrap (accuracy: percentile; silhouettes:
    centred, see the module docstring), and ``topo_xa_Ea`` (clips), ``topo_xt_Et``, ``topo_Ea_Et`` (labels) with
    their edge-free ``<name>_excess`` from the delete-d jackknife over the cloud's points (module docstring).
    Point estimates are exactly the values of :func:`clap_lib.analysis.metrics.table_metrics` (same clouds, same k rule).
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

    point_seed = int(label_ss.generate_state(1)[0])  # same subsets for the two label-level pairs
    for name, (P, Q) in metrics.topo_clouds(emb_sel).items():
        iv = subsample_intervals(P, Q, n_boot, point_seed, level, fraction, k_min, k_max, include_self)
        out[name], out[f"{name}_excess"] = iv["S"], iv["excess"]
    return out


def topo_clip_intervals(emb_sel: dict, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                        k_min: int = 2, k_max: int | None = None) -> dict[str, Interval]:
    """Clip-sampling intervals of ``topo_Ea_Et`` and of ``topo_xa_Ea`` *on label means* (key
    ``topo_xa_Ea_means``, the earlier definition, kept for comparison; the Table-3 ``topo_xa_Ea`` is per clip,
    see :func:`metric_intervals`): the label means are recomputed from stratified clip resamples (no duplicate
    *label* points arise) and ``S`` is recomputed on them; ``x_t`` and ``E_t`` do not depend on clips, so
    ``topo_xt_Et`` has no clip-sampling interval. Centred intervals, as for the silhouettes: resampled means are
    noisier than the sample means, which shifts ``S*`` down systematically."""
    x_a, E_a, y, x_t, E_t = _check_sel(emb_sel)
    W = bootstrap_weights(y, n_boot, np.random.default_rng(seed))
    Y, _ = _one_hot(y)

    def means(X: np.ndarray, w: np.ndarray) -> np.ndarray:
        Wy = w[:, None] * Y
        return (Wy.T @ X) / Wy.sum(axis=0)[:, None]

    boot = {"topo_xa_Ea_means": np.empty(n_boot), "topo_Ea_Et": np.empty(n_boot)}
    for b, w in enumerate(W):
        mx, mE = means(x_a, w), means(E_a, w)
        boot["topo_xa_Ea_means"][b] = metrics.topological_similarity(mx, mE, k_min, k_max).S
        boot["topo_Ea_Et"][b] = metrics.topological_similarity(mE, E_t, k_min, k_max).S
    mx, mE = metrics.label_means(x_a, y)[0], metrics.label_means(E_a, y)[0]
    point = {"topo_xa_Ea_means": metrics.topological_similarity(mx, mE, k_min, k_max).S,
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


def seed_intervals(per_seed: pd.DataFrame, by: Sequence[str] = ("pretraining", "training"),
                   metric_cols: Sequence[str] | None = None, level: float = 0.95) -> pd.DataFrame:
    """One row per combination: ``n_seeds`` and, per metric, ``<m>`` (mean over seeds), ``<m>_lo`` / ``<m>_hi``
    (interval over seeds *and* test clips, module docstring "Seeds") and ``<m>_sd`` (between-seed sd, ddof=1).

    ``per_seed`` has one row per (seed, combination) with the metric columns and, where a per-seed interval
    exists, ``<m>_lo`` / ``<m>_hi`` (from :func:`metric_intervals`); without them the interval is the seed part
    alone (NaN for one seed). The output has the results-table layout, so claims, paper comparisons and tables
    read it like a single run's table; rows keep the order in which combinations first appear.
    """
    by = list(by)
    missing = [c for c in ["seed", *by] if c not in per_seed.columns]
    if missing:
        raise KeyError(f"per_seed is missing column(s) {missing}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if metric_cols is None:
        metric_cols = [c for c in per_seed.select_dtypes("number").columns
                       if c != "seed" and c not in by and not c.endswith(("_lo", "_hi"))]
    rows = []
    for key, g in per_seed.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,))) | {"n_seeds": int(g["seed"].nunique())}
        for m in metric_cols:
            lo_hi = (g[f"{m}_lo"], g[f"{m}_hi"]) if f"{m}_lo" in g and f"{m}_hi" in g else (None, None)
            mean, lo, hi = combine_seeds(g[m], *lo_hi, level=level)
            sd = float(g[m].std(ddof=1)) if len(g) > 1 else float("nan")
            row |= {m: mean, f"{m}_lo": lo, f"{m}_hi": hi, f"{m}_sd": sd}
        rows.append(row)
    return pd.DataFrame(rows)


def combine_seeds(values, lo=None, hi=None, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)`` of one cell over seeds: ``values`` one per seed, ``lo`` / ``hi`` their per-seed
    (test-clip) intervals or None. Module docstring "Seeds"; NaN bounds where there is no interval at all
    (one seed, no per-seed interval). NaN values are dropped (with their intervals)."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    have_iv = lo is not None and hi is not None
    if have_iv:
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        have_iv = bool(np.all(np.isfinite(lo[ok])) and np.all(np.isfinite(hi[ok])))
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    k, mean = int(ok.sum()), float(v[ok].mean())
    seed_part = float(stats.t.ppf((1 + level) / 2, k - 1) * v[ok].std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0
    if have_iv and k == 1:  # one seed: its own interval, as given
        return mean, float(lo[ok][0]), float(hi[ok][0])
    if have_iv:  # seeds share the test clips: the mean half-width, not divided by sqrt(k)
        clip_lo = max(float(np.mean(v[ok] - lo[ok])), 0.0)
        clip_hi = max(float(np.mean(hi[ok] - v[ok])), 0.0)
    elif k > 1:
        clip_lo = clip_hi = 0.0
    else:
        return mean, float("nan"), float("nan")
    return mean, mean - float(np.hypot(seed_part, clip_lo)), mean + float(np.hypot(seed_part, clip_hi))


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
    pr = resampling.pearson(x, y)  # raises on unequal length / n < 3
    lo, hi = resampling.pearson_bootstrap_ci(x, y, n_boot, seed, level)
    return out | {"r": pr.r, "p": pr.p, "p_perm": resampling.pearson_permutation(x, y, n_perm, seed),
                  "ci_lo": lo, "ci_hi": hi}
