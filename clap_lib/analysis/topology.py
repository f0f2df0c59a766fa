"""Which definition of ``S = max_k S_k`` the paper can have used, and ``S`` under each definition.

The paper defines ``N_k(p_i)`` as the ``k`` nearest neighbours of ``p_i`` *including the point itself* and
``S = max_k S_k`` without stating the k range. Two facts bound what such an ``S`` can print:

* **Pigeonhole bound.** Two k-subsets of the same ``m`` indices share at least ``max(0, 2k - m)``. With self
  included both neighbourhoods also contain ``i``, so ``|N_k(p_i) & N_k(q_i)| >= max(1, 2k - n)`` and
  ``S_k >= max(1, 2k - n) / k`` for *any* two clouds; in particular ``S_2 >= 1/2``. Without self the ``k``
  neighbours come from ``n - 1`` others: ``S_k >= max(0, 2k - n + 1) / k``. ``S`` over a window is at least the
  largest bound in it (:func:`S_lower_bound`).
* The paper's six ``S(E_a, E_t)`` values are all ``<= 0.50`` (down to 0.38 with ``n = 50`` labels), below the
  bound 1/2 of any window containing ``k = 2`` with self included, so that variant cannot have produced them
  (:func:`variant_consistency` checks every variant against printed values, allowing for their rounding).

A variant is a :class:`TopoVariant` (self included or not, k window); :func:`S_variants` computes ``S``, ``k*``,
the edge flag and the permutation chance level of ``S`` under each variant for one pair of clouds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clap_lib.analysis import metrics

__all__ = [
    "TopoVariant",
    "VARIANTS",
    "S_k_lower_bound",
    "S_lower_bound",
    "null_S_random_clouds",
    "variant_consistency",
    "paper_variant_consistency",
    "S_variants",
    "PAPER_N_LABELS",
]

PAPER_N_LABELS = 50  # the paper's S(E_a, E_t) pairs the 50 ESC-50 label points


@dataclass(frozen=True)
class TopoVariant:
    """A definition of ``S``: self in ``N_k`` or not, and the window ``k_min..k_max`` (``None``: ``n // 2``)."""

    include_self: bool
    k_min: int
    k_max: int | None = None

    def __post_init__(self):
        if self.k_min < 1 or (self.k_max is not None and self.k_max < self.k_min):
            raise ValueError(f"need 1 <= k_min <= k_max; got k_min={self.k_min}, k_max={self.k_max}")

    @property
    def name(self) -> str:
        hi = "n/2" if self.k_max is None else str(self.k_max)
        return f"{'self in' if self.include_self else 'self out'}, k = {self.k_min}..{hi}"

    def window(self, n: int) -> tuple[int, int]:
        """The k window for ``n`` points (the curve has ``n`` entries with self, ``n - 1`` without)."""
        length = n if self.include_self else n - 1
        hi = max(n // 2, self.k_min) if self.k_max is None else self.k_max
        if hi > length:
            raise ValueError(f"{self.name}: k_max={hi} exceeds the {length} neighbourhood sizes of n={n} points")
        return self.k_min, hi


#: the variants the book compares: this project's default first (the paper's text, window 2..n/2).
VARIANTS: tuple[TopoVariant, ...] = (
    TopoVariant(True, 2),
    TopoVariant(True, 1),
    TopoVariant(True, 3),
    TopoVariant(True, 5),
    TopoVariant(True, 2, 10),
    TopoVariant(True, 3, 10),
    TopoVariant(True, 10, 10),
    TopoVariant(False, 1),
    TopoVariant(False, 2),
    TopoVariant(False, 5),
    TopoVariant(False, 1, 5),
    TopoVariant(False, 1, 10),
    TopoVariant(False, 10, 10),
)


def S_k_lower_bound(n: int, include_self: bool = True) -> np.ndarray:
    """``b[k-1]`` = smallest possible ``S_k`` over all pairs of clouds of ``n`` points (module docstring):
    ``max(1, 2k - n) / k`` (k = 1..n) with self, ``max(0, 2k - n + 1) / k`` (k = 1..n-1) without."""
    if n < 2:
        raise ValueError(f"need n >= 2 points, got n={n}")
    if include_self:
        k = np.arange(1, n + 1, dtype=np.float64)
        return np.maximum(1.0, 2 * k - n) / k
    k = np.arange(1, n, dtype=np.float64)
    return np.maximum(0.0, 2 * k - (n - 1)) / k


def S_lower_bound(n: int, variant: TopoVariant) -> float:
    """Smallest possible ``S = max_{k in window} S_k`` under ``variant``: the largest per-k bound in the window."""
    lo, hi = variant.window(n)
    return float(S_k_lower_bound(n, variant.include_self)[lo - 1 : hi].max())


def null_S_random_clouds(n: int, variant: TopoVariant, n_draws: int = 200, dim: int = 16, seed: int = 0) -> np.ndarray:
    """``S`` of ``n_draws`` pairs of independent Gaussian clouds (``n`` points in ``dim`` dimensions): what ``S``
    reads when the two clouds share no structure at all."""
    rng = np.random.default_rng(seed)
    lo, hi = variant.window(n)
    return np.array(
        [
            metrics.topological_similarity(
                rng.normal(size=(n, dim)), rng.normal(size=(n, dim)), lo, hi, include_self=variant.include_self
            ).S
            for _ in range(n_draws)
        ]
    )


def variant_consistency(
    values: Sequence[float],
    n: int,
    variants: Sequence[TopoVariant] = VARIANTS,
    rounding: float = 0.005,
    n_draws: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """Which variants could have printed ``values`` (S of clouds of ``n`` points, rounded to +-``rounding``).

    One row per variant: ``lower_bound`` (:func:`S_lower_bound`), ``min_printed``, ``consistent`` (every value
    could be reached: ``min_printed + rounding >= lower_bound``; a hard, data-free criterion), and for reading
    the rest: ``null_mean`` / ``null_q025`` / ``null_q975`` of ``S`` for independent random clouds
    (:func:`null_S_random_clouds`) and ``n_below_null_q025``, how many printed values lie below what unrelated
    clouds give in 97.5 % of draws (a value far below chance is possible but says the clouds are anti-aligned).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values)):
        raise ValueError(f"values must be a non-empty 1-D list of finite numbers, got {values!r}")
    rows = []
    for i, v in enumerate(variants):
        bound = S_lower_bound(n, v)
        null = null_S_random_clouds(n, v, n_draws, seed=seed + i)
        q025, q975 = np.quantile(null, [0.025, 0.975])
        rows.append(
            {
                "variant": v.name,
                "include_self": v.include_self,
                "k_min": v.window(n)[0],
                "k_max": v.window(n)[1],
                "lower_bound": bound,
                "min_printed": float(values.min()),
                "max_printed": float(values.max()),
                "consistent": bool(values.min() + rounding >= bound),
                "null_mean": float(null.mean()),
                "null_q025": float(q025),
                "null_q975": float(q975),
                "n_below_null_q025": int(np.sum(values + rounding < q025)),
            }
        )
    return pd.DataFrame(rows).set_index("variant")


def paper_variant_consistency(paper: pd.DataFrame | None = None, n_draws: int = 200, seed: int = 0) -> pd.DataFrame:
    """:func:`variant_consistency` of the paper's six printed ``S(E_a, E_t)`` (Table 3, 50 label points): the
    table the book's Section 3.2 shows. ``paper`` defaults to :func:`clap_lib.analysis.paper_tables.load`."""
    from clap_lib.analysis import paper_tables  # lazy: the loader is only needed for the paper's own numbers

    paper = paper_tables.load() if paper is None else paper
    return variant_consistency(paper["topo_Ea_Et"], PAPER_N_LABELS, n_draws=n_draws, seed=seed)


def S_variants(P, Q, variants: Sequence[TopoVariant] = VARIANTS, n_perm: int = 200, seed: int = 0) -> pd.DataFrame:
    """``S`` of the paired clouds under each variant, one row each: ``S``, ``k_star``, ``on_edge``, ``chance``
    (permutation null mean of the max statistic), ``p``, ``excess`` (edge-free, :class:`metrics.TopoSummary`)."""
    n = len(np.asarray(P))
    rows = []
    for v in variants:
        lo, hi = v.window(n)
        s = metrics.topo_summary(P, Q, lo, hi, n_perm, seed, include_self=v.include_self)
        rows.append(
            {
                "variant": v.name,
                "S": s.S,
                "k_star": s.k_star,
                "k_min": lo,
                "k_max": hi,
                "on_edge": s.on_edge,
                "chance": s.chance,
                "p": s.p,
                "S - chance": s.S - s.chance,
                "excess": s.excess,
                "excess_k": s.excess_k,
            }
        )
    return pd.DataFrame(rows).set_index("variant")
