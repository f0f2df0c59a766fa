"""The chapter "A controlled experiment" (clap_lib.report.controlled, controlled_text, notebooks/controlled.py) on
synthetic records in the stage's format (tests/controlled_records.py); no training."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from controlled_records import synthetic_records, write_records
from page_cells import grid_folder, run_page

from clap_lib.analysis.controlled import ConditionCorrelation
from clap_lib.report import controlled as rc
from clap_lib.report import controlled_text as rt
from clap_lib.report.numbered import list_table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = write_records(tmp_path_factory.mktemp("controlled"), synthetic_records())
    rec = rc.records_for({"dir": folder})
    return rec, rc.analyse(rec, n_boot=300)


def test_records_for_loads_the_folder_or_says_why_not(tmp_path):
    assert "no controlled experiment" in rc.records_for(None)
    assert rc.records_for({"skipped": "the device budget was spent."}) == (
        "The controlled experiment was not run here: the device budget was spent."
    )
    r = synthetic_records(pretrainings=("dirty",), seeds=(0,), dose_seeds=(0,), doses=(0.5,))
    rec = rc.records_for({"dir": write_records(tmp_path / "d", r)})
    assert rec.runs.shape == r.runs.shape and rec.clips["correct"].tolist() == r.clips["correct"].tolist()
    assert rec.design["d_embed"] == 64 and rec.folder == tmp_path / "d"
    (tmp_path / "d" / "classes.csv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks classes.csv"):
        rc.load_controlled(tmp_path / "d")
    r.runs.drop(columns="S_noself").to_csv(tmp_path / "d" / "runs.csv", index=False)
    r.classes.to_csv(tmp_path / "d" / "classes.csv", index=False)
    with pytest.raises(ValueError, match=r"runs.csv lacks the columns \['S_noself'\]"):
        rc.load_controlled(tmp_path / "d")


def test_sentences_claim_a_direction_only_where_the_interval_excludes_the_null():
    assert rc.versus_chance_text(0.05, 0.03, 0.07, 0.4, 0.04, 2000) == (
        "0.050 [0.030, 0.070], not distinguishable from chance 0.040 (p = 0.400)"
    )
    assert rc.versus_chance_text(0.30, 0.25, 0.35, 0.0, 0.04, 2000) == (
        "0.300 [0.250, 0.350], above chance 0.040 (p < 0.001)"
    )
    assert "below chance" in rc.versus_chance_text(0.01, 0.0, 0.03, 0.01, 0.04, 2000)
    assert rc.difference_text("clean", "matched", 0.02, -0.01, 0.05, 0.2, 2000) == (
        "clean - matched = 0.020 [-0.010, 0.050] (p = 0.200): clean not distinguishable from matched"
    )
    assert rc.difference_text("dirty", "matched", 0.1, 0.05, 0.15, 0.0, 500).endswith(
        "(p < 0.004): dirty above matched"
    )
    assert rc.reading("clean", "unseen", -0.2, -0.1) == "clean below unseen"


def test_correlation_text_states_n_and_claims_a_sign_only_when_the_interval_excludes_0():
    c = ConditionCorrelation("accuracy", "sil_E_a", 0.8, 0.3, 0.95, 0.01, 12, 3)
    text = rt.correlation_text(c, "accuracy vs silhouette of E_a")
    assert "over the n = 12 condition means is 0.80, [0.30, 0.95] over resamples of the 3 seeds" in text
    assert "excludes 0: a positive correlation" in text
    wide = ConditionCorrelation("accuracy", "S", 0.5, -0.2, 0.9, 0.1, 12, 3)
    assert "includes 0: no correlation this design can claim" in rt.correlation_text(wide, "x")
    assert "at least 3 conditions" in rt.correlation_text(None, "x")
    assert "undefined" in rt.correlation_text(ConditionCorrelation("a", "b", np.nan, np.nan, np.nan, 1, 12, 3), "x")


def test_table_1_cells_are_the_analysis_numbers_in_the_papers_layout(analysed):
    rec, an = analysed
    t = rc.table_accuracy(an)
    assert t.index.name == "training data" and t.columns.name == "audio pretraining"
    assert list(t.columns) == ["dirty", "clean", "none", "random guess"]
    assert list(t.index) == [rc.LEVEL_TEXT[lv] for lv in ("dirty", "clean", "unseen", "matched")]
    row = an.accuracy.set_index(["pretraining", "level"]).loc[("clean", "unseen")]
    assert t.loc[rc.LEVEL_TEXT["unseen"], "clean"] == rc.fmt(row["value"], row["lo"], row["hi"])
    assert (t["random guess"] == "0.250").all()
    assert ":name: tbl-controlled-accuracy" in list_table(t, "Caption.", "tbl-controlled-accuracy")


def test_comparisons_hold_the_three_contrasts_and_unseen_against_chance(analysed):
    _, an = analysed
    t = rc.table_comparisons(an)
    assert len(t) == 12 and list(t.index.get_level_values(0)[:4]) == ["dirty"] * 4
    assert list(t.loc["dirty"].index) == ["clean - matched", "dirty - matched", "clean - unseen", "unseen - chance"]
    u = an.accuracy.set_index(["pretraining", "level"]).loc[("clean", "unseen")]
    cell = t.loc[("clean", "unseen - chance"), "difference [95 % interval] (p)"]
    assert cell.startswith(rc.fmt(u["value"] - u["chance"], u["lo"] - u["chance"], u["hi"] - u["chance"]))
    assert t.loc[("clean", "unseen - chance"), "reading"] == "unseen not distinguishable from chance"
    assert t.loc[("dirty", "clean - unseen"), "reading"] == "clean above unseen"


def test_tables_2_3_doses_classes_correlations_render(analysed):
    rec, an = analysed
    for name, t, rows in (
        ("tbl-a", rc.table_silhouettes(an), 12),
        ("tbl-b", rc.table_topology(an), 12),
        ("tbl-c", rc.table_doses(an), 6),
        ("tbl-d", rc.table_clean_split(an), 3),
        ("tbl-e", rc.table_correlations(an), 2),
        ("tbl-f", rc.table_pairs(rec), 8),
    ):
        assert len(t) == rows, name
        assert f":name: {name}" in list_table(t, "Caption.", name)
    s = rc.table_silhouettes(an)
    assert s.index.names == ["audio pretraining", "training data"]
    d = rc.table_doses(an)
    assert list(d.index) == ["0", "0.05", "0.1", "0.25", "0.5", "1"]
    assert d.loc["0", "dirty: minus f = 0"] == "0.000 [0.000, 0.000] (p = 1.000)"
    pairs = rc.table_pairs(rec)
    assert pairs.loc[rc.LEVEL_TEXT["clean"], "share of dirty's T pairs"] == pytest.approx(8 / 64)
    assert pairs.loc["dose f = 0.25", "pairs of T clips"] == 16 and pairs.loc["dose f = 0.25", "runs"] == 12


def test_figure_doses_draws_one_curve_per_pretraining_and_chance(analysed):
    _, an = analysed
    fig = rc.figure_doses(an)
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["random guess", "pretraining dirty", "pretraining clean", "pretraining none"]
    lo, hi = ax.get_ylim()
    assert lo <= an.doses["lo"].min() and hi >= an.doses["hi"].max()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.05", "0.1", "0.25", "0.5", "1"]


def test_design_numbers_and_sentences(analysed):
    rec, an = analysed
    n = rt.design_numbers(rec)
    assert (n["n_runs"], n["clips_per_seed"], n["n_classes"], n["d_embed"], n["chance"]) == (120, 16, 8, 64, 0.25)
    assert (n["seeds"], n["dose_seeds"], n["doses"]) == ("0, 1 and 2", "0 and 1", "0.05, 0.1, 0.25 and 0.5")
    assert n["clean_t_share"] == pytest.approx(8 / 64) and n["pretrainings"] == "dirty, clean and none"
    unseen = rt.unseen_sentences(an).splitlines()
    assert len(unseen) == 3 and unseen[1].startswith("* pretraining clean: accuracy 0.250 [")
    assert "not distinguishable from chance 0.250" in unseen[1]
    doses = rt.dose_sentences(an)
    for line, (p, g) in zip(doses.splitlines(), an.doses.groupby("pretraining", sort=False)):
        above = g[(g["f"] > 0) & (g["diff_lo"] > 0)]["f"]
        assert line.startswith(f"* pretraining {p}: at f = 0 accuracy is ")
        if above.empty:
            assert line.endswith("no dose in this design differs from f = 0")
        else:
            assert f"the smallest dose above f = 0 (paired difference excluding 0) is f = {above.min():g}: " in line
    assert rt.contrast_sentences(an).count("* pretraining") == 3
    assert "silhouette of x_a" in rt.shift_sentences(an) and "kept some - kept none" in rt.clean_split_sentences(an)
    assert rt.correlation_sentences(an).count("n = 12 condition means") == 2
    assert rt.cuts_text(rec.design) == "* the mn04_as backbone was not run (synthetic records).\n"
    assert rt.cuts_text({"cuts": []}) == "Nothing was cut for the time budget.\n"


def test_records_without_dose_runs_or_gru_phase(tmp_path):
    r = synthetic_records(pretrainings=("dirty",), seeds=(0, 1), doses=())
    r.runs["gru"], r.runs["x_a_shift"] = False, np.nan
    an = rc.analyse(rc.records_for({"dir": write_records(tmp_path, r)}), n_boot=100)
    assert an.doses.empty and rc.table_doses(an).empty and rt.dose_sentences(an) == ""
    assert "no run fine-tuned its backbone" in rt.shift_sentences(an)
    assert an.correlations["acc_vs_sil_E_a"].n_conditions == 4


# ----------------------------------------------------------------------------------------------- the page


def test_the_page_without_records_is_one_sentence(monkeypatch, tmp_path):
    text, glued = run_page(monkeypatch, grid_folder(tmp_path), None, "controlled")
    assert text == [rc.records_for(None)] and glued == {}
    text, _ = run_page(monkeypatch, grid_folder(tmp_path / "b"), {"skipped": "no device"}, "controlled")
    assert text == ["The controlled experiment was not run here: no device."]


def test_the_page_with_records_glues_every_number_it_cites_and_numbers_what_it_refers_to(monkeypatch, tmp_path):
    folder = write_records(tmp_path / "records", synthetic_records())
    text, glued = run_page(monkeypatch, grid_folder(tmp_path), {"dir": folder}, "controlled")
    page = "\n".join(text)
    cited = set(re.findall(r"\{glue:text\}`([a-z_]+)", page)) | set(re.findall(r"\{glue:figure\} (\w+)", page))
    assert cited and cited <= set(glued)
    labels = set(re.findall(r":name: ([a-z0-9-]+)", page))
    assert set(re.findall(r"\{numref\}`([a-z0-9-]+)`", page)) <= labels
    assert {"tbl-controlled-accuracy", "tbl-controlled-comparisons", "fig-controlled-dose"} <= labels
    assert "not distinguishable from chance" in page and "## What was cut for the time budget" in page
