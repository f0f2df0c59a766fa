"""Evaluation metrics: zero-shot accuracy, silhouette, topological similarity, statistics.

Notation (paper): ``x_a`` audio-backbone embeddings, ``E_a`` projected + L2-normalised audio
embeddings, ``x_t`` text-backbone embeddings of the label prompts, ``E_t`` projected text
embeddings. All functions are pure numpy and accept anything :func:`numpy.asarray` takes.

Topological similarity (paper's definition). For two clouds ``P = {p_i}`` and ``Q = {q_i}`` of
``n`` paired points, ``N_k(p_i)`` is the set of indices of the ``k`` nearest neighbours of
``p_i`` *including i itself*, and ``S_k = (1/n) sum_i |N_k(p_i) & N_k(q_i)| / k``. Neighbour order
is a stable argsort of the distance row with ``i`` forced first, so remaining ties are broken by
the lower index. Every S function takes ``include_self``: ``False`` gives the variant in which
``N_k(p_i)`` holds the ``k`` nearest *other* points (``k = 1..n-1``), see :mod:`clap_lib.analysis.topology` for why it
matters (with self included ``S_2 >= 1/2`` for any two clouds).

:func:`topo_summary` reports ``S`` with what it needs to be read: its chance level (the permutation null of the
max statistic), ``k*`` and whether it sits on the window's edge, and an edge-free summary, the largest excess of
``S_k`` over its chance curve. :func:`table_metrics` gives every Table-1/2/3 number of one model as a flat dict.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples, silhouette_score

__all__ = ["l2_normalize", "pairwise_distances", "zero_shot_predict", "zero_shot_accuracy",
           "per_class_accuracy", "silhouette", "silhouette_per_class", "neighbour_ranks",
           "knn_overlap_curve", "TopoResult", "topological_similarity", "chance_knn_overlap",
           "TopoSummary", "topo_summary", "excess_over_chance", "table_metrics", "topo_clouds", "cap_k_max",
           "TOPO_PAIRS",
           "permutation_null_S", "permutation_p_value", "label_means"]


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


def _curve_from_ranks(rank_p: np.ndarray, rank_q: np.ndarray, include_self: bool = True) -> np.ndarray:
    # j in N_k(p_i) & N_k(q_i)  <=>  max(rank_p[i,j], rank_q[i,j]) < k; count pairs per max-rank.
    n = len(rank_p)
    m = np.maximum(rank_p, rank_q)
    if include_self:
        hits = np.cumsum(np.bincount(m.ravel(), minlength=n))
        return hits / (n * np.arange(1, n + 1))
    # self excluded: drop the diagonal (rank 0) and count ranks among the others (rank - 1)
    off = m[~np.eye(n, dtype=bool)] - 1
    hits = np.cumsum(np.bincount(off, minlength=n - 1))
    return hits / (n * np.arange(1, n))


def _check_pair(P, Q) -> tuple[np.ndarray, np.ndarray]:
    P, Q = _as_2d(P, "P"), _as_2d(Q, "Q")
    if len(P) != len(Q):
        raise ValueError(f"P and Q must have the same number of points, got {len(P)} and {len(Q)}")
    if len(P) < 3:
        raise ValueError(f"topological similarity needs n >= 3 paired points, got n={len(P)}")
    return P, Q


def knn_overlap_curve(P, Q, metric: str = "cosine", include_self: bool = True) -> np.ndarray:
    """``s[k-1] = S_k`` for every ``k = 1..n`` (self included, the paper's definition), or ``k = 1..n-1``
    (``include_self=False``: ``N_k`` = the k nearest other points). O(n^2 log n)."""
    P, Q = _check_pair(P, Q)
    return _curve_from_ranks(neighbour_ranks(P, metric), neighbour_ranks(Q, metric), include_self)


@dataclass(frozen=True)
class TopoResult:
    """``S = max_{k in k_range} S_k``, attained first at ``k_star``; ``curve[k-1] = S_k``."""
    S: float
    k_star: int
    curve: np.ndarray
    k_range: tuple[int, int]


def _k_range(n: int, k_min: int, k_max: int | None, n_points: int | None = None) -> tuple[int, int]:
    """``n`` is the length of the curve (``n_points`` with self included, ``n_points - 1`` without); the default
    window ends at half the number of points either way."""
    if k_max is None:
        k_max = max((n if n_points is None else n_points) // 2, k_min)
    if not 1 <= k_min <= k_max <= n:
        raise ValueError(f"need 1 <= k_min <= k_max <= n; got k_min={k_min}, k_max={k_max}, n={n}")
    return int(k_min), int(k_max)


def _summarise(curve: np.ndarray, k_min: int, k_max: int) -> tuple[float, int]:
    window = curve[k_min - 1:k_max]
    j = int(np.argmax(window))
    return float(window[j]), k_min + j


def topological_similarity(P, Q, k_min: int = 2, k_max: int | None = None,
                           metric: str = "cosine", include_self: bool = True) -> TopoResult:
    """Topological similarity ``S = max_k S_k`` over ``k_min <= k <= k_max``.

    Default range is ``2..n//2`` (the paper does not state its range). Because self is in every
    neighbourhood, ``S_1 = 1`` and ``S_n = 1`` trivially, and ``S_k -> 1`` as ``k -> n`` for any
    pair of clouds (chance level is ``(1 + (k-1)^2/(n-1))/k``); a max over large ``k`` would
    measure set size, not structure, so we stop at half the cloud. Note the chance level of this
    ``S`` is still ~0.5 for any ``n``: chance ``S_2 = (1 + 1/(n-1))/2`` (self always shared), and
    chance ``S_{n//2}`` is about the same; compare against :func:`chance_knn_overlap` or
    :func:`permutation_null_S`, not against 0.
    """
    curve = knn_overlap_curve(P, Q, metric, include_self)
    k_min, k_max = _k_range(len(curve), k_min, k_max, len(P))
    S, k_star = _summarise(curve, k_min, k_max)
    return TopoResult(S=S, k_star=k_star, curve=curve, k_range=(k_min, k_max))


def chance_knn_overlap(n: int, include_self: bool = True) -> np.ndarray:
    """Expected ``S_k`` for independent clouds of ``n`` points. Self included (k = 1..n): self is shared and
    the other ``k-1`` neighbours are random subsets of the ``n-1`` others, so
    ``E[S_k] = (1 + (k-1)^2/(n-1)) / k``. Self excluded (k = 1..n-1): two random k-subsets of the ``n-1``
    others share ``k^2/(n-1)`` on average (hypergeometric mean), so ``E[S_k] = k / (n-1)``."""
    if n < 2:
        raise ValueError(f"chance_knn_overlap needs n >= 2, got n={n}")
    if not include_self:
        return np.arange(1, n, dtype=np.float64) / (n - 1)
    k = np.arange(1, n + 1, dtype=np.float64)
    return (1.0 + (k - 1) ** 2 / (n - 1)) / k


def permutation_null_S(P, Q, n_perm: int = 200, seed: int = 0, k_min: int = 2,
                       k_max: int | None = None, metric: str = "cosine", include_self: bool = True) -> np.ndarray:
    """Null distribution of ``S``: ``S(P, Q[perm])`` for ``n_perm`` random row permutations. Its mean is the
    chance level of ``S`` itself (the max over the k window), which is above the analytic chance curve at any
    single k.

    Q's ranks are computed once and permuted (``rank[perm][:, perm]``), equivalent to re-sorting
    except for how exact distance ties are broken.
    """
    P, Q = _check_pair(P, Q)
    rank_p, rank_q = neighbour_ranks(P, metric), neighbour_ranks(Q, metric)
    return _null_from_ranks(rank_p, rank_q, n_perm, seed, k_min, k_max, include_self)


def _null_from_ranks(rank_p, rank_q, n_perm, seed, k_min, k_max, include_self) -> np.ndarray:
    n = len(rank_p)
    k_min, k_max = _k_range(n if include_self else n - 1, k_min, k_max, n)
    rng = np.random.default_rng(seed)
    out = np.empty(n_perm)
    for b in range(n_perm):
        perm = rng.permutation(n)
        out[b] = _summarise(_curve_from_ranks(rank_p, rank_q[perm][:, perm], include_self), k_min, k_max)[0]
    return out


def permutation_p_value(observed: float, null) -> float:
    """One-sided p-value ``(1 + #(null >= observed)) / (1 + len(null))``."""
    null = np.asarray(null, dtype=np.float64).ravel()
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


@dataclass(frozen=True)
class TopoSummary:
    """``S = max_{k in k_range} S_k`` with what it takes to read it.

    ``chance``: mean of the permutation null of ``S`` (the max statistic over the same window), ``p``: its
    one-sided permutation p-value; ``chance_at_k``: the analytic chance curve at ``k_star`` (lower than
    ``chance``: it ignores the maximisation). ``on_edge``: ``k_star`` is ``k_min`` or ``k_max``, i.e. the maximum
    is set by the window, not by the data. ``excess = max_k (S_k - chance_k)`` over *every* k (attained at
    ``excess_k``) and ``area = mean_k (S_k - chance_k)`` are edge-free: both ends of the full k range are at chance
    (``S_1 = S_n = 1`` with self included), so no window is needed. ``curve[k-1] = S_k``, ``chance_curve`` alike.
    """
    S: float
    k_star: int
    k_range: tuple[int, int]
    on_edge: bool
    chance: float
    p: float
    chance_at_k: float
    excess: float
    excess_k: int
    area: float
    include_self: bool
    curve: np.ndarray
    chance_curve: np.ndarray

    def as_dict(self, name: str) -> dict:
        """The flat results-table layout: ``name`` (= S), ``name_k``, ``name_k_edge``, ``name_chance``, ...,
        curves as lists."""
        return {name: self.S, f"{name}_k": self.k_star, f"{name}_k_edge": self.on_edge,
                f"{name}_chance": self.chance, f"{name}_p": self.p, f"{name}_chance_at_k": self.chance_at_k,
                f"{name}_excess": self.excess, f"{name}_excess_k": self.excess_k, f"{name}_area": self.area,
                f"{name}_curve": [float(v) for v in self.curve],
                f"{name}_chance_curve": [float(v) for v in self.chance_curve]}


def excess_over_chance(curve, include_self: bool = True) -> tuple[float, int, float]:
    """``(max_k (S_k - chance_k), its first k, mean_k (S_k - chance_k))`` of a full curve."""
    curve = np.asarray(curve, dtype=np.float64)
    n = len(curve) if include_self else len(curve) + 1
    ex = curve - chance_knn_overlap(n, include_self)
    j = int(np.argmax(ex))
    return float(ex[j]), j + 1, float(ex.mean())


def topo_summary(P, Q, k_min: int = 2, k_max: int | None = None, n_perm: int = 200, seed: int = 0,
                 metric: str = "cosine", include_self: bool = True) -> TopoSummary:
    """:class:`TopoSummary` of the paired clouds ``P``, ``Q`` (``n_perm`` permutations for the chance level)."""
    P, Q = _check_pair(P, Q)
    rank_p, rank_q = neighbour_ranks(P, metric), neighbour_ranks(Q, metric)
    curve = _curve_from_ranks(rank_p, rank_q, include_self)
    k_lo, k_hi = _k_range(len(curve), k_min, k_max, len(P))
    S, k_star = _summarise(curve, k_lo, k_hi)
    null = _null_from_ranks(rank_p, rank_q, n_perm, seed, k_lo, k_hi, include_self)
    chance_curve = chance_knn_overlap(len(P), include_self)
    excess, excess_k, area = excess_over_chance(curve, include_self)
    return TopoSummary(S=S, k_star=k_star, k_range=(k_lo, k_hi), on_edge=k_star in (k_lo, k_hi),
                       chance=float(null.mean()), p=permutation_p_value(S, null),
                       chance_at_k=float(chance_curve[k_star - 1]), excess=excess, excess_k=excess_k, area=area,
                       include_self=include_self, curve=curve, chance_curve=chance_curve)


#: result-table name -> (first cloud, second cloud) of the paper's Table 3 and the unit of its points.
TOPO_PAIRS = {"topo_xa_Ea": ("x_a", "E_a", "clips"), "topo_xt_Et": ("x_t", "E_t", "labels"),
              "topo_Ea_Et": ("E_a", "E_t", "labels")}


def topo_clouds(sel: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The paired clouds of each Table-3 entry: ``x_a`` vs ``E_a`` per clip (both exist per clip, as in the
    paper), ``x_t`` vs ``E_t`` per label, and ``E_a`` vs ``E_t`` on label means of ``E_a`` (the text side has
    one point per label, so audio must be summarised per label to be paired with it)."""
    mE_a, _ = label_means(sel["E_a"], sel["y"])
    return {"topo_xa_Ea": (np.asarray(sel["x_a"], float), np.asarray(sel["E_a"], float)),
            "topo_xt_Et": (np.asarray(sel["x_t"], float), np.asarray(sel["E_t"], float)),
            "topo_Ea_Et": (mE_a, np.asarray(sel["E_t"], float))}


def table_metrics(sel: dict, k_min: int = 2, k_max: int | None = None, n_perm: int = 200, seed: int = 0,
                  include_self: bool = True) -> dict:
    """Every Table-1/2/3 number of one model, flat: what ``evaluation.run_metrics`` should return.

    ``sel`` is the evaluation selection (``x_a``, ``E_a``, ``y`` = row of each clip's label in ``E_t``, ``x_t``,
    ``E_t``; :func:`clap_lib.pipeline.evaluation.eval_selection`). Keys: ``accuracy``, ``random_guess``, ``n_eval_clips``,
    ``n_classes``, ``sil_x_a``, ``sil_E_a`` and, for each of ``topo_xa_Ea`` (clips), ``topo_xt_Et`` and
    ``topo_Ea_Et`` (labels), the keys of :meth:`TopoSummary.as_dict`. ``k_max=None`` is ``n // 2`` of each
    cloud; a fixed ``k_max`` is cut to ``n // 2`` of a smaller cloud (:func:`cap_k_max`).
    """
    x_a, E_a, E_t = np.asarray(sel["x_a"], float), np.asarray(sel["E_a"], float), np.asarray(sel["E_t"], float)
    y = np.asarray(sel["y"])
    out = {"accuracy": zero_shot_accuracy(E_a, E_t, y), "random_guess": 1 / len(E_t),
           "n_eval_clips": int(len(y)), "n_classes": int(len(E_t)),
           "sil_x_a": silhouette(x_a, y), "sil_E_a": silhouette(E_a, y)}
    for name, (P, Q) in topo_clouds(sel).items():
        out |= topo_summary(P, Q, k_min, cap_k_max(k_max, len(P), k_min), n_perm, seed,
                            include_self=include_self).as_dict(name)
    return out


def cap_k_max(k_max: int | None, n: int, k_min: int = 2) -> int | None:
    """A fixed ``k_max`` applied to a cloud of ``n`` points: at most ``max(n // 2, k_min)``, the default window's
    edge, because windows reaching ``k = n`` read the trivial ``S_n = 1`` (clip and label clouds differ in
    size by the clips per class, so one configured ``k_max`` must work for both)."""
    return None if k_max is None else min(k_max, max(n // 2, k_min))


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
