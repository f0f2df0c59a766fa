"""The claims page on the controlled experiment's records (clap_lib.report.claims.page_claims): every verdict from the
records when the run has them, else from its grid; claims 4 and 5 on the variants of S; the paper's printed S
compared with S without self only; and the notebook's cells that show them (tests/page_cells.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from page_cells import fake_context, markdown_cells, refs_resolve, reversed_records, run_cells

from clap_lib.analysis.controlled_paper import claims_frame
from clap_lib.report import claims as rcl
from clap_lib.report import controlled as rc


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return reversed_records(tmp_path_factory.mktemp("controlled"))


def test_page_claims_come_from_the_controlled_records_when_there_are_some(tmp_path, folder):
    ctx = fake_context(tmp_path)
    grid = rcl.page_claims(ctx, None)
    assert [c.verdict for c in grid.claims] == ["holds"] * 5 and grid.variants == {} and grid.frame is None
    assert grid.source.startswith("Every verdict comes from this run's grid")
    assert "this run has no controlled experiment" in grid.source
    skipped = rcl.page_claims(ctx, {"skipped": "no device."})
    assert "the controlled experiment was not run here (no device)" in skipped.source
    pc = rcl.page_claims(ctx, {"dir": folder})
    assert pc.claims[0].verdict == "fails"  # the records' accuracy rises as leakage is removed
    assert set(pc.variants) == {"excess", "noself"} and [c.id for c in pc.variants["noself"]] == [4, 5]
    assert "controlled experiment's records, not from this run's single grid: 3 seed(s) x 2 class split(s)" in (
        pc.source
    )
    assert "(8 classes, 80 fold-5 clips per seed) of the paper's 6 combinations" in pc.source
    assert pc.frame.equals(claims_frame(rc.load_controlled(folder).runs, rc.load_controlled(folder).clips, 200, 0))


def test_variants_table_puts_the_papers_s_first_for_claims_4_and_5(tmp_path, folder):
    pc = rcl.page_claims(fake_context(tmp_path), {"dir": folder})
    t = rcl.variants_table(pc)
    assert t.index.names == ["claim", "S taken as"] and list(t.columns) == ["verdict", "why"]
    assert [i[0] for i in t.index] == ["(4)"] * 3 + ["(5)"] * 3
    assert t.index[0][1].startswith("the paper's S:") and "excess" in t.index[1][1] and "excluded" in t.index[2][1]
    assert t["verdict"].iloc[0] == pc.claims[3].verdict and t["verdict"].iloc[5] == pc.variants["noself"][1].verdict


def test_the_papers_printed_s_is_compared_with_s_without_self_only(tmp_path, folder):
    pc = rcl.page_claims(fake_context(tmp_path), {"dir": folder})
    tables, note = rcl.paper_topology_comparison(pc.frame)
    ((title, t),) = tables.items()
    assert title == 3 and "compared with this variant only" in note
    assert not any("this run" in c for c in t.columns)
    cell = t.loc[("dirty", "dirty"), "S(E_a, E_t): controlled, without self"]
    mean = pc.frame.query("pretraining == 'dirty' and training == 'dirty'")["topo_Ea_Et_noself"].mean()
    assert cell.startswith(f"{mean:.3f}") and t.loc[("dirty", "dirty"), "S(E_a, E_t): paper"] == "0.46"


def test_claims_numbers_are_the_combination_estimates_of_the_verdicts(tmp_path, folder):
    ctx = fake_context(tmp_path)
    assert rcl.claims_numbers(rcl.page_claims(ctx, None), ctx.res) is ctx.res
    pc = rcl.page_claims(ctx, {"dir": folder})
    n = rcl.claims_numbers(pc, ctx.res)
    assert len(n) == 6 and (n["n_seeds"] == 3).all()
    means = pc.frame.groupby(["pretraining", "training"], sort=False)[["accuracy", "topo_xt_Et_noself"]].mean()
    got = n.set_index(["pretraining", "training"])
    assert np.allclose(got.loc[means.index, ["accuracy", "topo_xt_Et_noself"]], means)
    assert set(rcl.variant_headers()) <= set(n.columns)


def test_the_claims_page_decides_every_verdict_on_the_controlled_records(monkeypatch, tmp_path, folder):
    text, glued = run_cells(monkeypatch, tmp_path, "claims", {"dir": folder})
    cited = set(re.findall(r"\{glue:text\}`([a-z_]+)", markdown_cells("claims")))
    assert cited <= set(glued) and glued["claims_source"].startswith("Every verdict comes from the controlled")
    assert {"tbl-claims", "tbl-claims-topology-variants"} <= refs_resolve(text)
    assert "**Verdict: fails.**" in text  # claim 1 on the records; the grid (the paper's tables) would hold
    assert "compared with this variant only" in text and "this run -" not in text
    text, glued = run_cells(monkeypatch, tmp_path, "claims", None)
    assert glued["claims_source"].startswith("Every verdict comes from this run's grid")
    assert "tbl-claims-topology-variants" not in text and "are therefore not compared here" in text
    assert "**Verdict: fails.**" not in text
