"""Book tables: the paper's layout, human headers, the paper's values beside this run's (no training here)."""

import numpy as np
import pandas as pd

from clap_lib import report
from clap_lib.analysis import paper_tables


def _results() -> pd.DataFrame:
    df = paper_tables.load().copy()  # the paper's own numbers stand in for a run
    for c in ("accuracy", "sil_x_a", "sil_E_a", "topo_Ea_Et"):
        df[f"{c}_lo"], df[f"{c}_hi"] = df[c] - 0.05, df[c] + 0.05
    df["random_guess"] = 0.02
    df["topo_Ea_Et_chance"], df["topo_Ea_Et_k"], df["topo_Ea_Et_k_edge"] = 0.5, 25, True
    df["topo_Ea_Et_excess"], df["topo_Ea_Et_excess_lo"], df["topo_Ea_Et_excess_hi"] = 0.1, 0.05, 0.15
    return df


def test_table1_has_the_papers_layout_and_intervals():
    t = report.table1(_results())
    assert t.index.name == "training data" and list(t.index) == ["dirty", "clean"]
    assert t.columns.name == "audio pretraining" and list(t.columns[:3]) == ["dirty", "clean", "none"]
    assert t.loc["dirty", "dirty"] == "0.730 [0.680, 0.780]" and t.loc["clean", "none"] == "0.140 [0.090, 0.190]"
    assert (t["random guess"] == "0.020").all()


def test_table1_cells_sit_where_the_paper_prints_them():
    t = report.table1(_results())
    # the paper's Table 1: pretraining dirty / training clean = 0.48, pretraining clean / training dirty = 0.61
    assert t.loc["clean", "dirty"].startswith("0.480") and t.loc["dirty", "clean"].startswith("0.610")


def test_paper_comparison_shows_paper_run_and_difference():
    res = _results()
    res["accuracy"] = res["accuracy"] + 0.1
    (t,), note = report.paper_comparison(res, (1,))[0].values(), report.paper_comparison(res, (1,))[1]
    row = t.loc[("none", "clean")]
    assert row["zero-shot accuracy: paper"] == "0.14" and row["zero-shot accuracy: difference"] == "0.100"
    assert row["zero-shot accuracy: this run"] == "0.240 [0.090, 0.190]"
    assert "Tavares et al." in note


def test_topo_table_reports_chance_edge_and_excess():
    t = report.topo_table(_results())
    r = t.loc[("dirty", "dirty", "S(E_a, E_t)")]
    assert r["chance of S"] == "0.500" and r["k*"] == 25 and r["k* on the window's edge"] == "yes"
    assert r["excess over chance"] == "0.100 [0.050, 0.150]" and r["S"] == "0.460 [0.410, 0.510]"


def test_humanize_replaces_raw_names_everywhere():
    df = pd.DataFrame(
        {"part": ["sil_x_a >= sil_E_a", "topo_Ea_Et rises"], "n_pairs": [1, 2]}, index=["topo_xa_Ea", "other"]
    )
    h = report.humanize(df)
    assert list(h["part"]) == ["silhouette of x_a >= silhouette of E_a", "S(E_a, E_t) rises"]
    assert list(h.columns) == ["part", "training pairs"] and list(h.index) == ["S(x_a, E_a)", "other"]
    assert not np.any([("sil_" in str(v)) for v in h.to_numpy().ravel()])


def test_shortcut_leaves_out_mapped_classes_the_head_was_not_trained_on():
    from clap_lib.analysis.backbone_analysis import shortcut_result

    labels = ["Dog", "Bark", "Rain"]
    meta = pd.DataFrame({"fold": [5, 5, 5, 5], "category": ["dog", "dog", "rain", "rain"]})
    probs = np.array([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3], [0.1, 0.1, 0.9], [0.6, 0.1, 0.5]])
    mapping = {"dog": ("Dog", "Bark", "Howl"), "rain": ("Rain", "Raindrop")}
    r = shortcut_result(probs, labels, meta, np.ones(4, bool), ("dog", "rain"), mapping)
    # dog = max(Dog, Bark), rain = Rain: clips 0, 1, 2 right; clip 3 (rain) scores dog 0.6 > rain 0.5
    assert r["accuracy"] == 0.75 and r["n_clips"] == 4
    assert r["mapped_names_not_in_head"] == ["Howl", "Raindrop"]
    import pytest

    with pytest.raises(ValueError, match="no shortcut"):
        shortcut_result(probs[:, :1], ["Speech"], meta, np.ones(4, bool), ("dog", "rain"), mapping)


def test_correlation_sentence_claims_a_direction_only_when_the_interval_excludes_zero():
    from clap_lib.report.tables import correlation_sentence

    wide = {"r": 0.7514, "n": 6, "p_perm": 0.0931, "ci": [-0.0059, 0.9999]}
    assert correlation_sentence(wide, "S") == (
        "its Pearson r with S is 0.75, but its 95 % interval over the n = 6 combinations, [-0.01, 1.00], includes 0 "
        "(permutation p = 0.093): this run shows no correlation"
    )
    tight = {"r": 0.8459, "n": 6, "p_perm": 0.0417, "ci": [0.3078, 0.9988]}
    assert correlation_sentence(tight, "S").startswith("it rises with S: Pearson r = 0.85, its 95 % interval")
    assert correlation_sentence({"r": -0.9, "n": 6, "ci": [-0.99, -0.2]}, "S").startswith("it falls with S")
    assert correlation_sentence(None, "S") == "its correlation with S cannot be computed on this run"
    assert (
        correlation_sentence({"r": float("nan"), "n": 2}, "S")
        == "its correlation with S cannot be computed on this run"
    )
