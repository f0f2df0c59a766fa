"""The controlled experiment's records (issue 20) in the paper's terms: the results frame that
:mod:`clap_lib.analysis.claims` reads (its five claims), claims 4 and 5 on two variants of S beside the paper's
definition, and Table 3's three S per condition. Pure functions on the records' frames.

**The frame** (:func:`claims_frame`). The paper's 2 x 3: pretraining dirty / clean / none (another backbone, such as
mn04_as, is left out) x training dirty / clean (the design's unseen, matched and dose levels are left out: the
paper has no such level). One row per (pretraining, training, seed): the seed's runs on the class splits (0: the
grid's T; 1: T and B swapped) are pooled, so that a row covers every evaluated class (all 50 ESC-50 classes when
both splits were run), as the paper's tables do; a split is never a row of its own (the two splits evaluate other
classes, so their difference is not seed-to-seed variation).

* ``accuracy``, ``sil_x_a``, ``sil_E_a``: the mean over the seed's evaluated clips of both splits (its row of the
  chapter's condition matrix, :func:`clap_lib.analysis.controlled.condition_matrix`: the clip-weighted mean of its
  runs' values), with ``<metric>_lo`` / ``<metric>_hi``, the bootstrap interval over those clips (resampled within
  their class). ``sil_x_a`` is x_a after training, the x_a that E_a is projected from (the bi-GRU may have been
  fine-tuned). ``sil_diff`` = sil_x_a - sil_E_a per clip, with its paired interval (claim 3 reads it).
* ``topo_xa_Ea``, ``topo_xt_Et``, ``topo_Ea_Et``: the mean over the seed's runs (its splits) of the records'
  ``S_xa_Ea``, ``S_xt_Et`` and ``S`` (one number per run, no clip part: no interval columns), and beside each
  ``<topo>_excess`` and ``<topo>_noself`` (:data:`TOPOLOGY_VARIANTS`).
* ``random_guess`` (the mean of the runs' chance), ``n_splits``, ``n_clips``.

On this frame :func:`clap_lib.analysis.claims.estimate` gives a combination the mean over its seeds with the t
interval over seeds in quadrature with the mean per-seed clip interval (its rule for several rows); S, with no
per-row interval, the t interval over seeds (with one seed, a point). Claims 2 and 5 correlate the six combination
means.

**Variants of S** for claims 4 and 5 (:func:`variant_claims`): the paper's S = max_k S_k with each item in its own
neighbourhood; its edge-free excess over chance, max_k (S_k - chance_k) over every k (free of the k window's edge
and of the chance level, which differs between clouds of clips and of labels); and S with each item excluded from
its own neighbourhood (consistent with the paper's printed values: with self included S_2 >= 1/2 for any two
clouds, and the paper's six S(E_a, E_t) go down to 0.38).

**Table 3** (:func:`topology_spaces`): per (pretraining, level) of the grid's levels, each of the three S as the
mean over the condition's runs (seeds x splits) with its interval over runs, as
:func:`clap_lib.analysis.controlled.topology_table` gives S(E_a, E_t) alone, beside its variants and chance levels.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from clap_lib.analysis import claims as ac
from clap_lib.analysis.controlled import GRID_LEVELS, condition_matrix, pretrainings, run_interval
from clap_lib.analysis.hierarchical import hierarchical_bootstrap
from clap_lib.config.levels import PAPER_TRAININGS, PRETRAININGS

__all__ = [
    "TOPOLOGY_COLUMNS",
    "TOPOLOGY_VARIANTS",
    "CLIP_METRICS",
    "claims_frame",
    "variant_frame",
    "variant_claims",
    "topology_spaces",
]

#: the frame's (= the grid's) names of Table 3's three S -> the controlled records' names
TOPOLOGY_COLUMNS: dict[str, str] = {"topo_xa_Ea": "S_xa_Ea", "topo_xt_Et": "S_xt_Et", "topo_Ea_Et": "S"}
#: variant -> (suffix of the records' and the frame's columns, what S then is); "" is the paper's S
TOPOLOGY_VARIANTS: dict[str, tuple[str, str]] = {
    "paper": ("", "the paper's S: max_k S_k, each item in its own neighbourhood"),
    "excess": ("_excess", "its edge-free excess over chance: max over every k of S_k - chance_k"),
    "noself": ("_noself", "S without self: max_k S_k, each item excluded from its own neighbourhood"),
}
#: per-clip metrics of the frame -> the clips.csv column(s) they are the mean of (sil_diff: the difference)
CLIP_METRICS: dict[str, tuple[str, ...]] = {
    "accuracy": ("correct",),
    "sil_x_a": ("sil_x_a",),
    "sil_E_a": ("sil_E_a",),
    "sil_diff": ("sil_x_a", "sil_E_a"),
}


def _clip_values(clips: pd.DataFrame, pretraining: str, training: str) -> dict[str, tuple]:
    """metric -> (seeds x clips matrix, class of each clip, seeds) of the condition, both splits pooled."""
    out = {}
    for metric, cols in CLIP_METRICS.items():
        ms = [condition_matrix(clips, pretraining, training, value=c) for c in cols]
        X = ms[0].X - ms[1].X if len(ms) == 2 else ms[0].X
        out[metric] = (X, ms[0].strata, ms[0].seeds, ms[0].columns)
    return out


def _topology(runs: pd.DataFrame) -> dict[str, float]:
    """The seed's mean over its runs (splits) of each S and its variants."""
    row = {}
    for topo, name in TOPOLOGY_COLUMNS.items():
        for suffix, _ in TOPOLOGY_VARIANTS.values():
            col = f"{name}{suffix}"
            row[f"{topo}{suffix}"] = float(runs[col].mean()) if col in runs.columns else np.nan
    return row


def claims_frame(runs: pd.DataFrame, clips: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The controlled records as :func:`clap_lib.analysis.claims.evaluate_claims`' input (module docstring): one row
    per (pretraining, training, seed) of the paper's 2 x 3, the seed's class splits pooled."""
    present = set(zip(runs["pretraining"], runs["level"]))
    rows = []
    for p in PRETRAININGS:
        for t in PAPER_TRAININGS:
            if (p, t) not in present:
                continue
            values = _clip_values(clips, p, t)
            _, strata, seeds, columns = values["accuracy"]
            for i, s in enumerate(seeds):
                sub = runs[(runs["pretraining"] == p) & (runs["level"] == t) & (runs["seed"] == s)]
                row = {"pretraining": p, "training": t, "seed": s}
                for metric, (X, *_) in values.items():
                    r = hierarchical_bootstrap(X[i : i + 1], n_boot=n_boot, seed=seed, strata=strata)
                    row |= {metric: r.value, f"{metric}_lo": r.lo, f"{metric}_hi": r.hi}
                row |= _topology(sub)
                row |= {"random_guess": float(sub["chance"].mean()), "n_splits": sub["split"].nunique()}
                rows.append(row | {"n_clips": len(columns)})
    return pd.DataFrame(rows)


def variant_frame(frame: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The frame with each of Table 3's three S replaced by its `variant` (:data:`TOPOLOGY_VARIANTS`)."""
    if variant not in TOPOLOGY_VARIANTS:
        raise ValueError(f"variant {variant!r}: allowed {list(TOPOLOGY_VARIANTS)}")
    suffix = TOPOLOGY_VARIANTS[variant][0]
    out = frame.copy()
    for topo in TOPOLOGY_COLUMNS:
        out[topo] = frame[f"{topo}{suffix}"] if f"{topo}{suffix}" in frame.columns else np.nan
    return out


def variant_claims(
    frame: pd.DataFrame, variant: str, alpha: float = 0.05, n_perm: int = 10000, n_boot: int = 2000, seed: int = 0
) -> list[ac.Claim]:
    """Claims 4 and 5 (:mod:`clap_lib.analysis.claims`' definitions) with S taken as `variant`; each statement says
    which S it is about."""
    f = variant_frame(frame, variant)
    found = [ac.claim_topology(f), ac.claim_topo_vs_log_accuracy(f, alpha, n_perm, n_boot, seed)]
    what = TOPOLOGY_VARIANTS[variant][1]
    return [replace(c, statement=f"{c.statement} (S taken as {what}.)") for c in found]


def topology_spaces(runs: pd.DataFrame, levels=GRID_LEVELS, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Table 3 of the controlled design (module docstring): one row per (pretraining, level) present, per S of
    :data:`TOPOLOGY_COLUMNS` ``<topo>`` (mean over runs) with ``<topo>_lo`` / ``<topo>_hi`` (percentile bootstrap
    over runs) and the means of ``<topo>_chance``, ``<topo>_excess``, ``<topo>_noself``, ``<topo>_noself_chance``;
    ``n_runs``."""
    present = set(zip(runs["pretraining"], runs["level"]))
    rows = []
    for p in pretrainings(runs):
        for lv in (lv for lv in levels if (p, lv) in present):
            sub = runs[(runs["pretraining"] == p) & (runs["level"] == lv)]
            row = {"pretraining": p, "level": lv}
            for topo, name in TOPOLOGY_COLUMNS.items():
                lo, hi = run_interval(sub[name], n_boot, seed)
                row |= {topo: float(sub[name].mean()), f"{topo}_lo": lo, f"{topo}_hi": hi}
                for v in ("_chance", "_excess", "_noself", "_noself_chance"):
                    row[f"{topo}{v}"] = float(sub[f"{name}{v}"].mean())
            rows.append(row | {"n_runs": len(sub)})
    return pd.DataFrame(rows)
