"""The sentences of the chapter "A controlled experiment": the design's numbers for `page.glue`, and one Markdown
bullet per pretraining for each result, every number computed (clap_lib.report.controlled) and every direction
claimed only where its 95 % interval excludes the null."""

from __future__ import annotations

import numpy as np

from clap_lib.analysis import controlled as ac
from clap_lib.report.controlled import (
    CORRELATIONS,
    ControlledAnalysis,
    ControlledRecords,
    difference_text,
    p_text,
    perm_p_text,
    versus_chance_text,
)
from clap_lib.report.tables import fmt

__all__ = [
    "design_numbers",
    "correlation_text",
    "unseen_sentences",
    "contrast_sentences",
    "shift_sentences",
    "dose_sentences",
    "clean_split_sentences",
    "correlation_sentences",
    "cuts_text",
    "HEADLINE_CONTRASTS",
    "headline_sentences",
]

#: the paired differences of the summary's headline: leakage at equal pair count, and data quantity
HEADLINE_CONTRASTS: tuple[str, ...] = ("clean - matched", "dirty - matched")


def _join(items) -> str:
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) <= 2 else ", ".join(items[:-1]) + " and " + items[-1]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"* {line}" for line in lines) + "\n" if lines else ""


def _share(runs, column: str, num: str, den: str) -> float:
    a, b = (runs.loc[runs["level"] == lv, column].mean() for lv in (num, den))
    return float(a / b) if b == b and b else float("nan")


def design_numbers(rec: ControlledRecords) -> dict[str, object]:
    """The design's facts for the page's text (`page.glue`): runs, seeds, doses, splits, clips, classes, d_embed,
    chance, and what the clean level keeps of dirty's pairs of T clips and of its pairs."""
    runs, clips, d = rec.runs, rec.clips, rec.design
    seeds = d.get("seeds") or sorted(set(runs["seed"]))
    dose_seeds = d.get("dose_seeds") or sorted(set(runs.loc[runs["level"] == "dose", "seed"]))
    doses = d.get("doses") or sorted(set(runs.loc[runs["level"] == "dose", "f"]))
    return {
        "n_runs": len(runs),
        "pretrainings": _join(ac.pretrainings(runs)),
        "n_pretrainings": len(ac.pretrainings(runs)),
        "n_seeds": len(seeds),
        "seeds": _join(seeds),
        "n_dose_seeds": len(dose_seeds),
        "dose_seeds": _join(dose_seeds),
        # one dose seed (the first cut the main job's time budget forces): its intervals cannot hold seed spread
        "dose_interval": "95 % intervals over clips within their class; one dose seed, so no spread between seeds"
        if len(dose_seeds) == 1
        else "95 % hierarchical intervals: seeds, then clips",
        "doses": _join(f"{f:g}" for f in doses),
        "n_splits": len(d.get("splits") or set(runs["split"])),
        "clips_per_seed": len(clips.drop_duplicates(["split", "clip"])),
        "n_classes": clips["category"].nunique(),
        "d_embed": int(d["d_embed"]) if "d_embed" in d else "not recorded",
        "chance": float(runs["chance"].mean()),
        "clean_t_share": _share(runs, "n_target_pairs", "clean", "dirty"),
        "clean_size_share": _share(runs, "n_pairs", "clean", "dirty"),
        "dirty_over_clean": 1 / _share(runs, "n_pairs", "clean", "dirty"),
    }


def unseen_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining: accuracy under `unseen` (true zero-shot) against the random guess, with its test."""
    rows = an.accuracy[an.accuracy["level"] == "unseen"]
    return _bullets(
        [
            f"pretraining {r.pretraining}: accuracy {versus_chance_text(r.value, r.lo, r.hi, r.p, r.chance, an.n_boot)}"
            for r in rows.itertuples()
        ]
    )


def contrast_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining: the paired differences of Table 1 (analysis.controlled.CONTRASTS) and what they allow."""
    lines = []
    for p, g in an.contrasts.groupby("pretraining", sort=False):
        parts = [difference_text(r.a, r.b, r.value, r.lo, r.hi, r.p, an.n_boot) for r in g.itertuples()]
        lines.append(f"pretraining {p}: " + "; ".join(parts))
    return _bullets(lines)


def shift_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining: how far fine-tuning the backbone's bi-GRU moved x_a (silhouette before / after, the median
    cosine of x_a after vs before), over its training levels."""
    lines = []
    for p, g in an.silhouettes.groupby("pretraining", sort=False):
        line = (
            f"pretraining {p}: silhouette of x_a {fmt(g['sil_x_a_before'].mean())} before and "
            f"{fmt(g['sil_x_a'].mean())} after training (means over its {len(g)} training levels)"
        )
        shift = g["x_a_shift"].dropna()
        if shift.empty:
            line += "; no run fine-tuned its backbone"
        else:
            line += f"; median cosine of x_a after vs before from {fmt(shift.min())} to {fmt(shift.max())}"
        lines.append(line)
    return _bullets(lines)


def dose_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining: accuracy at f = 0 against chance, at f = 1, and the smallest dose whose paired difference
    from f = 0 excludes 0 (or that none does)."""
    lines = []
    for p, g in an.doses.groupby("pretraining", sort=False) if not an.doses.empty else ():
        g = g.sort_values("f")
        zero, one = g.iloc[0], g.iloc[-1]
        line = (
            f"pretraining {p}: at f = 0 accuracy is "
            f"{versus_chance_text(zero['value'], zero['lo'], zero['hi'], zero['p'], zero['chance'], an.n_boot)}; "
            f"at f = 1 it is {fmt(one['value'], one['lo'], one['hi'])}"
        )
        above = g[(g["f"] > 0) & (g["diff_lo"] > 0)]
        if above.empty:
            line += "; no dose in this design differs from f = 0"
        else:
            r = above.iloc[0]
            diff = f"{fmt(r['diff_value'], r['diff_lo'], r['diff_hi'])} ({p_text(r['diff_p'], an.n_boot)})"
            line += f"; the smallest dose above f = 0 (paired difference excluding 0) is f = {r['f']:g}: {diff}"
        lines.append(line)
    return _bullets(lines)


def clean_split_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining: accuracy under clean of the classes that kept no pair and of those that kept some."""
    lines = []
    for p, g in an.clean_split.groupby("pretraining", sort=False) if not an.clean_split.empty else ():
        none_, some, diff = (g[g["group"] == k].iloc[0] for k in ac.CLEAN_GROUPS)
        lines.append(
            f"pretraining {p}: {none_['n_classes']:g} classes per seed kept no pair, accuracy "
            f"{fmt(none_['value'], none_['lo'], none_['hi'])}; {some['n_classes']:g} kept some, accuracy "
            f"{fmt(some['value'], some['lo'], some['hi'])}; "
            + difference_text("kept some", "kept none", diff["value"], diff["lo"], diff["hi"], diff["p"], an.n_boot)
        )
    return _bullets(lines)


def correlation_text(c: ac.ConditionCorrelation | None, what: str) -> str:
    """One correlation with its real weight: r over this design's condition means, the interval over seed
    resamples, a direction only when it excludes 0, and what n counts."""
    if c is None:
        return f"the correlation of {what} needs at least 3 conditions; these records have fewer"
    if np.isnan(c.r):
        return f"the correlation of {what} is undefined here (a constant over the conditions)"
    iv = f"[{c.lo:.2f}, {c.hi:.2f}] over resamples of the {c.n_seeds} seeds"
    head = f"Pearson r of {what} over the n = {c.n_conditions} condition means is {c.r:.2f}, {iv}"
    tail = f" (permutation p over conditions {perm_p_text(c.p_perm)})"
    if c.lo > 0 or c.hi < 0:
        return f"{head}, which excludes 0: a {'positive' if c.r > 0 else 'negative'} correlation{tail}"
    return f"{head}, which includes 0: no correlation this design can claim{tail}"


def correlation_sentences(an: ControlledAnalysis) -> str:
    """The paper's two correlations on this design's condition means."""
    return _bullets([correlation_text(an.correlations.get(k), v[3]) for k, v in CORRELATIONS.items()])


def cuts_text(design: dict) -> str:
    """What the stage cut for its time budget (design.json "cuts"), as bullets, or that nothing was."""
    cuts = [str(c).rstrip(".") + "." for c in design.get("cuts") or []]
    return _bullets(cuts) if cuts else "Nothing was cut for the time budget.\n"


def headline_sentences(an: ControlledAnalysis) -> str:
    """Per pretraining, the headline of the controlled design: accuracy under `unseen` (true zero-shot) against the
    random guess, and the paired differences of :data:`HEADLINE_CONTRASTS` with what each measures; every number
    with its 95 % interval, a direction only where the interval excludes the null."""
    lines = []
    for p in ac.pretrainings(an.accuracy):
        parts = [
            f"true zero-shot (unseen) {versus_chance_text(r.value, r.lo, r.hi, r.p, r.chance, an.n_boot)}"
            for r in an.accuracy[(an.accuracy["pretraining"] == p) & (an.accuracy["level"] == "unseen")].itertuples()
        ]
        if not an.contrasts.empty:
            g = an.contrasts[(an.contrasts["pretraining"] == p) & an.contrasts["contrast"].isin(HEADLINE_CONTRASTS)]
            parts += [
                f"{r.measures}: {difference_text(r.a, r.b, r.value, r.lo, r.hi, r.p, an.n_boot)}"
                for r in g.itertuples()
            ]
        if parts:
            lines.append(f"pretraining {p}: " + "; ".join(parts))
    return _bullets(lines)
