"""The paper's five claims, evaluated by code on a results table; every verdict carries its sub-verdicts.

Input: the grid's ``results.csv`` layout -- one row per (pretraining, training) combination with ``accuracy``,
``sil_x_a``, ``sil_E_a``, ``topo_xa_Ea``, ``topo_xt_Et``, ``topo_Ea_Et`` (``random_guess`` optional) -- optionally
with interval columns ``<metric>_lo`` / ``<metric>_hi`` (e.g. from :func:`clap_lib.analysis.uncertainty.metric_intervals`,
including the paired ``sil_diff`` = sil_x_a - sil_E_a) and optionally several rows per combination (a ``seed``
column, one row per trained model). Training levels: ``dirty``, ``clean`` and, beyond the paper, ``strict``.

**Estimate of a combination.** ``value`` = mean over its rows (seeds). Interval: one row -> its
``<metric>_lo/_hi`` if present, else none (a point); several rows -> the interval of the mean over seeds *and*
test clips of :func:`clap_lib.analysis.uncertainty.combine_seeds` (t interval over seeds, in quadrature with the mean
per-seed interval half-width when the rows carry intervals).

**Comparison** ``a >= b`` (or ``a > b``) of two estimates gives a tri-state:
  * both points: 'holds' or 'fails' by the inequality;
  * any interval (a point counts as ``[v, v]``): 'holds' if ``a.lo >= b.hi`` (``>`` for strict), 'fails' if
    ``a.hi < b.lo`` (``<=`` for strict), else 'inconclusive' (the intervals overlap).
  Overlap of two marginal 95% intervals is a conservative test; claim 3 uses the paired ``sil_diff`` interval
  when the table has one ('holds' if ``lo >= 0``, 'fails' if ``hi < 0``).

**Aggregation** over sub-verdicts: 'fails' if any fails, 'holds' if all hold, else 'inconclusive'.
Every :class:`Claim` carries its sub-verdicts as ``parts`` (:class:`Part`: name, verdict, the numbers compared,
and whether it enters the verdict); :func:`parts_table` renders them.

The five claims and their exact definitions (``alpha`` = 0.05 by default):

1. *Accuracy falls as leakage is removed*, from the training data **and** from the pretraining, each factor
   tested on its own: within each pretraining, training dirty > clean (one sub-verdict per pretraining); within
   each training, pretraining dirty > clean > none (two per training: dirty > clean, clean > none). Strict
   comparisons of the combination estimates. Factor verdict = aggregate of its sub-verdicts; claim verdict =
   aggregate of the two factors (a factor with no comparison is 'inconclusive'). With ``strict`` present, the
   sub-verdicts "training clean > strict" are shown (``in_verdict=False``): that level is beyond the paper's
   claim. There is no total leakage order to rank against: dirty-pretraining/clean-training and
   clean-pretraining/dirty-training are incomparable (the paper's Table 1 has 0.48 < 0.61, against any order
   that puts pretraining leakage first), so the numbers report agreement with the *partial* order only
   (:func:`leakage_pairs`): concordant / discordant pairs and ``partial_order_tau = (C - D) / pairs``.
2. *Accuracy correlates with the silhouette of E_a.* Pearson r over the **combination means** (n = 6, or 9
   with ``strict``; rows of one combination are seeds of one condition, not independent conditions) with a
   two-sided permutation p-value over combinations (exact, all n! orderings, for n <= 9): 'holds' if r > 0 and p_perm < alpha; 'fails' if r <= 0;
   'inconclusive' if r > 0 but p_perm >= alpha, or r undefined (a constant column).
3. *The silhouette of x_a is at least that of E_a* in every combination (one sub-verdict per combination).
4. *topo(x_a, E_a) and topo(x_t, E_t) both exceed topo(E_a, E_t)* in every combination (two strict
   comparisons per combination).
5. *topo(E_a, E_t) correlates with log accuracy.* As claim 2 with x = log(max(accuracy, 1e-6)) and
   y = topo_Ea_Et, on combination means (the log of each combination's mean accuracy).

A claim whose columns or combinations are missing is 'inconclusive', with the reason in ``detail``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from clap_lib.analysis.uncertainty import combine_seeds, correlation_report
from clap_lib.config.levels import PAPER_TRAININGS, PRETRAININGS, TRAININGS

Verdict = Literal["holds", "fails", "inconclusive"]

# Leakage levels (higher = more leakage), from the axis names in levels.py.
PRETRAIN_LEVEL = {p: len(PRETRAININGS) - 1 - i for i, p in enumerate(PRETRAININGS)}
TRAIN_LEVEL = {t: len(TRAININGS) - 1 - i for i, t in enumerate(TRAININGS)}
#: the paper's six combinations in its tables' row order -- a display order, not a ranking: no verdict or
#: statistic depends on it (claim 1 uses the partial order of :func:`leakage_pairs`).
LEAKAGE_ORDER: tuple[tuple[str, str], ...] = tuple((p, t) for p in PRETRAININGS for t in PAPER_TRAININGS)
#: every combination, paper's first, then the ``strict`` training level beyond the paper.
COMBINATION_ORDER: tuple[tuple[str, str], ...] = LEAKAGE_ORDER + tuple(
    (p, t) for p in PRETRAININGS for t in TRAININGS if t not in PAPER_TRAININGS)


@dataclass(frozen=True)
class Part:
    """One sub-verdict of a claim: what was compared (``name``), the verdict, the numbers (``detail``) and
    whether it enters the claim's verdict (False for comparisons beyond the paper, shown for information)."""
    name: str
    verdict: Verdict
    detail: str = ""
    in_verdict: bool = True


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, its numbers on this results table and a verdict computed by code from
    ``parts`` (its sub-verdicts)."""
    id: int
    statement: str
    paper_says: str
    numbers: dict = field(default_factory=dict)
    verdict: Verdict = "inconclusive"
    detail: str = ""
    parts: tuple[Part, ...] = ()


@dataclass(frozen=True)
class Estimate:
    """A combination's value of one metric; ``lo``/``hi`` are None for a single point estimate."""
    value: float
    lo: float | None = None
    hi: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None

    def bounds(self) -> tuple[float, float]:
        return (self.lo, self.hi) if self.has_interval else (self.value, self.value)

    def __str__(self) -> str:
        return f"{self.value:.3f}" + (f" [{self.lo:.3f}, {self.hi:.3f}]" if self.has_interval else "")


# ----------------------------------------------------------------------------- building blocks

def _combo(p: str, t: str) -> str:
    return f"{p}/{t}"


def _rows(df: pd.DataFrame, p: str, t: str) -> pd.DataFrame:
    return df[(df["pretraining"] == p) & (df["training"] == t)]


def estimate(rows: pd.DataFrame, metric: str, level: float = 0.95) -> Estimate | None:
    """The combination's :class:`Estimate` of ``metric`` from its rows (module docstring); None if no value."""
    if metric not in rows.columns:
        return None
    vals = rows[metric].to_numpy(dtype=float)
    if not np.isfinite(vals).any():
        return None
    lo_c, hi_c = f"{metric}_lo", f"{metric}_hi"
    has_iv = lo_c in rows.columns and hi_c in rows.columns
    mean, lo, hi = combine_seeds(vals, rows[lo_c] if has_iv else None, rows[hi_c] if has_iv else None, level)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Estimate(mean)
    return Estimate(mean, lo, hi)


def compare(a: Estimate, b: Estimate, strict: bool = False) -> Verdict:
    """Tri-state ``a >= b`` (``a > b`` if strict): decided by points, or by disjoint intervals when any."""
    if not (a.has_interval or b.has_interval):
        return "holds" if (a.value > b.value if strict else a.value >= b.value) else "fails"
    (a_lo, a_hi), (b_lo, b_hi) = a.bounds(), b.bounds()
    if (a_lo > b_hi) if strict else (a_lo >= b_hi):
        return "holds"
    if (a_hi <= b_lo) if strict else (a_hi < b_lo):
        return "fails"
    return "inconclusive"


def _sign_verdict(d: Estimate) -> Verdict:
    """Tri-state ``d >= 0`` for a paired difference."""
    return compare(d, Estimate(0.0))


def aggregate(verdicts) -> Verdict:
    """'fails' if any fails, 'holds' if all hold (and there is at least one), else 'inconclusive'."""
    verdicts = list(verdicts)
    if any(v == "fails" for v in verdicts):
        return "fails"
    if verdicts and all(v == "holds" for v in verdicts):
        return "holds"
    return "inconclusive"


def leakage_pairs(combos) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(leakier, cleaner) pairs of the leakage partial order among the given (pretraining, training) combos:
    A is leakier than B if it is at least as leaky in both factors and strictly in one."""
    combos = list(combos)
    out = []
    for a in combos:
        for b in combos:
            dp = PRETRAIN_LEVEL[a[0]] - PRETRAIN_LEVEL[b[0]]
            dt = TRAIN_LEVEL[a[1]] - TRAIN_LEVEL[b[1]]
            if dp >= 0 and dt >= 0 and (dp, dt) != (0, 0):
                out.append((a, b))
    return out


def _present_combos(df: pd.DataFrame) -> list[tuple[str, str]]:
    seen = {(p, t) for p, t in zip(df["pretraining"], df["training"])}
    return [c for c in COMBINATION_ORDER if c in seen]


def combination_means(df: pd.DataFrame, cols) -> pd.DataFrame:
    """One row per combination (in :data:`COMBINATION_ORDER`): the mean over its rows (seeds) of each of
    ``cols``, and ``n_rows``. The unit of the correlation claims."""
    g = df.groupby(["pretraining", "training"], sort=False)
    out = g[list(cols)].mean().join(g.size().rename("n_rows"))
    order = [c for c in COMBINATION_ORDER if c in out.index]
    return out.loc[order].reset_index()


def _missing(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in ["pretraining", "training", *cols] if c not in df.columns]


def _inconclusive(cid: int, statement: str, paper: str, why: str, numbers: dict | None = None) -> Claim:
    return Claim(cid, statement, paper, numbers or {}, "inconclusive", why)


# ----------------------------------------------------------------------------- the claims

S1 = ("Zero-shot accuracy falls as leakage is removed from the CLAP training data (within each pretraining) and "
      "from the audio pretraining (within each training).")
P1 = ("Table 1: accuracy on ESC-50 is highest with dirty pretraining and dirty training, drops when the "
      "training data or the pretraining is cleaned, and is lowest (near chance) without audio pretraining.")
S2 = "Zero-shot accuracy correlates positively with the silhouette of E_a."
P2 = ("Tables 1-2: across the six combinations accuracy follows the class separability (cosine silhouette) "
      "of the projected audio embeddings E_a, reported as a positive Pearson correlation.")
S3 = "The silhouette of x_a is at least that of E_a in every combination."
P3 = ("Table 2 / Figure 4: the projection does not create class clusters; the separability of E_a is "
      "inherited from the audio backbone x_a.")
S4 = "topo(x_a, E_a) and topo(x_t, E_t) both exceed topo(E_a, E_t) in every combination."
P4 = ("Table 3: each projection preserves the neighbourhood structure of its backbone, while the label "
      "neighbourhoods of the audio and text projections agree much less.")
S5 = "topo(E_a, E_t) correlates positively with log zero-shot accuracy."
P5 = "Table 3 vs Table 1: the topological similarity of E_a and E_t follows the logarithm of the accuracy."


def _chain(levels: tuple[str, ...], present) -> list[tuple[str, str]]:
    """Consecutive (leakier, cleaner) pairs of the present levels, in leakage order."""
    lv = [v for v in levels if v in present]
    return list(zip(lv, lv[1:]))


def _claim1_parts(est: dict) -> list[tuple[str, Part]]:
    """(factor, sub-verdict) of every within-level comparison of claim 1."""
    parts = []
    for p in PRETRAININGS:
        for a, b in _chain(TRAININGS, {t for q, t in est if q == p}):
            beyond = a not in PAPER_TRAININGS or b not in PAPER_TRAININGS
            parts.append(("training", Part(f"training {a} > {b} | pretraining {p}",
                                           compare(est[p, a], est[p, b], strict=True),
                                           f"{est[p, a]} vs {est[p, b]}", in_verdict=not beyond)))
    for t in TRAININGS:
        for a, b in _chain(PRETRAININGS, {q for q, u in est if u == t}):
            parts.append(("pretraining", Part(f"pretraining {a} > {b} | training {t}",
                                              compare(est[a, t], est[b, t], strict=True),
                                              f"{est[a, t]} vs {est[b, t]}", in_verdict=t in PAPER_TRAININGS)))
    return parts


def claim_accuracy_falls(df: pd.DataFrame) -> Claim:
    """Claim 1 (module docstring): each factor's effect within every level of the other, as sub-verdicts."""
    if _missing(df, ["accuracy"]):
        return _inconclusive(1, S1, P1, f"missing column(s) {_missing(df, ['accuracy'])}")
    est = {c: estimate(_rows(df, *c), "accuracy") for c in _present_combos(df)}
    est = {c: e for c, e in est.items() if e is not None}
    numbers: dict = {f"accuracy {_combo(*c)}": str(e) for c, e in est.items()}
    factor_parts = _claim1_parts(est)
    parts = tuple(p for _, p in factor_parts)
    factors: dict[str, Verdict] = {}
    for f in ("training", "pretraining"):
        vs = [p.verdict for g, p in factor_parts if g == f and p.in_verdict]
        factors[f] = aggregate(vs) if vs else "inconclusive"
        numbers[f"{f} effect"] = factors[f] if vs else "not tested (needs two levels of it)"
    verdict = aggregate(factors.values())

    # agreement with the leakage partial order (reported, not used in the verdict)
    pairs = leakage_pairs(list(est))
    conc = sum(est[a].value > est[b].value for a, b in pairs)
    disc = sum(est[a].value < est[b].value for a, b in pairs)
    numbers |= {"n_partial_order_pairs": len(pairs), "n_concordant_pairs": int(conc),
                "n_discordant_pairs": int(disc),
                "partial_order_tau": float((conc - disc) / len(pairs)) if pairs else float("nan")}
    if est:
        numbers |= {"max_combination": _combo(*max(est, key=lambda c: est[c].value)),
                    "min_combination": _combo(*min(est, key=lambda c: est[c].value))}
    counted = [p for p in parts if p.in_verdict]
    if not counted:
        return Claim(1, S1, P1, numbers, "inconclusive", "needs two levels of a factor within a level of the other",
                     parts)
    bad = [p for p in counted if p.verdict == "fails"]
    if bad:
        detail = "accuracy does not fall where leakage is removed: " + "; ".join(f"{p.name} ({p.detail})" for p in bad)
    else:
        n_hold = sum(p.verdict == "holds" for p in counted)
        detail = (f"{n_hold} of {len(counted)} within-level comparisons hold; training effect: {factors['training']}, "
                  f"pretraining effect: {factors['pretraining']}")
    return Claim(1, S1, P1, numbers, verdict, detail, parts)


def _correlation_claim(cid: int, statement: str, paper: str, x: np.ndarray, y: np.ndarray, alpha: float,
                       n_perm: int, n_boot: int, seed: int, n_rows: int) -> Claim:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return _inconclusive(cid, statement, paper, f"needs >= 3 combinations with both values, got {len(x)}")
    rep = dict(correlation_report(x, y, n_perm=n_perm, n_boot=n_boot, seed=seed)) | {"n_rows": n_rows}
    r, p_perm = rep["r"], rep["p_perm"]
    if not np.isfinite(r):
        verdict: Verdict = "inconclusive"
        detail = "correlation undefined (a constant column)"
    elif r <= 0:
        verdict, detail = "fails", f"r = {r:.3f} <= 0 (permutation p = {p_perm:.3g})"
    elif p_perm < alpha:
        verdict, detail = "holds", f"r = {r:.3f} > 0, permutation p = {p_perm:.3g} < {alpha}"
    else:
        verdict, detail = "inconclusive", f"r = {r:.3f} > 0 but permutation p = {p_perm:.3g} >= {alpha}"
    detail += f" (n = {len(x)} combination means of {n_rows} rows)"
    parts = (Part("r > 0", "holds" if np.isfinite(r) and r > 0 else ("fails" if np.isfinite(r) else "inconclusive"),
                  f"r = {r:.3f}"),
             Part(f"permutation p < {alpha}", "holds" if p_perm < alpha else "inconclusive",
                  f"p_perm = {p_perm:.3g} over {len(x)} combinations"))
    return Claim(cid, statement, paper, rep, verdict, detail, parts)


def claim_accuracy_vs_silhouette(df: pd.DataFrame, alpha: float = 0.05, n_perm: int = 10000,
                                 n_boot: int = 2000, seed: int = 0) -> Claim:
    """Claim 2 (module docstring)."""
    miss = [c for c in ("accuracy", "sil_E_a") if c not in df.columns]
    if miss:
        return _inconclusive(2, S2, P2, f"missing column(s) {miss}")
    m = combination_means(df, ["accuracy", "sil_E_a"])
    return _correlation_claim(2, S2, P2, m["sil_E_a"].to_numpy(float), m["accuracy"].to_numpy(float),
                              alpha, n_perm, n_boot, seed, len(df))


def claim_topo_vs_log_accuracy(df: pd.DataFrame, alpha: float = 0.05, n_perm: int = 10000,
                               n_boot: int = 2000, seed: int = 0) -> Claim:
    """Claim 5 (module docstring)."""
    miss = [c for c in ("accuracy", "topo_Ea_Et") if c not in df.columns]
    if miss:
        return _inconclusive(5, S5, P5, f"missing column(s) {miss}")
    m = combination_means(df, ["accuracy", "topo_Ea_Et"])
    log_acc = np.log(np.clip(m["accuracy"].to_numpy(float), 1e-6, None))
    return _correlation_claim(5, S5, P5, m["topo_Ea_Et"].to_numpy(float), log_acc, alpha, n_perm, n_boot, seed,
                              len(df))


def _per_combination(df: pd.DataFrame, cid: int, statement: str, paper: str, checks) -> Claim:
    """Aggregate comparisons over combinations; ``checks(rows) -> list[(label, verdict, text)] | None``."""
    numbers: dict = {}
    parts: list[Part] = []
    for c in _present_combos(df):
        res = checks(_rows(df, *c))
        if res is None:
            continue
        for label, v, text in res:
            numbers[f"{_combo(*c)} {label}"] = f"{text}: {v}"
            parts.append(Part(f"{_combo(*c)}: {label}", v, text))
    verdicts = [p.verdict for p in parts]
    if not verdicts:
        return _inconclusive(cid, statement, paper, "no combination has the needed values", numbers)
    counts = {k: sum(v == k for v in verdicts) for k in ("holds", "fails", "inconclusive")}
    numbers |= {f"n_{k}": n for k, n in counts.items()} | {"n_comparisons": len(verdicts)}
    verdict = aggregate(verdicts)
    detail = (f"{counts['holds']} of {len(verdicts)} comparisons hold, {counts['fails']} fail, "
              f"{counts['inconclusive']} inconclusive")
    return Claim(cid, statement, paper, numbers, verdict, detail, tuple(parts))


def claim_silhouette_backbone(df: pd.DataFrame) -> Claim:
    """Claim 3 (module docstring): paired ``sil_diff`` interval when present, else compare the estimates."""
    if _missing(df, ["sil_x_a", "sil_E_a"]):
        return _inconclusive(3, S3, P3, f"missing column(s) {_missing(df, ['sil_x_a', 'sil_E_a'])}")
    paired = {"sil_diff", "sil_diff_lo", "sil_diff_hi"} <= set(df.columns)

    def checks(rows):
        xa, Ea = estimate(rows, "sil_x_a"), estimate(rows, "sil_E_a")
        if xa is None or Ea is None:
            return None
        d = estimate(rows, "sil_diff") if paired else None
        if d is not None and d.has_interval:
            return [("sil_x_a >= sil_E_a", _sign_verdict(d), f"{xa} vs {Ea}, paired diff {d}")]
        return [("sil_x_a >= sil_E_a", compare(xa, Ea), f"{xa} vs {Ea}")]
    return _per_combination(df, 3, S3, P3, checks)


def claim_topology(df: pd.DataFrame) -> Claim:
    """Claim 4 (module docstring)."""
    cols = ["topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]
    if _missing(df, cols):
        return _inconclusive(4, S4, P4, f"missing column(s) {_missing(df, cols)}")

    def checks(rows):
        e = {c: estimate(rows, c) for c in cols}
        if any(v is None for v in e.values()):
            return None
        return [(f"{c} > topo_Ea_Et", compare(e[c], e["topo_Ea_Et"], strict=True), f"{e[c]} vs {e['topo_Ea_Et']}")
                for c in ("topo_xa_Ea", "topo_xt_Et")]
    return _per_combination(df, 4, S4, P4, checks)


def evaluate_claims(results: pd.DataFrame, alpha: float = 0.05, n_perm: int = 10000, n_boot: int = 2000,
                    seed: int = 0) -> list[Claim]:
    """The five claims, in the paper's order, evaluated on ``results`` (module docstring)."""
    unknown = sorted({p for p in results.get("pretraining", []) if p not in PRETRAIN_LEVEL}
                     | {t for t in results.get("training", []) if t not in TRAIN_LEVEL})
    if unknown:
        raise ValueError(f"unknown pretraining/training value(s) {unknown}; allowed: "
                         f"{sorted(PRETRAIN_LEVEL)} / {sorted(TRAIN_LEVEL)}")
    return [claim_accuracy_falls(results),
            claim_accuracy_vs_silhouette(results, alpha, n_perm, n_boot, seed),
            claim_silhouette_backbone(results),
            claim_topology(results),
            claim_topo_vs_log_accuracy(results, alpha, n_perm, n_boot, seed)]
