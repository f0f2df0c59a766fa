"""The sentences of the page "A ladder of backbones" (clap_lib.report.ladder): the ladder's facts for `page.glue`, and
one Markdown bullet per result, every number computed from the records and every direction claimed only where its
95 % interval excludes the null (0 for a coefficient or r, the random guess for an accuracy)."""

from __future__ import annotations

import numpy as np

from clap_lib.report.ladder import (
    CODINGS,
    DOSE_START_NETWORK,
    LEVEL_TEXT,
    LEVELS,
    MEASURES,
    SUBSETS,
    LadderAnalysis,
    LadderRecords,
    dose_networks,
)
from clap_lib.report.tables import fmt

__all__ = [
    "ladder_numbers",
    "seed_notes",
    "chance_sentences",
    "correlation_text",
    "correlation_sentences",
    "regression_sentences",
    "audit_sentence",
    "dose_sentences",
    "dimension_sentences",
]


def _join(items) -> str:
    items = [str(i) for i in items]
    return " and ".join(items) if len(items) <= 2 else ", ".join(items[:-1]) + " and " + items[-1]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"* {line}" for line in lines) + "\n" if lines else ""


def seed_notes(n_seeds: int) -> dict[str, str]:
    """The page's phrases that depend on how many seeds each network was trained with (one is the ladder's first
    cut under the main job's time budget: then no seed-to-seed spread is measured, and the text says so)."""
    if n_seeds == 1:
        return {
            "accuracy_note": "Accuracy is that of the network's one training seed, with its 95 % Wilson interval over "
            "clips; one seed per network is the ladder's first cut under the main job's time budget, so the spread "
            "between seeds is not measured here.",
            "bootstrap_note": "networks drawn with replacement (one seed each)",
            "bars_note": "one seed per network",
            "table_note": "one seed, 95 % interval over clips",
            "interval_note": "95 % interval over clips; one seed",
            "correlation_note": "networks drawn with replacement; one seed each",
        }
    return {
        "accuracy_note": "Accuracy is the mean over seeds with a 95 % interval that joins the Wilson intervals of its "
        "seeds (clips and seeds both), and the range over the seeds.",
        "bootstrap_note": "networks drawn with replacement, then each drawn network's seeds, since two seeds of one "
        "network are not two independent points",
        "bars_note": "network mean; bars: range over seeds",
        "table_note": "mean over seeds, 95 % interval over clips and seeds; seed range",
        "interval_note": "95 % interval over clips and seeds",
        "correlation_note": "networks, then seeds",
    }


def ladder_numbers(rec: LadderRecords) -> dict[str, object]:
    """The ladder's facts for the page's text (`page.glue`): networks by provenance, runs, seeds, doses, clips and
    the random guesses of the zero-shot task and of the 50-class probe."""
    n, runs = rec.networks, rec.runs
    dose = np.isfinite(n["g"].astype(float))
    seeds = sorted(set(runs["seed"]))
    return {
        "n_networks": len(n),
        "n_networks_run": runs["network"].nunique(),
        "n_published": int((n["source"].str.fullmatch(r"file:[^+\s]+") & (n["architecture"] == "crnn")).sum()),
        "n_random_crnn": int(((n["exposure"] == "none") & (n["architecture"] == "crnn") & ~dose).sum()),
        "n_dose": int(dose.sum()),
        "n_other_arch": int((n["architecture"] != "crnn").sum()),
        "other_archs": _join(sorted(set(n.loc[n["architecture"] != "crnn", "network"]))) or "none",
        "dose_starts": _join(dict.fromkeys(n.loc[dose, "start"])) or "none",
        "doses": _join(f"{g:g}" for g in sorted(set(n.loc[dose, "g"]))) or "none",
        "n_runs": len(runs),
        "n_seeds": len(seeds),
        "seeds": _join(seeds),
        "seeds_text": f"{len(seeds)} seed{'' if len(seeds) == 1 else 's'} ({_join(seeds)})",
        **seed_notes(len(seeds)),
        "n_eval_clips": int(runs["n_eval_clips"].max()),
        "chance": float(runs["chance"].mean()),
        "n_sep_clips": int(n["n_clips"].max()),
        "sep_chance": float(n["chance"].mean()),
    }


def _named(rows, most: int = 6) -> str:
    """' (net 0.1 [..], ...)' for at most `most` networks, else the lowest and the highest of them; '' for none."""
    rows = rows.sort_values("accuracy")
    cells = [f"{r.network} {fmt(r.accuracy, r.lo, r.hi)}" for r in rows.itertuples()]
    if len(cells) > most:
        return f" (from {cells[0]}, the lowest, to {cells[-1]}, the highest)"
    return f" ({_join(cells)})" if cells else ""


def chance_sentences(an: LadderAnalysis) -> str:
    """Per level: which networks' accuracy is above, below or indistinguishable from the random guess (the 95 %
    interval joined over seeds); said plainly when no network is above it."""
    lines = []
    for lv in LEVELS:
        p = an.points[an.points["level"] == lv]
        if p.empty:
            continue
        chance = float(p["chance"].mean())
        best = p.loc[p["accuracy"].idxmax()]
        head = f"{LEVEL_TEXT[lv]}, random guess {chance:.3f}"
        above, below = p[p["reading"] == "above"], p[p["reading"] == "below"]
        if above.empty and below.empty:
            line = (
                f"{head}: the accuracy interval of every one of the {len(p)} networks includes the random guess (the "
                f"highest mean, {best['network']}, is {fmt(best['accuracy'], best['lo'], best['hi'])}), so no network "
                "is distinguishable from chance"
            )
            if lv == "unseen":
                line += ": no backbone gives zero-shot ability on truly unseen classes here"
        else:
            line = f"{head}: {len(above)} of {len(p)} networks above chance" + _named(above)
            if not below.empty:
                line += f"; {len(below)} below chance ({_join(below['network'])})"
            line += f"; {len(p) - len(above) - len(below)} indistinguishable from it"
            if lv == "unseen" and above.empty:
                line += ": no backbone gives zero-shot ability on truly unseen classes here"
        lines.append(line)
    return _bullets(lines)


def _reading(lo: float, hi: float, value: float) -> str:
    if np.isnan(lo) or np.isnan(hi):
        return "its interval is undefined"
    if lo > 0 or hi < 0:
        return f"its interval excludes 0: a {'positive' if value > 0 else 'negative'} correlation"
    return "its interval includes 0: no correlation this ladder can claim"


def correlation_text(c, level: str, measure: str, subset: str) -> str:
    """One correlation of accuracy with separability across networks: Pearson and Spearman r over the network means
    with their two-level bootstrap intervals, each with what its interval allows, and what n counts."""
    what = f"{LEVEL_TEXT[level]}, {MEASURES[measure]}, {SUBSETS[subset]}"
    if isinstance(c, str):
        return f"{what}: no correlation ({c})"
    return (
        f"{what}: over n = {c.n_networks} networks, Pearson r = {fmt(c.pearson.value, c.pearson.lo, c.pearson.hi, 2)} "
        f"({_reading(c.pearson.lo, c.pearson.hi, c.pearson.value)}); Spearman r = "
        f"{fmt(c.spearman.value, c.spearman.lo, c.spearman.hi, 2)} "
        f"({_reading(c.spearman.lo, c.spearman.hi, c.spearman.value)})"
    )


def correlation_sentences(an: LadderAnalysis, subset: str | None = None) -> str:
    """Every correlation of the analysis (or those of one `subset` of networks), one bullet each."""
    return _bullets([correlation_text(c, *k) for k, c in an.correlations.items() if subset in (None, k[2])])


def _coefficient_text(term: str, coef: float, lo: float, hi: float) -> str:
    cell = fmt(coef, lo, hi)
    if term == "t_labels":
        if lo > 0 or hi < 0:
            side = "above" if coef > 0 else "below"
            return f"{cell}, interval excluding 0: more T labels go with accuracy {side} what the probe predicts"
        return f"{cell}, interval including 0: no effect of T labels beyond the probe that this ladder can claim"
    kind = term[len("exposure[T.") : -1] if term.startswith("exposure[T.") else term
    if lo > 0 or hi < 0:
        return f"{kind} {cell} ({'above' if coef > 0 else 'below'} none at equal probe)"
    return f"{kind} {cell} (not distinguishable from none at equal probe)"


def regression_sentences(an: LadderAnalysis) -> str:
    """Per level and exposure coding: the exposure coefficient(s) of ``accuracy ~ probe + exposure`` with what their
    intervals allow, and the F-test of exposure beyond the probe."""
    lines = []
    for (lv, coding), reg in an.regressions.items():
        head = f"{LEVEL_TEXT[lv]}, {CODINGS[coding][1]}"
        if isinstance(reg, str):
            lines.append(f"{head}: no regression ({reg})")
            continue
        c = reg.coefficients.set_index("term")
        terms = "; ".join(_coefficient_text(t, *c.loc[t, ["coef", "lo", "hi"]]) for t in reg.exposure_terms)
        f_reading = (
            "exposure adds to what the probe explains"
            if reg.p < 1 - reg.level
            else "nothing exposure adds beyond the probe that this ladder can detect"
        )
        lines.append(
            f"{head} (n = {reg.n_networks} networks): {terms}; F-test of exposure p = {reg.p:.3f}, {f_reading} "
            f"(R2 {reg.r2_separability:.2f} with the probe alone, {reg.r2_full:.2f} with exposure)"
        )
    return _bullets(lines)


def audit_sentence(an: LadderAnalysis) -> str:
    """The blind audit's ranking against the known exposure: Kendall tau-b, its permutation p, what it allows."""
    if isinstance(an.audit, str):
        return f"No audit ranking: {an.audit}.\n"
    t = an.audit[1]
    how = "every order" if t.exact else f"{t.n_permutations} random orders"
    p = f"= {t.p:.3f}" if t.p >= 0.001 else "< 0.001"
    if t.p < 0.05:
        side = "more" if t.tau > 0 else "less"
        reading = f"the audit ranks the {side} exposed networks higher, beyond what a random order gives"
    else:
        reading = "no agreement with exposure beyond what a random order gives"
    return (
        f"Kendall tau-b between the audit's score and the exposure rank over n = {t.n} networks is {t.tau:.2f}, "
        f"permutation p {p} ({how}): {reading}.\n"
    )


def _apart(name: str, a: tuple, b: tuple) -> str:
    """Two (g, value, lo, hi): 'probe 0.200 [..] at g = 0 and 0.300 [..] at g = 1: higher at g = 1 (intervals
    apart)', or 'not distinguishable (intervals overlap)'."""
    (ga, va, la, ha), (gb, vb, lb, hb) = a, b
    text = f"{name} {fmt(va, la, ha)} at g = {ga:g} and {fmt(vb, lb, hb)} at g = {gb:g}"
    if lb > ha or hb < la:
        return f"{text}: {'higher' if vb > va else 'lower'} at g = {gb:g} (intervals apart)"
    return f"{text}: not distinguishable (intervals overlap)"


def dose_sentences(an: LadderAnalysis) -> str:
    """Per dose start: the probe of x_a and the accuracy at each level at the smallest and the largest g, and
    whether their intervals are apart."""
    d = dose_networks(an)
    lines = []
    for start, g in d.groupby("start", sort=False) if not d.empty else ():
        if len(g) < 2:
            continue
        a, b = g.iloc[0], g.iloc[-1]
        parts = [_apart("probe", *(tuple(r[["g", "probe", "probe_lo", "probe_hi"]]) for r in (a, b)))]
        for lv in LEVELS:
            cols = ["g", f"{lv}_accuracy", f"{lv}_lo", f"{lv}_hi"]
            if np.isfinite(a[cols[1]]) and np.isfinite(b[cols[1]]):
                parts.append(_apart(f"accuracy at {lv}", tuple(a[cols]), tuple(b[cols])))
        origin = an.networks[an.networks["network"] == DOSE_START_NETWORK.get(start, "")]
        pre = f" (untrained: probe {fmt(*origin.iloc[0][['probe', 'probe_lo', 'probe_hi']])})" if len(origin) else ""
        lines.append(f"start {start}{pre}: " + "; ".join(parts))
    return _bullets(lines)


def dimension_sentences(an: LadderAnalysis, threshold: float = 2.0) -> str:
    """The networks whose x_a is nearly one-dimensional (participation ratio below `threshold`): how many
    directions its variance spans, of how many, and what a linear probe reads from it."""
    low = an.networks[an.networks["participation_ratio"] < threshold]
    return _bullets(
        [
            f"{r.network}: the variance of its x_a spans about {r.participation_ratio:.1f} of its {r.dim:g} dimensions "
            f"(participation ratio), so its clips lie close to one line; a linear probe on it reaches accuracy "
            f"{fmt(r.probe, r.probe_lo, r.probe_hi)} over the 50 classes (random guess {r.chance:.3f})"
            for r in low.itertuples()
        ]
    )
