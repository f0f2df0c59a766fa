"""The page "A ladder of backbones" (issue 21): the ladder's records (ladder.csv, one row per network; ladder_runs.csv,
one row per CLAP run) loaded from the controlled stage's folder, every statistic computed once (:func:`analyse`,
clap_lib.analysis.ladder) and shown as tables; the figures are in :mod:`clap_lib.report.ladder_figures`, the
sentences in :mod:`clap_lib.report.ladder_text`.

A network's zero-shot accuracy at a training level is the mean over its seeds; its 95 % interval joins the Wilson
score intervals of its seeds' accuracies over their evaluated clips (lowest bound to highest bound), so it holds
both the clip sampling and the spread between seeds. Separability is of x_a on all ESC-50 clips: the linear probe
with the official folds (interval over the folds), the silhouette of all clips (bootstrap interval over clips)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.analysis import ladder as al
from clap_lib.report.tables import fmt

__all__ = [
    "LadderRecords",
    "LadderAnalysis",
    "load_ladder",
    "records_for",
    "analyse",
    "wilson",
    "exposure_of_row",
    "table_networks",
    "table_correlations",
    "table_regressions",
    "table_audit",
    "table_doses",
    "dose_networks",
]

LEVELS = ("unseen", "dirty")
LEVEL_TEXT = {"unseen": "unseen (true zero-shot)", "dirty": "dirty (T captions seen: not zero-shot)"}
MEASURES = {"probe": "linear probe accuracy of x_a", "silhouette": "silhouette of x_a"}
#: the exposure codings of the regression: column of the network table -> (categorical, what it means)
CODINGS = {
    "t_labels": (False, "share of T's labels in the backbone's training"),
    "exposure": (True, "exposure kind, against none"),
}
SUBSETS = {"all": "every network", "crnn": "CRNNs only"}
#: the untrained network each dose start is (clap_lib.pipeline.ladder: the random CRNN of seed 0, or GPV-B)
DOSE_START_NETWORK = {"random": "random0", "gpv_b": "gpv_b"}
NETWORK_COLUMNS = (
    "network",
    "architecture",
    "source",
    "exposure",
    "exposure_label",
    "exposure_rank",
    "t_labels",
    "g",
    "start",
    "audit_score",
    *(f"{m}{s}" for m in ("silhouette", "probe", "nn1") for s in ("", "_lo", "_hi")),
    "chance",
    "n_clips",
    "dim",
    "participation_ratio",
)
RUN_COLUMNS = ("network", "seed", "level", "accuracy", "chance", "n_eval_clips")


@dataclass(frozen=True)
class LadderRecords:
    folder: Path
    networks: pd.DataFrame  # ladder.csv, least exposure first
    runs: pd.DataFrame  # ladder_runs.csv


def load_ladder(folder: str | Path) -> LadderRecords:
    """ladder.csv and ladder_runs.csv of the controlled stage's `folder`, checked for the columns read here."""
    d = Path(folder)
    missing = [n for n in ("ladder.csv", "ladder_runs.csv") if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"the controlled stage's folder {d} lacks {', '.join(missing)}")
    nets, runs = pd.read_csv(d / "ladder.csv"), pd.read_csv(d / "ladder_runs.csv")
    for name, t, cols in (("ladder.csv", nets, NETWORK_COLUMNS), ("ladder_runs.csv", runs, RUN_COLUMNS)):
        lacking = [c for c in cols if c not in t.columns]
        if lacking:
            raise ValueError(f"{name} lacks the columns {lacking}")
    unknown = sorted(set(runs["network"]) - set(nets["network"]))
    if unknown:
        raise ValueError(f"ladder_runs.csv has runs of networks ladder.csv does not list: {unknown[:5]}")
    order = {e: i for i, e in enumerate(al.EXPOSURES)}
    nets = nets.sort_values(["exposure_rank", "exposure"], key=lambda s: s.map(order) if s.name == "exposure" else s)
    return LadderRecords(d, nets.reset_index(drop=True), runs)


def records_for(found: dict | None) -> LadderRecords | str:
    """What `clap_lib.pipeline.controlled.controlled_for(grid_dir)` found: the ladder's records, or the one
    sentence the page shows instead."""
    if found is None:
        return "This run has no controlled experiment, which trains CLAP on the ladder's networks, so nothing is shown."
    if "skipped" in found:
        why = str(found["skipped"]).rstrip(".")
        return f"The controlled experiment, which trains CLAP on the ladder's networks, was not run here: {why}."
    d = Path(found["dir"])
    missing = [n for n in ("ladder.csv", "ladder_runs.csv") if not (d / n).is_file()]
    if missing:
        return (
            f"This run's controlled experiment has no ladder of backbones ({' and '.join(missing)} absent: its "
            "configuration did not ask for the ladder, or no network of it could be run), so nothing is shown."
        )
    return load_ladder(d)


def wilson(accuracy, n, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of a proportion `accuracy` of `n` trials (vectorised)."""
    p, n = np.asarray(accuracy, float), np.asarray(n, float)
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def exposure_of_row(row) -> al.Exposure:
    """The :class:`~clap_lib.analysis.ladder.Exposure` of a ladder.csv row (the dose g is its t_labels)."""
    return al.Exposure(row.exposure, float(row.t_labels) if row.exposure == "esc50" else None)


@dataclass(frozen=True)
class LadderAnalysis:
    networks: pd.DataFrame  # ladder.csv
    points: pd.DataFrame  # one row per (network, level): accuracy mean, seed range, interval, reading vs chance
    correlations: dict  # (level, measure, subset) -> LadderCorrelation, or the reason there is none
    regressions: dict  # (level, coding) -> ExposureRegression, or the reason there is none
    audit: tuple[pd.DataFrame, al.RankingTau] | str
    n_boot: int

    @property
    def chance(self) -> float:
        return float(self.points["chance"].mean())


def _points(rec: LadderRecords) -> pd.DataFrame:
    runs = rec.runs[rec.runs["level"].isin(LEVELS)].copy()
    runs["lo"], runs["hi"] = wilson(runs["accuracy"], runs["n_eval_clips"])
    g = runs.groupby(["network", "level"], sort=False)
    p = g.agg(
        accuracy=("accuracy", "mean"),
        seed_min=("accuracy", "min"),
        seed_max=("accuracy", "max"),
        lo=("lo", "min"),
        hi=("hi", "max"),
        chance=("chance", "mean"),
        n_seeds=("seed", "nunique"),
        n_eval_clips=("n_eval_clips", "mean"),
    ).reset_index()
    p["reading"] = np.where(
        p["lo"] > p["chance"], "above", np.where(p["hi"] < p["chance"], "below", "indistinguishable")
    )
    cols = ["network", "architecture", "exposure", "exposure_label", "probe", "silhouette"]
    return p.merge(rec.networks[cols], on="network")


def _correlation(runs: pd.DataFrame, measure: str, n_boot: int, seed: int):
    n = runs["network"].nunique()
    if n < 3:
        return f"{n} network(s) with runs: a correlation needs 3"
    try:
        return al.ladder_correlation(runs, x=measure, y="accuracy", n_boot=n_boot, seed=seed)
    except ValueError as e:
        return str(e)


def _regression(runs: pd.DataFrame, coding: str):
    categorical = CODINGS[coding][0]
    per_net = runs.groupby("network")[coding].first()
    if per_net.nunique() < 2:
        return f"every network with runs has the same {coding}: nothing to regress on"
    if categorical and "none" not in set(per_net):
        return "no network without labels (exposure none) to compare the exposure kinds against"
    try:
        ref = "none" if categorical else None
        return al.exposure_regression(runs, x="probe", exposure=coding, categorical=categorical, reference=ref)
    except ValueError as e:
        return str(e)


def analyse(rec: LadderRecords, n_boot: int = 2000, n_perm: int = 10000, seed: int = 0) -> LadderAnalysis:
    """Every number of the page, from the records: accuracy per network and level, its correlations with the
    separability of x_a (every network, and the CRNNs alone when another architecture is in), the exposure
    regressions, and the blind audit's ranking against exposure."""
    nets = rec.networks
    runs = rec.runs.merge(
        nets[["network", "architecture", "probe", "silhouette", "t_labels", "exposure"]], on="network"
    )
    subsets = ["all"] + (["crnn"] if set(nets["architecture"]) - {"crnn"} else [])
    correlations, regressions = {}, {}
    for lv in LEVELS:
        at = runs[runs["level"] == lv]
        for subset in subsets:
            part = at if subset == "all" else at[at["architecture"] == subset]
            for m in MEASURES:
                correlations[lv, m, subset] = _correlation(part, m, n_boot, seed)
        for coding in CODINGS:
            regressions[lv, coding] = _regression(at, coding)
    if len(nets) >= 3 and nets["audit_score"].nunique() > 1 and nets["exposure_rank"].nunique() > 1:
        exposures = {r.network: exposure_of_row(r) for r in nets.itertuples()}
        audit = al.audit_ranking(dict(zip(nets["network"], nets["audit_score"])), exposures, n_perm, seed)
    else:
        audit = "the audit ranking needs 3 networks or more with different scores and exposures"
    return LadderAnalysis(nets, _points(rec), correlations, regressions, audit, n_boot)


# ----------------------------------------------------------------------------------------------- tables


def _acc_cells(an: LadderAnalysis, level: str) -> tuple[dict, dict]:
    p = an.points[an.points["level"] == level].set_index("network")
    cell = {n: fmt(r.accuracy, r.lo, r.hi) for n, r in p.iterrows()}
    spread = {n: f"{r.seed_min:.3f} to {r.seed_max:.3f} ({r.n_seeds:g})" for n, r in p.iterrows()}
    return cell, spread


def table_networks(an: LadderAnalysis) -> pd.DataFrame:
    """One row per network, least exposure first: its exposure, the separability of its x_a (95 % intervals over
    folds), its participation ratio, and its accuracy at each level (95 % interval; range over its seeds, when a
    network has more than one)."""
    n = an.networks
    t = pd.DataFrame(
        {
            "architecture": n["architecture"].to_numpy(),
            "weights": n["source"].to_numpy(),
            "label exposure": n["exposure_label"].to_numpy(),
            "linear probe": [fmt(r.probe, r.probe_lo, r.probe_hi) for r in n.itertuples()],
            "silhouette": [fmt(r.silhouette, r.silhouette_lo, r.silhouette_hi) for r in n.itertuples()],
            "participation ratio (of dim)": [f"{r.participation_ratio:.1f} ({r.dim:g})" for r in n.itertuples()],
        },
        index=pd.Index(n["network"], name="network"),
    )
    several = an.points["n_seeds"].max() > 1  # one seed has no range to show
    for lv in LEVELS:
        cell, spread = _acc_cells(an, lv)
        t[f"accuracy, {lv}"] = [cell.get(k, "-") for k in t.index]
        if several:
            t[f"{lv}: seed range (seeds)"] = [spread.get(k, "-") for k in t.index]
    return t


def table_correlations(an: LadderAnalysis) -> pd.DataFrame:
    """Pearson and Spearman r of accuracy against separability over the network means, per level, measure and
    subset of networks, with the two-level bootstrap's 95 % intervals (networks, then seeds)."""
    rows = []
    for (lv, m, subset), c in an.correlations.items():
        row = {"training level": LEVEL_TEXT[lv], "separability": MEASURES[m], "networks": SUBSETS[subset]}
        if isinstance(c, str):
            rows.append(row | {"Pearson r": "-", "Spearman r": "-", "n networks": "-", "note": c})
            continue
        rows.append(
            row
            | {
                "Pearson r": fmt(c.pearson.value, c.pearson.lo, c.pearson.hi, digits=2),
                "Spearman r": fmt(c.spearman.value, c.spearman.lo, c.spearman.hi, digits=2),
                "n networks": c.n_networks,
                "note": "",
            }
        )
    t = pd.DataFrame(rows).set_index(["training level", "separability", "networks"])
    return t.drop(columns="note") if (t["note"] == "").all() else t


def _term_text(term: str) -> str:
    if term.startswith("exposure[T."):
        return f"exposure {term[len('exposure[T.') : -1]} (vs none)"
    return {"t_labels": "share of T labels"}.get(term, term)


def table_regressions(an: LadderAnalysis) -> pd.DataFrame:
    """Per level and exposure coding: each exposure coefficient of ``accuracy ~ probe + exposure`` over the network
    means (95 % t interval), the F-test of exposure beyond the probe, and the R^2 without and with exposure."""
    rows = []
    for (lv, coding), reg in an.regressions.items():
        head = {"training level": LEVEL_TEXT[lv], "exposure coded as": CODINGS[coding][1]}
        if isinstance(reg, str):
            rows.append(head | {"term": "-", "coefficient [95 % interval]": reg})
            continue
        coefs = reg.coefficients.set_index("term")
        for term in reg.exposure_terms:
            c = coefs.loc[term]
            rows.append(
                head
                | {
                    "term": _term_text(term),
                    "coefficient [95 % interval]": fmt(c["coef"], c["lo"], c["hi"]),
                    "F-test p (exposure)": f"{reg.p:.3f}",
                    "R2: probe / + exposure": f"{reg.r2_separability:.2f} / {reg.r2_full:.2f}",
                    "n networks": reg.n_networks,
                }
            )
    return pd.DataFrame(rows).set_index(["training level", "exposure coded as", "term"]).fillna("-")


def table_audit(an: LadderAnalysis) -> pd.DataFrame:
    """The networks in the blind audit's order (its silhouette of x_a, highest first) beside their exposure."""
    if isinstance(an.audit, str):
        return pd.DataFrame()
    t = an.audit[0].set_index("network")
    return t.assign(**{"audit score": t["audit score"].map("{:.3f}".format), "exposure rank": t["exposure rank"]})


def dose_networks(an: LadderAnalysis) -> pd.DataFrame:
    """The pretraining dose's networks (finite g), with their accuracy per level, by start (random first) and g."""
    d = an.networks[np.isfinite(an.networks["g"].astype(float))].copy()
    for lv in LEVELS:
        p = an.points[an.points["level"] == lv].set_index("network")
        for col in ("accuracy", "lo", "hi"):
            d[f"{lv}_{col}"] = d["network"].map(p[col])
    order = {s: i for i, s in enumerate(DOSE_START_NETWORK)}
    return d.sort_values(["start", "g"], key=lambda c: c.map(order).fillna(len(order)) if c.name == "start" else c)


def table_doses(an: LadderAnalysis) -> pd.DataFrame:
    """The pretraining dose: per start and g, the separability of x_a and the accuracy at each level; the untrained
    start first (g: '-')."""
    d = dose_networks(an)
    if d.empty:
        return pd.DataFrame()
    cells = {lv: _acc_cells(an, lv)[0] for lv in LEVELS}
    rows = []
    for start, g in d.groupby("start", sort=False):
        first = an.networks[an.networks["network"] == DOSE_START_NETWORK.get(start, "")]
        for r in pd.concat([first.assign(g=np.nan), g]).itertuples():
            row = {"start": start, "g (share of T trained on)": "-" if np.isnan(r.g) else f"{r.g:g}"}
            row |= {"network": r.network, "linear probe": fmt(r.probe, r.probe_lo, r.probe_hi)}
            row["silhouette"] = fmt(r.silhouette, r.silhouette_lo, r.silhouette_hi)
            row |= {f"accuracy, {lv}": cells[lv].get(r.network, "-") for lv in LEVELS}
            rows.append(row)
    return pd.DataFrame(rows).set_index(["start", "g (share of T trained on)"])
