"""The paper-tables loader: where it looks, what it rejects, and the correlations it re-derives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clap_lib import paper_tables as pt

COMBOS = [(p, t) for p in pt.PRETRAININGS for t in pt.TRAININGS]


def _table(acc=(0.6, 0.5, 0.4, 0.3, 0.2, 0.1)) -> pd.DataFrame:
    acc = np.asarray(acc, float)
    return pd.DataFrame({
        "pretraining": [p for p, _ in COMBOS], "training": [t for _, t in COMBOS],
        "accuracy": acc,
        "sil_x_a": 0.1 * np.arange(6) - 0.2,
        "sil_E_a": 2 * acc - 0.5,  # exactly linear in accuracy -> r = 1
        "topo_xa_Ea": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        "topo_xt_Et": [0.5] * 6,
        "topo_Ea_Et": [0.7, 0.2, 0.6, 0.3, 0.5, 0.4],
    })


def test_template_lists_every_column_and_combination():
    t = pd.read_csv(pt.TEMPLATE)
    assert tuple(t.columns) == pt.COLUMNS
    assert sorted(map(tuple, t[list(pt.KEYS)].values)) == sorted(COMBOS)
    assert t[list(pt.VALUES)].isna().all().all()  # a template, not values


def test_correlations_rederived_from_the_tables():
    df = pt.validate(_table().sample(frac=1.0, random_state=1))  # order must not matter
    c = pt.paper_correlations(df)
    assert c.loc["accuracy vs silhouette E_a", "Pearson r"] == pytest.approx(1.0)
    acc = np.array([0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    topo = np.array([0.7, 0.2, 0.6, 0.3, 0.5, 0.4])
    ref = stats.pearsonr(np.log(acc), topo)
    row = c.loc["log accuracy vs S(E_a, E_t)"]
    assert row["Pearson r"] == pytest.approx(ref.statistic) and row["p"] == pytest.approx(ref.pvalue)
    # hand check of r: log-acc centred dot topo centred over the norms
    lx, ty = np.log(acc) - np.log(acc).mean(), topo - topo.mean()
    assert row["Pearson r"] == pytest.approx(lx @ ty / np.sqrt((lx @ lx) * (ty @ ty)))
    assert int(row["n"]) == 6


def test_validate_orders_rows_like_the_paper():
    df = pt.validate(_table().iloc[::-1])
    assert list(zip(df.pretraining, df.training)) == COMBOS


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="sil_E_a"), "missing columns ['sil_E_a']"),
    (lambda d: d.assign(pretraining=d.pretraining.replace("none", "random")), "unknown pretraining value(s) ['random']"),
    (lambda d: d.iloc[:5], "combination(s) missing: [('none', 'clean')]"),
    (lambda d: pd.concat([d, d.iloc[:1]]), "given twice: [('dirty', 'dirty')]"),
    (lambda d: d.assign(accuracy=[0.6, 0.5, 40.0, 0.3, 0.2, 0.1]), "accuracy must be a number in [0.0, 1.0]"),
    (lambda d: d.assign(sil_x_a=["x", 0, 0, 0, 0, 0]), "sil_x_a must be a number in [-1.0, 1.0]"),
])
def test_validate_rejects_bad_tables(mutate, message):
    with pytest.raises(ValueError) as e:
        pt.validate(mutate(_table()), source="t.csv")
    assert message in str(e.value) and "t.csv" in str(e.value)


def test_locate_order_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(pt.ENV, raising=False)
    monkeypatch.setattr(pt, "PACKAGED", tmp_path / "absent.csv")
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "shared"))
    with pytest.raises(pt.PaperTablesMissing, match="not bundled"):
        pt.locate()
    (tmp_path / "shared").mkdir()
    _table().to_csv(tmp_path / "shared" / "paper_tables.csv", index=False)
    assert pt.locate() == tmp_path / "shared" / "paper_tables.csv"  # the shared data folder
    env_csv, arg_csv = tmp_path / "env.csv", tmp_path / "arg.csv"
    _table().to_csv(env_csv, index=False)
    _table(acc=(0.7, 0.6, 0.5, 0.4, 0.3, 0.25)).to_csv(arg_csv, index=False)
    monkeypatch.setenv(pt.ENV, str(env_csv))
    assert pt.locate() == env_csv
    assert pt.locate(arg_csv) == arg_csv  # the parameter wins over the environment
    assert pt.load(arg_csv)["accuracy"].iloc[0] == pytest.approx(0.7)
    with pytest.raises(pt.PaperTablesMissing, match="nope.csv"):
        pt.locate(tmp_path / "nope.csv")


def test_side_by_side_difference():
    paper = pt.validate(_table())
    run = paper.copy()
    run["accuracy"] = run["accuracy"] + 0.05
    run = run[run.training == "dirty"]  # a run with fewer combinations still lines up
    s = pt.side_by_side(run, paper, 1)
    assert len(s) == 3
    np.testing.assert_allclose(s["accuracy (run - paper)"], 0.05)
    assert s.loc[("dirty", "dirty"), "accuracy (paper)"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="table must be one of"):
        pt.side_by_side(run, paper, 4)


def test_report_shows_the_paper_next_to_the_run_or_says_why_not(tmp_path, monkeypatch):
    from clap_lib import report

    monkeypatch.delenv(pt.ENV, raising=False)
    monkeypatch.setattr(pt, "PACKAGED", tmp_path / "absent.csv")
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "no_shared"))
    run = pt.validate(_table())
    run["topo_Ea_Et"] = run["topo_Ea_Et"] - 0.1
    tables, note = report.paper_comparison(run, (1, 3))
    assert tables == {} and "not bundled" in note and "clap_lib/paper_tables_template.csv" in note
    csv = tmp_path / "paper.csv"
    _table().to_csv(csv, index=False)
    tables, note = report.paper_comparison(run, (1, 3), csv)
    assert set(tables) == {1, 3} and str(csv) in note
    np.testing.assert_allclose(tables[3]["topo_Ea_Et (run - paper)"], -0.1)
    np.testing.assert_allclose(tables[1]["accuracy (run - paper)"], 0.0)
    corr, _ = report.paper_correlation_table(csv)
    (frame,) = corr.values()
    assert frame.loc["accuracy vs silhouette E_a", "Pearson r"] == pytest.approx(1.0)


def _given_tables():
    try:
        return pt.locate()
    except pt.PaperTablesMissing:
        return None


@pytest.mark.skipif(_given_tables() is None, reason="the paper's Tables 1-3 are not bundled (no paper_tables.csv in "
                    "the package or the shared data folder); this pins a transcription to the paper's stated correlations")
def test_given_tables_give_the_papers_own_correlations():
    c = pt.paper_correlations(pt.load(_given_tables()))
    assert c.loc["accuracy vs silhouette E_a", "Pearson r"] == pytest.approx(0.97, abs=0.005)
    row = c.loc["log accuracy vs S(E_a, E_t)"]
    assert row["Pearson r"] == pytest.approx(0.85, abs=0.005) and row["p"] == pytest.approx(0.032, abs=0.0005)
