"""The paper's five claims, evaluated by code on a results table.

Input: the grid's ``results.csv`` layout -- one row per (pretraining, training) combination with ``accuracy``,
``sil_x_a``, ``sil_E_a``, ``topo_xa_Ea``, ``topo_xt_Et``, ``topo_Ea_Et`` (``random_guess`` optional) -- optionally
with interval columns ``<metric>_lo`` / ``<metric>_hi`` (e.g. from :func:`clap_lib.uncertainty.metric_intervals`,
including the paired ``sil_diff`` = sil_x_a - sil_E_a) and optionally several rows per combination (a ``seed``
column, one row per trained model).

**Estimate of a combination.** ``value`` = mean over its rows. Interval: when ``<metric>_lo/_hi`` are present,
the envelope ``[min lo, max hi]`` over the rows; else, with several rows, the range ``[min, max]`` over seeds;
else none (a point estimate).

**Comparison** ``a >= b`` (or ``a > b``) of two estimates gives a tri-state:
  * both points: 'holds' or 'fails' by the inequality;
  * any interval (a point counts as ``[v, v]``): 'holds' if ``a.lo >= b.hi`` (``>`` for strict), 'fails' if
    ``a.hi < b.lo`` (``<=`` for strict), else 'inconclusive' (the intervals overlap).
  Overlap of two marginal 95% intervals is a conservative test; claim 3 uses the paired ``sil_diff`` interval
  when the table has one ('holds' if ``lo >= 0``, 'fails' if ``hi < 0``).

**Aggregation** over several comparisons ("in every combination"): 'fails' if any fails, 'holds' if all hold,
else 'inconclusive'.

The five claims and their exact definitions (``alpha`` = 0.05 by default):

1. *Accuracy falls as leakage is removed.* Leakage partial order: pretraining dirty > clean > none, training
   dirty > clean; combination A is leakier than B if it is at least as leaky in both factors and strictly in
   one (12 comparable pairs out of 15; dirty/clean vs clean/dirty, dirty/clean vs none/dirty and clean/clean
   vs none/dirty are not comparable). A pair is *reversed* if the cleaner combination is strictly above the
   leakier one (decisively, i.e. intervals disjoint, when intervals exist). Verdict: 'fails' if any pair is
   reversed or dirty/dirty is not strictly above none/clean; 'holds' if no pair is reversed and dirty/dirty >
   none/clean decisively; 'inconclusive' otherwise (no reversal, but the overall drop is within the
   intervals). So with point estimates 'holds' means accuracy is monotone non-increasing along the partial
   order with a positive overall drop (which makes dirty/dirty the maximum and none/clean the minimum).
   Reported alongside (not used in the verdict): Kendall tau and Spearman rho of accuracy against the total
   order dirty/dirty > dirty/clean > clean/dirty > clean/clean > none/dirty > none/clean (pretraining leakage
   ranked above training leakage), and the fraction of concordant partial-order pairs.
2. *Accuracy correlates with the silhouette of E_a.* Pearson r over all rows (one per trained model) with a
   permutation p-value: 'holds' if r > 0 and p_perm < alpha; 'fails' if r <= 0; 'inconclusive' if r > 0 but
   p_perm >= alpha, or r undefined (a constant column).
3. *The silhouette of x_a is at least that of E_a* in every combination (comparison ``sil_x_a >= sil_E_a``,
   aggregated over combinations).
4. *topo(x_a, E_a) and topo(x_t, E_t) both exceed topo(E_a, E_t)* in every combination (two strict
   comparisons per combination, aggregated).
5. *topo(E_a, E_t) correlates with log accuracy.* As claim 2 with x = log(max(accuracy, 1e-6)) and
   y = topo_Ea_Et.

A claim whose columns or combinations are missing is 'inconclusive', with the reason in ``detail``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from .uncertainty import correlation_report

Verdict = Literal["holds", "fails", "inconclusive"]
__all__ = ["Claim", "Estimate", "Verdict", "LEAKAGE_ORDER", "PRETRAIN_LEVEL", "TRAIN_LEVEL", "estimate",
           "compare", "aggregate", "leakage_pairs", "claim_accuracy_falls", "claim_accuracy_vs_silhouette",
           "claim_silhouette_backbone", "claim_topology", "claim_topo_vs_log_accuracy", "evaluate_claims",
           "claims_table"]

PRETRAIN_LEVEL = {"dirty": 2, "clean": 1, "none": 0}
TRAIN_LEVEL = {"dirty": 1, "clean": 0}
#: total leakage order used for the rank correlations of claim 1 (most leakage first).
LEAKAGE_ORDER: tuple[tuple[str, str], ...] = (("dirty", "dirty"), ("dirty", "clean"), ("clean", "dirty"),
                                              ("clean", "clean"), ("none", "dirty"), ("none", "clean"))


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, its numbers on this results table and a verdict computed by code."""
    id: int
    statement: str
    paper_says: str
    numbers: dict = field(default_factory=dict)
    verdict: Verdict = "inconclusive"
    detail: str = ""


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


def estimate(rows: pd.DataFrame, metric: str) -> Estimate | None:
    """The combination's :class:`Estimate` of ``metric`` from its rows (module docstring); None if no value."""
    if metric not in rows.columns:
        return None
    vals = rows[metric].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    if len(vals) == 0:
        return None
    lo_c, hi_c = f"{metric}_lo", f"{metric}_hi"
    if lo_c in rows.columns and hi_c in rows.columns:
        lo, hi = rows[lo_c].to_numpy(dtype=float), rows[hi_c].to_numpy(dtype=float)
        if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
            return Estimate(float(vals.mean()), float(lo.min()), float(hi.max()))
    if len(vals) > 1:
        return Estimate(float(vals.mean()), float(vals.min()), float(vals.max()))
    return Estimate(float(vals[0]))


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
    """(leakier, cleaner) pairs of the leakage partial order among the given (pretraining, training) combos."""
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
    return [c for c in LEAKAGE_ORDER if c in seen]


def _missing(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in ["pretraining", "training", *cols] if c not in df.columns]


def _inconclusive(cid: int, statement: str, paper: str, why: str, numbers: dict | None = None) -> Claim:
    return Claim(cid, statement, paper, numbers or {}, "inconclusive", why)


# ----------------------------------------------------------------------------- the claims

S1 = "Zero-shot accuracy falls as leakage is removed from the CLAP training data or the audio pretraining."
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


def claim_accuracy_falls(df: pd.DataFrame) -> Claim:
    """Claim 1 (module docstring)."""
    if _missing(df, ["accuracy"]):
        return _inconclusive(1, S1, P1, f"missing column(s) {_missing(df, ['accuracy'])}")
    combos = _present_combos(df)
    est = {c: estimate(_rows(df, *c), "accuracy") for c in combos}
    est = {c: e for c, e in est.items() if e is not None}
    numbers: dict = {f"accuracy {_combo(*c)}": str(e) for c, e in est.items()}
    top, bottom = ("dirty", "dirty"), ("none", "clean")
    if top not in est or bottom not in est:
        return _inconclusive(1, S1, P1, "needs both dirty/dirty and none/clean", numbers)

    pairs = leakage_pairs(list(est))
    reversed_pairs = [(a, b) for a, b in pairs if compare(est[b], est[a], strict=True) == "holds"]
    concordant = sum(est[a].value >= est[b].value for a, b in pairs)
    ranks = [len(LEAKAGE_ORDER) - LEAKAGE_ORDER.index(c) for c in est]  # higher = more leakage
    accs = [e.value for e in est.values()]
    if len(est) >= 3 and np.ptp(accs) > 0:
        tau = stats.kendalltau(ranks, accs)
        rho = stats.spearmanr(ranks, accs)
        numbers |= {"kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
                    "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}
    drop = compare(est[top], est[bottom], strict=True)
    numbers |= {"n_partial_order_pairs": len(pairs), "n_concordant_pairs": int(concordant),
                "n_reversed_pairs": len(reversed_pairs), "overall_drop": drop,
                "max_combination": _combo(*max(est, key=lambda c: est[c].value)),
                "min_combination": _combo(*min(est, key=lambda c: est[c].value))}
    if reversed_pairs:
        verdict: Verdict = "fails"
        detail = "accuracy rises when leakage is removed: " + ", ".join(
            f"{_combo(*b)} ({est[b]}) > {_combo(*a)} ({est[a]})" for a, b in reversed_pairs)
    elif drop == "fails":
        verdict, detail = "fails", f"no drop: dirty/dirty {est[top]} <= none/clean {est[bottom]}"
    elif drop == "holds":
        verdict = "holds"
        detail = (f"no reversal in {len(pairs)} partial-order pairs; dirty/dirty {est[top]} > none/clean "
                  f"{est[bottom]}")
    else:
        verdict = "inconclusive"
        detail = f"no reversal, but dirty/dirty {est[top]} and none/clean {est[bottom]} overlap"
    return Claim(1, S1, P1, numbers, verdict, detail)


def _correlation_claim(cid: int, statement: str, paper: str, x: np.ndarray, y: np.ndarray, alpha: float,
                       n_perm: int, n_boot: int, seed: int) -> Claim:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return _inconclusive(cid, statement, paper, f"needs >= 3 rows with both values, got {len(x)}")
    rep = correlation_report(x, y, n_perm=n_perm, n_boot=n_boot, seed=seed)
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
    return Claim(cid, statement, paper, dict(rep), verdict, detail)


def claim_accuracy_vs_silhouette(df: pd.DataFrame, alpha: float = 0.05, n_perm: int = 10000,
                                 n_boot: int = 2000, seed: int = 0) -> Claim:
    """Claim 2 (module docstring)."""
    miss = [c for c in ("accuracy", "sil_E_a") if c not in df.columns]
    if miss:
        return _inconclusive(2, S2, P2, f"missing column(s) {miss}")
    return _correlation_claim(2, S2, P2, df["sil_E_a"].to_numpy(float), df["accuracy"].to_numpy(float),
                              alpha, n_perm, n_boot, seed)


def claim_topo_vs_log_accuracy(df: pd.DataFrame, alpha: float = 0.05, n_perm: int = 10000,
                               n_boot: int = 2000, seed: int = 0) -> Claim:
    """Claim 5 (module docstring)."""
    miss = [c for c in ("accuracy", "topo_Ea_Et") if c not in df.columns]
    if miss:
        return _inconclusive(5, S5, P5, f"missing column(s) {miss}")
    log_acc = np.log(np.clip(df["accuracy"].to_numpy(float), 1e-6, None))
    return _correlation_claim(5, S5, P5, df["topo_Ea_Et"].to_numpy(float), log_acc, alpha, n_perm, n_boot, seed)


def _per_combination(df: pd.DataFrame, cid: int, statement: str, paper: str, checks) -> Claim:
    """Aggregate comparisons over combinations; ``checks(rows) -> list[(label, verdict, text)] | None``."""
    numbers: dict = {}
    verdicts: list[Verdict] = []
    for c in _present_combos(df):
        res = checks(_rows(df, *c))
        if res is None:
            continue
        for label, v, text in res:
            numbers[f"{_combo(*c)} {label}"] = f"{text}: {v}"
            verdicts.append(v)
    if not verdicts:
        return _inconclusive(cid, statement, paper, "no combination has the needed values", numbers)
    counts = {k: sum(v == k for v in verdicts) for k in ("holds", "fails", "inconclusive")}
    numbers |= {f"n_{k}": n for k, n in counts.items()} | {"n_comparisons": len(verdicts)}
    verdict = aggregate(verdicts)
    detail = (f"{counts['holds']} of {len(verdicts)} comparisons hold, {counts['fails']} fail, "
              f"{counts['inconclusive']} inconclusive")
    return Claim(cid, statement, paper, numbers, verdict, detail)


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


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim: id, statement, paper_says, verdict, detail and the numbers as ``key=value; ...``."""
    return pd.DataFrame([{"id": c.id, "statement": c.statement, "paper_says": c.paper_says, "verdict": c.verdict,
                          "detail": c.detail, "numbers": "; ".join(f"{k}={_fmt(v)}" for k, v in c.numbers.items())}
                         for c in claims])
