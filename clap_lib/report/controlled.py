"""The chapter "A controlled experiment" (issue 20): the controlled stage's records, loaded from its folder
(runs.csv, clips.csv, classes.csv, design.json), computed once (:func:`analyse`, clap_lib.analysis.controlled) and
shown as the book's tables, the dose figure and sentences that claim no more than their intervals allow
(a direction only when the 95 % interval excludes the null)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.transforms import offset_copy

from clap_lib.analysis import controlled as ac
from clap_lib.report.tables import fmt

__all__ = [
    "ControlledRecords",
    "ControlledAnalysis",
    "load_controlled",
    "records_for",
    "analyse",
    "p_text",
    "perm_p_text",
    "versus_chance_text",
    "reading",
    "difference_text",
    "table_pairs",
    "table_accuracy",
    "table_comparisons",
    "table_silhouettes",
    "table_topology",
    "table_doses",
    "table_clean_split",
    "table_correlations",
    "figure_doses",
]

LEVEL_TEXT = {
    "dirty": "dirty (every caption)",
    "clean": "clean (the paper's rule)",
    "unseen": "unseen (no pair of a T clip)",
    "matched": "matched (dirty at clean's pair count)",
}
CORRELATIONS = {
    "acc_vs_sil_E_a": ("accuracy", "sil_E_a", False, "accuracy vs silhouette of E_a"),
    "logacc_vs_S": ("accuracy", "S", True, "log accuracy vs S(E_a, E_t)"),
}


@dataclass(frozen=True)
class ControlledRecords:
    folder: Path
    runs: pd.DataFrame
    clips: pd.DataFrame
    classes: pd.DataFrame
    design: dict


def load_controlled(folder: str | Path) -> ControlledRecords:
    """The records of the controlled stage in `folder`, checked for the columns the analysis reads."""
    d = Path(folder)
    missing = [n for n in ("runs.csv", "clips.csv", "classes.csv", "design.json") if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"the controlled stage's folder {d} lacks {', '.join(missing)}")
    runs, clips, classes = (pd.read_csv(d / n) for n in ("runs.csv", "clips.csv", "classes.csv"))
    ac.check_records(runs, clips, classes)
    return ControlledRecords(d, runs, clips, classes, json.loads((d / "design.json").read_text()))


def records_for(found: dict | None) -> ControlledRecords | str:
    """What `clap_lib.pipeline.controlled.controlled_for(grid_dir)` found: its records, or the one sentence the page
    shows instead (no such stage in this run, or the stage's reason for skipping)."""
    if found is None:
        return (
            "This run has no controlled experiment (its configuration did not ask for one), so nothing is shown here."
        )
    if "skipped" in found:
        return f"The controlled experiment was not run here: {str(found['skipped']).rstrip('.')}."
    return load_controlled(found["dir"])


@dataclass(frozen=True)
class ControlledAnalysis:
    accuracy: pd.DataFrame  # analysis.controlled.accuracy_table
    contrasts: pd.DataFrame
    silhouettes: pd.DataFrame
    topology: pd.DataFrame
    doses: pd.DataFrame  # dose_curve of every pretraining with dose runs, column `pretraining`
    clean_split: pd.DataFrame
    correlations: dict[str, ac.ConditionCorrelation | None]
    n_boot: int


def analyse(rec: ControlledRecords, n_boot: int = 2000, seed: int = 0) -> ControlledAnalysis:
    """Every number of the chapter, from the records."""
    runs, clips = rec.runs, rec.clips
    dosed = [p for p in ac.pretrainings(runs) if (runs[runs["pretraining"] == p]["level"] == "dose").any()]
    dose_seeds = rec.design.get("dose_seeds") or sorted(set(runs.loc[runs["level"] == "dose", "seed"]))
    doses = [ac.dose_curve(clips, runs, p, dose_seeds, n_boot=n_boot, seed=seed).assign(pretraining=p) for p in dosed]
    cleaned = [p for p in ac.pretrainings(runs) if ((runs["pretraining"] == p) & (runs["level"] == "clean")).any()]
    split = [ac.clean_class_split(clips, rec.classes, p, n_boot, seed) for p in cleaned]
    n_conditions = len(ac.seed_condition_means(runs, "accuracy"))
    correlations = {
        key: ac.condition_correlation(runs, a, b, log_a, n_boot=n_boot, seed=seed) if n_conditions >= 3 else None
        for key, (a, b, log_a, _) in CORRELATIONS.items()
    }
    return ControlledAnalysis(
        ac.accuracy_table(clips, runs, n_boot=n_boot, seed=seed),
        ac.contrast_table(clips, runs, n_boot, seed),
        ac.silhouette_table(clips, runs, n_boot=n_boot, seed=seed),
        ac.topology_table(runs, n_boot=n_boot, seed=seed),
        pd.concat(doses, ignore_index=True) if doses else pd.DataFrame(),
        pd.concat(split, ignore_index=True) if split else pd.DataFrame(),
        correlations,
        n_boot,
    )


# ----------------------------------------------------------------------------------------------- sentences


def p_text(p: float, n_boot: int) -> str:
    """A bootstrap p: "p = 0.400", or "p < 0.001" when no replicate reached the null (its resolution is 2 / n_boot)."""
    return f"p < {2 / n_boot:.1g}" if p == 0 else f"p = {p:.3f}"


def perm_p_text(p: float) -> str:
    """A Monte-Carlo permutation p: '0.012', or '< 0.001' below what 3 decimals show."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def versus_chance_text(value: float, lo: float, hi: float, p: float, chance: float, n_boot: int) -> str:
    """'0.050 [0.030, 0.070], not distinguishable from chance 0.040 (p = 0.400)', or 'above' / 'below chance'
    when the interval excludes it."""
    where = "above" if lo > chance else "below" if hi < chance else "not distinguishable from"
    return f"{fmt(value, lo, hi)}, {where} chance {chance:.3f} ({p_text(p, n_boot)})"


def reading(a: str, b: str, lo: float, hi: float) -> str:
    """What the 95 % interval of a - b allows: 'a above b', 'a below b' or 'a not distinguishable from b'."""
    return f"{a} above {b}" if lo > 0 else f"{a} below {b}" if hi < 0 else f"{a} not distinguishable from {b}"


def difference_text(a: str, b: str, value: float, lo: float, hi: float, p: float, n_boot: int) -> str:
    """'clean - matched = 0.020 [-0.010, 0.050] (p = 0.200): clean not distinguishable from matched', or 'clean
    above matched' / 'clean below matched' when the interval excludes 0."""
    return f"{a} - {b} = {fmt(value, lo, hi)} ({p_text(p, n_boot)}): {reading(a, b, lo, hi)}"


# ----------------------------------------------------------------------------------------------- tables


def _condition_index(t: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays(
        [t["pretraining"], t["level"].map(LEVEL_TEXT).fillna(t["level"])], names=["audio pretraining", "training data"]
    )


def table_pairs(rec: ControlledRecords) -> pd.DataFrame:
    """What each training level trains on and how long (means over its runs): pairs, pairs of T clips and their
    share of dirty's, optimizer steps, where each phase stopped (quarter-epochs) and the share with a GRU phase."""
    runs = rec.runs.assign(
        training=np.where(
            rec.runs["level"] == "dose", "dose f = " + rec.runs["f"].map("{:g}".format), rec.runs["level"]
        )
    )
    g = runs.groupby("training", sort=False)
    dirty_t = float(runs.loc[runs["level"] == "dirty", "n_target_pairs"].mean())
    t = pd.DataFrame(
        {
            "training pairs": g["n_pairs"].mean().round().astype(int),
            "pairs of T clips": g["n_target_pairs"].mean().round().astype(int),
            "share of dirty's T pairs": g["n_target_pairs"].mean() / dirty_t,
            "optimizer steps": g["n_steps"].mean().round().astype(int),
            "frozen phase: best / stop": [
                f"{b:.1f} / {s:.1f}" for b, s in zip(g["frozen_best"].mean(), g["frozen_stop"].mean())
            ],
            "GRU phase: best / stop": [
                f"{b:.1f} / {s:.1f}" for b, s in zip(g["gru_best"].mean(), g["gru_stop"].mean())
            ],
            "runs with a GRU phase": g["gru"].apply(lambda x: x.astype(bool).mean()),
            "runs": g.size(),
        }
    )
    order = [lv for lv in ac.GRID_LEVELS if lv in t.index] + sorted(set(t.index) - set(ac.GRID_LEVELS))
    t = t.loc[order]
    t.index = [LEVEL_TEXT.get(i, i) for i in t.index]
    t.index.name = "training data"
    return t


def table_accuracy(an: ControlledAnalysis) -> pd.DataFrame:
    """Table 1 of the controlled design: rows the training levels, columns the pretrainings, cells the accuracy
    with its hierarchical 95 % interval; last column the random guess."""
    t = an.accuracy.assign(cell=[fmt(r.value, r.lo, r.hi) for r in an.accuracy.itertuples()])
    wide = t.pivot(index="level", columns="pretraining", values="cell")
    wide = wide.loc[[lv for lv in ac.GRID_LEVELS if lv in wide.index], ac.pretrainings(an.accuracy)]
    wide["random guess"] = [fmt(float(t.loc[t["level"] == lv, "chance"].mean())) for lv in wide.index]
    wide.index = pd.Index([LEVEL_TEXT[lv] for lv in wide.index], name="training data")
    wide.columns.name = "audio pretraining"
    return wide


def _comparisons(an: ControlledAnalysis) -> pd.DataFrame:
    """The paired contrasts and unseen - chance (its interval: unseen's, shifted by chance) in one frame."""
    unseen = an.accuracy[an.accuracy["level"] == "unseen"]
    vs_chance = unseen.assign(
        contrast="unseen - chance",
        a="unseen",
        b="chance",
        measures="true zero-shot",
        value=unseen["value"] - unseen["chance"],
        lo=unseen["lo"] - unseen["chance"],
        hi=unseen["hi"] - unseen["chance"],
    )
    cols = ["pretraining", "contrast", "a", "b", "measures", "value", "lo", "hi", "p"]
    frames = [f[cols] for f in (an.contrasts, vs_chance) if not f.empty]
    if not frames:
        return pd.DataFrame(columns=cols)
    t = pd.concat(frames, ignore_index=True)
    order = {p: i for i, p in enumerate(ac.pretrainings(an.accuracy))}
    return t.sort_values("pretraining", key=lambda s: s.map(order), kind="stable")


def table_comparisons(an: ControlledAnalysis) -> pd.DataFrame:
    """The paired differences that separate leakage from data quantity, and unseen against chance: each difference
    with its 95 % interval, its p and what the interval allows."""
    t = _comparisons(an)
    return pd.DataFrame(
        {
            "measures": t["measures"].to_numpy(),
            "difference [95 % interval] (p)": [
                f"{fmt(r.value, r.lo, r.hi)} ({p_text(r.p, an.n_boot)})" for r in t.itertuples()
            ],
            "reading": [reading(r.a, r.b, r.lo, r.hi) for r in t.itertuples()],
        },
        index=pd.MultiIndex.from_arrays([t["pretraining"], t["contrast"]], names=["audio pretraining", "comparison"]),
    )


def table_silhouettes(an: ControlledAnalysis) -> pd.DataFrame:
    """Table 2: silhouette of x_a before and after training (and how far fine-tuning moved x_a) and of E_a."""
    s = an.silhouettes
    return pd.DataFrame(
        {
            "silhouette of x_a before training": s["sil_x_a_before"].map(fmt).to_numpy(),
            "silhouette of x_a after training": [fmt(r.sil_x_a, r.sil_x_a_lo, r.sil_x_a_hi) for r in s.itertuples()],
            "median cosine of x_a after vs before": s["x_a_shift"].map(fmt).to_numpy(),
            "silhouette of E_a": [fmt(r.sil_E_a, r.sil_E_a_lo, r.sil_E_a_hi) for r in s.itertuples()],
        },
        index=_condition_index(s),
    )


def table_topology(an: ControlledAnalysis) -> pd.DataFrame:
    """Table 3: S = max_k S_k(E_a, E_t), the mean over runs with its interval over runs, beside its chance level,
    its excess over chance and S with each label's self excluded."""
    t = an.topology
    return pd.DataFrame(
        {
            "S(E_a, E_t)": [fmt(r.S, r.S_lo, r.S_hi) for r in t.itertuples()],
            "chance of S": t["S_chance"].map(fmt).to_numpy(),
            "excess over chance": t["S_excess"].map(fmt).to_numpy(),
            "S without self": t["S_noself"].map(fmt).to_numpy(),
            "runs": t["n_runs"].to_numpy(),
        },
        index=_condition_index(t),
    )


def table_doses(an: ControlledAnalysis) -> pd.DataFrame:
    """The dose curves: rows f, per pretraining the accuracy and its paired difference from f = 0 (intervals)."""
    if an.doses.empty:
        return pd.DataFrame()
    d = an.doses
    cols = {}
    for p in ac.pretrainings(d):
        x = d[d["pretraining"] == p].set_index("f")
        cols[f"{p}: accuracy"] = [fmt(r.value, r.lo, r.hi) for r in x.itertuples()]
        cols[f"{p}: minus f = 0"] = [
            f"{fmt(r.diff_value, r.diff_lo, r.diff_hi)} ({p_text(r.diff_p, an.n_boot)})" for r in x.itertuples()
        ]
    f = sorted(set(d["f"]))
    t = pd.DataFrame(cols, index=pd.Index([f"{v:g}" for v in f], name="f (share of each T class's clips)"))
    t["random guess"] = [fmt(float(d.loc[d["f"] == v, "chance"].mean())) for v in f]
    return t


def table_clean_split(an: ControlledAnalysis) -> pd.DataFrame:
    """Accuracy under clean of the classes that kept no pair after the clean rule and of those that kept some."""
    if an.clean_split.empty:
        return pd.DataFrame()
    rows = {}
    for p, g in an.clean_split.groupby("pretraining", sort=False):
        none_, some, diff = (g[g["group"] == k].iloc[0] for k in ac.CLEAN_GROUPS)
        rows[p] = {
            "classes with no pair left (per seed)": f"{none_['n_classes']:g}",
            "accuracy (no pair left)": fmt(none_["value"], none_["lo"], none_["hi"]),
            "classes with pairs left (per seed)": f"{some['n_classes']:g}",
            "accuracy (pairs left)": fmt(some["value"], some["lo"], some["hi"]),
            "difference (p)": f"{fmt(diff['value'], diff['lo'], diff['hi'])} ({p_text(diff['p'], an.n_boot)})",
        }
    t = pd.DataFrame.from_dict(rows, orient="index")
    t.index.name = "audio pretraining"
    return t


def table_correlations(an: ControlledAnalysis) -> pd.DataFrame:
    """The paper's two correlations over this design's condition means, with the interval over seed resamples."""
    rows = []
    for key, c in an.correlations.items():
        if c is None:
            continue
        rows.append(
            {
                "correlation": CORRELATIONS[key][3],
                "Pearson r": fmt(c.r, digits=2),
                "95 % interval (seed resamples)": f"[{c.lo:.2f}, {c.hi:.2f}]",
                "permutation p (conditions)": perm_p_text(c.p_perm),
                "conditions": c.n_conditions,
                "seeds": c.n_seeds,
            }
        )
    return pd.DataFrame(rows).set_index("correlation") if rows else pd.DataFrame()


def figure_doses(an: ControlledAnalysis):
    """Accuracy against the training-leakage dose f per pretraining (95 % intervals), with the random guess."""
    d = an.doses
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    names = ac.pretrainings(d)
    for i, p in enumerate(names):
        x = d[d["pretraining"] == p].sort_values("f")
        yerr = np.vstack([x["value"] - x["lo"], x["hi"] - x["value"]])
        # a few points apart sideways, so that overlapping intervals stay readable
        shifted = offset_copy(ax.transData, fig=fig, x=4 * (i - (len(names) - 1) / 2), units="points")
        ax.errorbar(x["f"], x["value"], yerr=yerr, marker="o", capsize=3, label=f"pretraining {p}", transform=shifted)
    ax.axhline(float(d["chance"].mean()), color="0.4", ls="--", lw=1, label="random guess")
    f = sorted(set(d["f"]))
    ax.set_xscale("symlog", linthresh=min(v for v in f if v > 0))
    ax.set_xticks(f, [f"{v:g}" for v in f])
    ax.set_xlim(-0.2 * min(v for v in f if v > 0), 1.2)
    lo, hi = min(d["lo"].min(), d["chance"].min()), max(d["hi"].max(), d["chance"].max())
    ax.set_ylim(lo - 0.05 * (hi - lo + 0.01), hi + 0.05 * (hi - lo + 0.01))  # the shifted points do not autoscale
    ax.set_xlabel("f: share of each target class's training clips that keep their captions")
    ax.set_ylabel("accuracy on T (fold 5; zero-shot only at f = 0)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
