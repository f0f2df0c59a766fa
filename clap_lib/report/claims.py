"""The paper's claims as the book shows them: one row per claim (`claims_table`) and one per sub-verdict
(`parts_table`); the verdicts are computed in :mod:`clap_lib.analysis.claims`. `page_claims` picks the data: the
controlled experiment's records when the run has them (:mod:`clap_lib.analysis.controlled_paper`, with claims 4 and 5
also on the variants of S, `variants_table`), else the run's grid; `paper_topology_comparison` compares the paper's
printed S with the self-excluded variant only."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from clap_lib.analysis import controlled_paper
from clap_lib.analysis.claims import Claim, evaluate_claims
from clap_lib.analysis.uncertainty import seed_intervals
from clap_lib.report.artifacts import TOPO
from clap_lib.report.controlled import records_for
from clap_lib.report.tables import paper_comparison


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def claims_table(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim: id, statement, paper_says, verdict, detail, the numbers as ``key=value; ...`` and
    ``parts`` (how many sub-verdicts hold, of those in the verdict)."""

    def parts_summary(c: Claim) -> str:
        counted = [p for p in c.parts if p.in_verdict]
        return f"{sum(p.verdict == 'holds' for p in counted)}/{len(counted)} hold" if counted else ""

    return pd.DataFrame(
        [
            {
                "id": c.id,
                "statement": c.statement,
                "paper_says": c.paper_says,
                "verdict": c.verdict,
                "detail": c.detail,
                "numbers": "; ".join(f"{k}={_fmt(v)}" for k, v in c.numbers.items()),
                "parts": parts_summary(c),
            }
            for c in claims
        ]
    )


def parts_table(claims: list[Claim] | Claim) -> pd.DataFrame:
    """The sub-verdicts, one row each: ``id``, ``part``, ``verdict``, ``detail``, ``in_verdict`` (a table the
    book renders under each claim)."""
    claims = [claims] if isinstance(claims, Claim) else claims
    return pd.DataFrame(
        [
            {"id": c.id, "part": p.name, "verdict": p.verdict, "detail": p.detail, "in_verdict": p.in_verdict}
            for c in claims
            for p in c.parts
        ],
        columns=["id", "part", "verdict", "detail", "in_verdict"],
    )


# ----------------------------------------------------------------------------------------------- the claims page


@dataclass(frozen=True)
class PageClaims:
    """The claims a page shows and where they come from."""

    claims: list[Claim]  # the paper's five, S as the paper defines it
    variants: dict[str, list[Claim]]  # claims 4 and 5 per variant of S ("excess", "noself"); empty on the fallback
    source: str  # one sentence: the data every verdict comes from
    frame: pd.DataFrame | None  # the controlled design's claims frame (analysis.controlled_paper); None on the fallback


def _absent(found: dict | None) -> str:
    if found is None:
        return "this run has no controlled experiment (its configuration did not ask for one)"
    return f"the controlled experiment was not run here ({str(found.get('skipped', '')).rstrip('.')})"


def _grid_source(ctx, why: str) -> str:
    seeds = ", ".join(map(str, ctx.seeds))
    return (
        f"Every verdict comes from this run's grid: one model per combination and seed (seed {seeds}), evaluated on "
        f"the {len(ctx.T)} target classes of its one class split; {why}."
    )


def page_claims(ctx, found: dict | None) -> PageClaims:
    """The claims of the page built from `ctx` (report.page.PageContext): from the controlled stage's records
    when `found` (``clap_lib.pipeline.controlled.controlled_for(ctx.grid.dir)``) has them and they hold the paper's
    combinations, with claims 4 and 5 also on the variants of S; else today's computation on the run's grid
    (``ctx.claims()``). `source` says which."""
    rec = records_for(found)
    cfg = ctx.cfg
    if isinstance(rec, str):
        return PageClaims(ctx.claims(), {}, _grid_source(ctx, _absent(found)), None)
    frame = controlled_paper.claims_frame(rec.runs, rec.clips, cfg.n_boot, cfg.seed)
    if frame.empty:
        why = "the controlled experiment's records hold none of the paper's combinations"
        return PageClaims(ctx.claims(), {}, _grid_source(ctx, why), None)
    kw = {"n_perm": cfg.n_perm, "n_boot": cfg.n_boot, "seed": cfg.seed}
    claims = evaluate_claims(frame, **kw)
    variants = {v: controlled_paper.variant_claims(frame, v, **kw) for v in ("excess", "noself")}
    n_seeds, n_splits = frame["seed"].nunique(), int(frame["n_splits"].max())
    combos = frame.drop_duplicates(["pretraining", "training"])
    source = (
        f"Every verdict comes from the controlled experiment's records, not from this run's single grid: "
        f"{n_seeds} seed(s) x {n_splits} class split(s) ({rec.clips['category'].nunique()} classes, "
        f"{int(frame['n_clips'].max())} fold-5 clips per seed) of the paper's {len(combos)} combinations, one row "
        f"per seed pooling its class splits (accuracy and silhouettes over the clips of every split, each S the mean "
        f"of its splits' values); intervals over seeds and clips (for S, over seeds only)."
    )
    return PageClaims(claims, variants, source, frame)


def variants_table(pc: PageClaims) -> pd.DataFrame:
    """Claims 4 and 5 under each definition of S, the paper's first: verdict and what decided it."""
    rows = [("paper", c) for c in pc.claims if c.id in (4, 5)]
    rows += [(v, c) for v, cs in pc.variants.items() for c in cs]
    rows.sort(key=lambda vc: vc[1].id)
    index = pd.MultiIndex.from_tuples(
        [(f"({c.id})", controlled_paper.TOPOLOGY_VARIANTS[v][1]) for v, c in rows], names=["claim", "S taken as"]
    )
    return pd.DataFrame({"verdict": [c.verdict for _, c in rows], "why": [c.detail for _, c in rows]}, index=index)


def paper_topology_comparison(frame: pd.DataFrame) -> tuple[dict[int, pd.DataFrame], str]:
    """({title: table}, note) for `report.show_paper`: the paper's printed Table 3 beside the controlled design's S
    with self excluded, the only variant consistent with the printed values (mean over seeds, interval over
    seeds)."""
    tables, note = paper_comparison(controlled_paper.variant_frame(frame, "noself"), (3,))
    if not tables:
        return tables, note
    t = tables[3].rename(columns=lambda c: c.replace(": this run", ": controlled, without self"))
    return (
        {3: t},
        "The paper's Table 3 as printed (Tavares et al., ICASSP 2025, two decimals) beside the controlled design's "
        "S with each item excluded from its own neighbourhood (mean over seeds, each seed's class splits averaged; "
        "interval over seeds): with self included, S(E_a, E_t) cannot go below 1/2, and the paper prints values "
        "down to 0.38, so its S is compared with this variant only. Difference = controlled - paper. The paper "
        "evaluates all 50 classes of ESC-50 with CNN14 / BERT-base trained on four caption datasets.",
    )


def claims_numbers(pc: PageClaims, results: pd.DataFrame) -> pd.DataFrame:
    """The numbers behind the verdicts, one row per combination in the results layout (`report.long_table`): the
    controlled frame's combination estimates (mean over seeds, interval over seeds and clips; S over seeds), or the
    run's `results` on the fallback."""
    if pc.frame is None:
        return results
    skip = ("pretraining", "training", "seed", "n_splits", "n_clips")
    cols = [c for c in pc.frame.columns if c not in skip and not c.endswith(("_lo", "_hi"))]
    return seed_intervals(pc.frame, metric_cols=cols)


def variant_headers() -> dict[str, str]:
    """Column -> header of the variants of the three S in `claims_numbers` (for `report.long_table`)."""
    return {
        f"{topo}{suffix}": f"{label} {what}"
        for suffix, what in (("_excess", "excess over chance"), ("_noself", "without self"))
        for topo, label in TOPO.items()
    }
