"""The paper's claims as the book shows them: one row per claim (`claims_table`) and one per sub-verdict
(`parts_table`); the verdicts are computed in :mod:`clap_lib.analysis.claims`."""

from __future__ import annotations

import pandas as pd

from clap_lib.analysis.claims import Claim


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
