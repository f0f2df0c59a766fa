"""Evaluation metrics: zero-shot accuracy, silhouette, topological similarity, statistics.

Notation (paper): ``x_a`` audio-backbone embeddings, ``E_a`` projected + L2-normalised audio
embeddings, ``x_t`` text-backbone embeddings of the label prompts, ``E_t`` projected text
embeddings. All functions are pure numpy and accept anything :func:`numpy.asarray` takes.

Topological similarity (paper's definition). For two clouds ``P = {p_i}`` and ``Q = {q_i}`` of
``n`` paired points, ``N_k(p_i)`` is the set of indices of the ``k`` nearest neighbours of
``p_i`` *including i itself*, and ``S_k = (1/n) sum_i |N_k(p_i) & N_k(q_i)| / k``. Neighbour order
is a stable argsort of the distance row with ``i`` forced first, so remaining ties are broken by
the lower index.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples, silhouette_score

__all__ = ["l2_normalize", "pairwise_distances", "zero_shot_predict", "zero_shot_accuracy",
           "per_class_accuracy", "silhouette", "silhouette_per_class", "neighbour_ranks",
           "knn_overlap_curve", "TopoResult", "topological_similarity", "chance_knn_overlap",
           "permutation_null_S", "permutation_p_value", "label_means", "PearsonResult", "pearson",
           "pearson_permutation", "pearson_bootstrap_ci", "stratified_resample", "bootstrap_ci"]


def _as_2d(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_points, dim), got shape {X.shape}")
    return X


def l2_normalize(X) -> np.ndarray:
    """Rows divided by their L2 norm; zero rows stay zero (no NaN)."""
    X = _as_2d(X)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def pairwise_distances(X, metric: str = "cosine") -> np.ndarray:
    """Full ``n x n`` distance matrix. ``cosine`` = ``1 - cos`` (a zero vector is at distance 1
    from everything else); any other name is passed to :func:`scipy.spatial.distance.cdist`."""
    X = _as_2d(X)
    if metric == "cosine":
        U = l2_normalize(X)
        return 1.0 - U @ U.T
    return cdist(X, X, metric=metric)


# ----------------------------------------------------------------------------- zero-shot

def zero_shot_predict(E_a, E_t) -> np.ndarray:
    """Predicted class of each clip: ``argmax_c cos(E_a[i], E_t[c])`` (row index into ``E_t``)."""
    A, T = l2_normalize(_as_2d(E_a, "E_a")), l2_normalize(_as_2d(E_t, "E_t"))
    if A.shape[1] != T.shape[1]:
        raise ValueError(f"E_a has dim {A.shape[1]} but E_t has dim {T.shape[1]}")
    return np.argmax(A @ T.T, axis=1)


def _check_labels(labels, n: int, n_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if n_classes is not None and n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be row indices into E_t in [0, {n_classes - 1}]")
    return labels


def zero_shot_accuracy(E_a, E_t, labels) -> float:
    """Fraction of clips whose predicted class equals ``labels[i]`` (row index into ``E_t``)."""
    pred = zero_shot_predict(E_a, E_t)
    labels = _check_labels(labels, len(pred), len(np.asarray(E_t)))
    return float(np.mean(pred == labels))


def per_class_accuracy(E_a, E_t, labels) -> np.ndarray:
    """Accuracy per class, length ``len(E_t)`` in ``E_t`` row order; NaN for classes with no clip."""
    pred = zero_shot_predict(E_a, E_t)
    n_cls = len(np.asarray(E_t))
    labels = _check_labels(labels, len(pred), n_cls)
    total = np.bincount(labels, minlength=n_cls).astype(float)
    correct = np.bincount(labels[pred == labels], minlength=n_cls)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / total, np.nan)


# ----------------------------------------------------------------------------- silhouette

def _check_silhouette(X, labels) -> tuple[np.ndarray, np.ndarray]:
    X = _as_2d(X)
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ValueError(f"labels must have shape ({len(X)},), got {labels.shape}")
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(X) - 1:
        raise ValueError(f"silhouette needs 2 <= number of distinct labels <= n_samples - 1; got "
                         f"{n_labels} distinct labels for {len(X)} samples")
    return X, labels


def silhouette(X, labels, metric: str = "cosine") -> float:
    """Mean silhouette ``s(i) = (b(i) - a(i)) / max(a(i), b(i))`` (sklearn); ``a`` = mean distance
    to own class, ``b`` = smallest mean distance to another class; singleton classes give 0."""
    X, labels = _check_silhouette(X, labels)
    return float(silhouette_score(X, labels, metric=metric))


def silhouette_per_class(X, labels, metric: str = "cosine") -> dict:
    """``{label: mean silhouette of that label's samples}`` in sorted label order."""
    X, labels = _check_silhouette(X, labels)
    s = silhouette_samples(X, labels, metric=metric)
    return {lab.item() if hasattr(lab, "item") else lab: float(s[labels == lab].mean())
            for lab in np.unique(labels)}


# ----------------------------------------------------------------------------- topology

def neighbour_ranks(X, metric: str = "cosine") -> np.ndarray:
    """``rank[i, j]`` = position of ``j`` in ``i``'s neighbour order (self at 0, stable ties)."""
    D = pairwise_distances(X, metric)
    np.fill_diagonal(D, -np.inf)  # self first even if another point is at distance 0
    order = np.argsort(D, axis=1, kind="stable")
    n = len(D)
    rank = np.empty((n, n), dtype=np.int32 if n < 2**31 else np.int64)
    rank[np.arange(n)[:, None], order] = np.arange(n)
    return rank


def _curve_from_ranks(rank_p: np.ndarray, rank_q: np.ndarray) -> np.ndarray:
    # j in N_k(p_i) & N_k(q_i)  <=>  max(rank_p[i,j], rank_q[i,j]) < k; count pairs per max-rank.
    n = len(rank_p)
    hits = np.cumsum(np.bincount(np.maximum(rank_p, rank_q).ravel(), minlength=n))
    return hits / (n * np.arange(1, n + 1))


def _check_pair(P, Q) -> tuple[np.ndarray, np.ndarray]:
    P, Q = _as_2d(P, "P"), _as_2d(Q, "Q")
    if len(P) != len(Q):
        raise ValueError(f"P and Q must have the same number of points, got {len(P)} and {len(Q)}")
    if len(P) < 3:
        raise ValueError(f"topological similarity needs n >= 3 paired points, got n={len(P)}")
    return P, Q


def knn_overlap_curve(P, Q, metric: str = "cosine") -> np.ndarray:
    """``s[k-1] = S_k`` for every ``k = 1..n`` (self-inclusive k-NN overlap). O(n^2 log n)."""
    P, Q = _check_pair(P, Q)
    return _curve_from_ranks(neighbour_ranks(P, metric), neighbour_ranks(Q, metric))


@dataclass(frozen=True)
class TopoResult:
    """``S = max_{k in k_range} S_k``, attained first at ``k_star``; ``curve[k-1] = S_k``."""
    S: float
    k_star: int
    curve: np.ndarray
    k_range: tuple[int, int]


def _k_range(n: int, k_min: int, k_max: int | None) -> tuple[int, int]:
    if k_max is None:
        k_max = max(n // 2, k_min)
    if not 1 <= k_min <= k_max <= n:
        raise ValueError(f"need 1 <= k_min <= k_max <= n; got k_min={k_min}, k_max={k_max}, n={n}")
    return int(k_min), int(k_max)


def _summarise(curve: np.ndarray, k_min: int, k_max: int) -> tuple[float, int]:
    window = curve[k_min - 1:k_max]
    j = int(np.argmax(window))
    return float(window[j]), k_min + j


def topological_similarity(P, Q, k_min: int = 2, k_max: int | None = None,
                           metric: str = "cosine") -> TopoResult:
    """Topological similarity ``S = max_k S_k`` over ``k_min <= k <= k_max``.

    Default range is ``2..n//2`` (the paper does not state its range). Because self is in every
    neighbourhood, ``S_1 = 1`` and ``S_n = 1`` trivially, and ``S_k -> 1`` as ``k -> n`` for any
    pair of clouds (chance level is ``(1 + (k-1)^2/(n-1))/k``); a max over large ``k`` would
    measure set size, not structure, so we stop at half the cloud. Note the chance level of this
    ``S`` is still ~0.5 for any ``n``: chance ``S_2 = (1 + 1/(n-1))/2`` (self always shared), and
    chance ``S_{n//2}`` is about the same; compare against :func:`chance_knn_overlap` or
    :func:`permutation_null_S`, not against 0.
    """
    curve = knn_overlap_curve(P, Q, metric)
    k_min, k_max = _k_range(len(curve), k_min, k_max)
    S, k_star = _summarise(curve, k_min, k_max)
    return TopoResult(S=S, k_star=k_star, curve=curve, k_range=(k_min, k_max))


def chance_knn_overlap(n: int) -> np.ndarray:
    """Expected ``S_k`` (k = 1..n) for independent clouds: self is shared and the other ``k-1``
    neighbours are random subsets of the ``n-1`` others, so ``E[S_k] = (1 + (k-1)^2/(n-1)) / k``."""
    if n < 2:
        raise ValueError(f"chance_knn_overlap needs n >= 2, got n={n}")
    k = np.arange(1, n + 1, dtype=np.float64)
    return (1.0 + (k - 1) ** 2 / (n - 1)) / k


def permutation_null_S(P, Q, n_perm: int = 200, seed: int = 0, k_min: int = 2,
                       k_max: int | None = None, metric: str = "cosine") -> np.ndarray:
    """Null distribution of ``S``: ``S(P, Q[perm])`` for ``n_perm`` random row permutations.

    Q's ranks are computed once and permuted (``rank[perm][:, perm]``), equivalent to re-sorting
    except for how exact distance ties are broken.
    """
    P, Q = _check_pair(P, Q)
    n = len(P)
    k_min, k_max = _k_range(n, k_min, k_max)
    rank_p, rank_q = neighbour_ranks(P, metric), neighbour_ranks(Q, metric)
    rng = np.random.default_rng(seed)
    out = np.empty(n_perm)
    for b in range(n_perm):
        perm = rng.permutation(n)
        out[b] = _summarise(_curve_from_ranks(rank_p, rank_q[perm][:, perm]), k_min, k_max)[0]
    return out


def permutation_p_value(observed: float, null) -> float:
    """One-sided p-value ``(1 + #(null >= observed)) / (1 + len(null))``."""
    null = np.asarray(null, dtype=np.float64).ravel()
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


def label_means(X, labels) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector of each label, rows in sorted label order; returns ``(means, unique_labels)``."""
    X = _as_2d(X)
    labels = np.asarray(labels)
    if labels.shape != (len(X),):
        raise ValueError(f"labels must have shape ({len(X)},), got {labels.shape}")
    uniq, inv = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(uniq), X.shape[1]))
    np.add.at(sums, inv, X)
    return sums / np.bincount(inv)[:, None], uniq


# ----------------------------------------------------------------------------- statistics

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


def pearson_permutation(x, y, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided permutation p-value ``(1 + #(|r_perm| >= |r|)) / (1 + n_perm)`` shuffling y."""
    x, y = _xy(x, y)
    xz, yz = _zscore(x), _zscore(y)
    r_obs = abs(xz @ yz) / len(x)
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


def pearson_bootstrap_ci(x, y, n_boot: int = 2000, seed: int = 0,
                         level: float = 0.95) -> tuple[float, float]:
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


def bootstrap_ci(stat_fn: Callable[[np.ndarray], float], labels, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95,
                 stratified: bool = True) -> tuple[float, float]:
    """Percentile CI of ``stat_fn(indices)`` over bootstrap resamples of clip indices
    (within each class if ``stratified``, else over all clips)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    groups = _groups(labels)
    draw = ((lambda: _stratified_draw(groups, rng)) if stratified
            else (lambda: rng.integers(0, len(labels), size=len(labels))))
    return _percentile_ci(np.array([stat_fn(draw()) for _ in range(n_boot)], dtype=float), level)
