"""The controlled experiment beside the single run on the book's other pages: the summary's headline sentences
(clap_lib.report.controlled_text), the controlled Tables 1-3 (clap_lib.report.controlled_pages) and the notebooks'
cells of Sections 3.1, 3.2 and the summary that show them, on synthetic records (tests/page_cells.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from page_cells import refs_resolve, reversed_records, run_cells

from clap_lib.report import controlled as rc
from clap_lib.report import controlled_pages as cpg
from clap_lib.report import controlled_text as rt


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return reversed_records(tmp_path_factory.mktemp("controlled"))


def _analysis(accuracy: pd.DataFrame, contrasts: pd.DataFrame) -> rc.ControlledAnalysis:
    empty = pd.DataFrame()
    return rc.ControlledAnalysis(accuracy, contrasts, empty, empty, empty, empty, {}, 2000)


def test_headline_claims_a_direction_only_where_the_interval_excludes_the_null():
    acc = pd.DataFrame(
        [
            {
                "pretraining": "dirty",
                "level": "unseen",
                "value": 0.05,
                "lo": 0.03,
                "hi": 0.07,
                "p": 0.4,
                "chance": 0.04,
            },
            {"pretraining": "dirty", "level": "clean", "value": 0.3, "lo": 0.2, "hi": 0.4, "p": 0.0, "chance": 0.04},
        ]
    )
    con = pd.DataFrame(
        [
            {"pretraining": "dirty", "contrast": f"{a} - {b}", "a": a, "b": b, "measures": m, "value": v}
            | {"lo": lo, "hi": hi, "p": p}
            for a, b, m, v, lo, hi, p in (
                ("clean", "matched", "leakage", 0.02, -0.01, 0.05, 0.2),
                ("dirty", "matched", "quantity", 0.1, 0.05, 0.15, 0.0),
                ("clean", "unseen", "residual", 0.2, 0.1, 0.3, 0.0),
            )
        ]
    )
    text = rt.headline_sentences(_analysis(acc, con))
    assert text == (
        "* pretraining dirty: true zero-shot (unseen) 0.050 [0.030, 0.070], not distinguishable from chance 0.040 "
        "(p = 0.400); leakage: clean - matched = 0.020 [-0.010, 0.050] (p = 0.200): clean not distinguishable from "
        "matched; quantity: dirty - matched = 0.100 [0.050, 0.150] (p < 0.001): dirty above matched\n"
    )
    assert rt.headline_sentences(_analysis(acc.iloc[:0], pd.DataFrame())) == ""


def test_lead_and_table_3_of_the_controlled_design(folder):
    rec = rc.load_controlled(folder)
    assert cpg.design_text(rec) == "3 seeds x 2 class splits (8 classes, 80 fold-5 clips per seed)"
    lead = cpg.lead(rec, "Table 1", "tbl-controlled-accuracy")
    assert "{numref}`tbl-controlled-accuracy`" in lead and cpg.CHAPTER in lead and "*matched*" in lead
    t = cpg.table_topology_spaces(rec, n_boot=100)
    assert t.index.names == ["audio pretraining", "training data"] and len(t) == 16
    assert list(t.columns[:3]) == ["S(x_a, E_a) [95 % interval]", "S(x_a, E_a): excess over chance",
                                   "S(x_a, E_a) without self"]  # fmt: skip
    assert t.loc[("dirty", rc.LEVEL_TEXT["unseen"]), "S(x_t, E_t) without self"] == "0.700"
    assert cpg.controlled_on_page(None) is None and cpg.controlled_on_page({"skipped": "x"}) is None


def test_sections_3_1_and_3_2_show_the_controlled_tables_beside_the_single_runs(monkeypatch, tmp_path, folder):
    pick = lambda src: "ctl" in src or "controlled_for" in src  # noqa: E731
    text, _ = run_cells(monkeypatch, tmp_path, "s3_1_accuracy_clusters", {"dir": folder}, pick)
    assert {"tbl-table1-controlled", "tbl-table2-controlled", "table-2"} <= refs_resolve(text)
    assert "unseen (no pair of a T clip)" in text and "Only the *unseen* row is zero-shot" in text
    text, _ = run_cells(monkeypatch, tmp_path, "s3_2_text_topology", {"dir": folder}, pick)
    assert refs_resolve(text) == {"tbl-table3-controlled"} and "without self" in text
    for name in ("s3_1_accuracy_clusters", "s3_2_text_topology"):
        text, _ = run_cells(monkeypatch, tmp_path, name, None, pick)
        assert "controlled" not in text


def test_the_summary_states_the_controlled_headline(monkeypatch, tmp_path, folder):
    pick = lambda src: "page.context(" in src or "ctl" in src or "claims_table(claims)" in src  # noqa: E731
    text, glued = run_cells(monkeypatch, tmp_path, "summary", {"dir": folder}, pick)
    refs_resolve(text, also={"tbl-table1-controlled"})
    assert "## The controlled experiment" in text and "true zero-shot (unseen)" in text
    assert "dirty - matched = " in text and "clean - matched = " in text
    assert glued["claims_source"].startswith("Every verdict comes from the controlled")
    text, glued = run_cells(monkeypatch, tmp_path, "summary", None, pick)
    assert "controlled experiment" not in text and "this run's grid" in glued["claims_source"]
