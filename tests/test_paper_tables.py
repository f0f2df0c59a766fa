"""The paper-tables loader: where it looks, what it rejects, and the correlations it re-derives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from clap_lib.analysis import paper_tables as pt

COMBOS = [(p, t) for p in pt.PRETRAININGS for t in pt.PAPER_TRAININGS]


def _table(acc=(0.6, 0.5, 0.4, 0.3, 0.2, 0.1)) -> pd.DataFrame:
    acc = np.asarray(acc, float)
    return pd.DataFrame(
        {
            "pretraining": [p for p, _ in COMBOS],
            "training": [t for _, t in COMBOS],
            "accuracy": acc,
            "sil_x_a": 0.1 * np.arange(6) - 0.2,
            "sil_E_a": 2 * acc - 0.5,  # exactly linear in accuracy -> r = 1
            "topo_xa_Ea": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
            "topo_xt_Et": [0.5] * 6,
            "topo_Ea_Et": [0.7, 0.2, 0.6, 0.3, 0.5, 0.4],
        }
    )


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


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns="sil_E_a"), "missing columns ['sil_E_a']"),
        (
            lambda d: d.assign(pretraining=d.pretraining.replace("none", "random")),
            "unknown pretraining value(s) ['random']",
        ),
        (lambda d: d.iloc[:5], "combination(s) missing: [('none', 'clean')]"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "given twice: [('dirty', 'dirty')]"),
        (lambda d: d.assign(accuracy=[0.6, 0.5, 40.0, 0.3, 0.2, 0.1]), "accuracy must be a number in [0.0, 1.0]"),
        (lambda d: d.assign(sil_x_a=["x", 0, 0, 0, 0, 0]), "sil_x_a must be a number in [-1.0, 1.0]"),
    ],
)
def test_validate_rejects_bad_tables(mutate, message):
    with pytest.raises(ValueError) as e:
        pt.validate(mutate(_table()), source="t.csv")
    assert message in str(e.value) and "t.csv" in str(e.value)


def test_locate_order_and_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(pt.ENV, raising=False)
    monkeypatch.setattr(pt, "PACKAGED", tmp_path / "absent.csv")
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "shared"))
    with pytest.raises(pt.PaperTablesMissing, match="not bundled") as e:
        pt.locate()
    assert "paper_tables_template.csv" in str(e.value)
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
    assert tables == {} and "not bundled" in note and "clap_lib/analysis/paper_tables_template.csv" in note
    csv = tmp_path / "paper.csv"
    _table().to_csv(csv, index=False)
    tables, note = report.paper_comparison(run, (1, 3), csv)
    assert set(tables) == {1, 3} and str(csv) in note
    assert (tables[3]["S(E_a, E_t): difference"] == "-0.100").all()
    assert (tables[1]["zero-shot accuracy: difference"] == "0.000").all()
    assert list(tables[1]["zero-shot accuracy: paper"]) == [f"{v:.2f}" for v in _table()["accuracy"]]
    corr, _ = report.paper_correlation_table(csv)
    (frame,) = corr.values()
    assert frame.loc["accuracy vs silhouette E_a", "re-derived from its printed tables"].startswith("r = 1.000")


@pytest.fixture
def fresh_clone(monkeypatch, tmp_path):
    """No shared data folder and no environment override: only what the package ships."""
    monkeypatch.delenv(pt.ENV, raising=False)
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "no_shared_data"))


def test_bundled_tables_load_with_no_arguments(fresh_clone):
    assert pt.locate() == pt.PACKAGED
    df = pt.load()
    assert list(zip(df.pretraining, df.training)) == COMBOS
    assert df.loc[0, "accuracy"] == 0.73 and df.loc[5, "sil_E_a"] == -0.05 and df.loc[5, "topo_Ea_Et"] == 0.38
    assert "Tavares" in pt.PACKAGED.read_text().splitlines()[0]  # the source is cited beside the numbers


def test_bundled_copy_equals_the_shared_one():
    from clap_lib.data.paths import shared_data_dir

    shared = shared_data_dir()
    src = shared / "paper" / "tables_1_3.csv" if shared else None
    if src is None or not src.is_file():
        pytest.skip("no shared data folder with paper/tables_1_3.csv to compare the bundled copy with")
    pd.testing.assert_frame_equal(pt.validate(pd.read_csv(src)), pt.load(pt.PACKAGED))


def test_rounding_range_by_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.1, 0.9, 6), rng.uniform(0.1, 0.9, 6)
    lo, hi = pt.correlation_rounding_range(x, y, half_width=0.02)
    r0 = stats.pearsonr(x, y).statistic
    assert lo < r0 < hi
    assert pt.correlation_rounding_range(x, y, half_width=0.0) == pytest.approx((r0, r0))
    # every perturbation in the box (random points and corners) gives an r inside the range, and the corners
    # come within 1e-3 of both ends (r is near-linear in so small a box, so its extremes sit near corners)
    d = rng.uniform(-0.02, 0.02, size=(4000, 12))
    d[2000:] = 0.02 * np.sign(d[2000:])
    rs = np.array([np.corrcoef(x + e[:6], y + e[6:])[0, 1] for e in d])
    assert lo - 1e-9 <= rs.min() and rs.max() <= hi + 1e-9
    assert rs.min() - lo < 1e-3 and hi - rs.max() < 1e-3
    lo_log, hi_log = pt.correlation_rounding_range(x, y, log_x=True, half_width=0.02)
    assert lo_log < stats.pearsonr(np.log(x), y).statistic < hi_log


def test_given_tables_give_the_papers_own_correlations(fresh_clone):
    """Pinned: the printed tables against the correlations the paper's text states, allowing for the rounding
    of the printed entries to two decimals (range derived by perturbing every entry within +-0.005)."""
    both = pt.paper_correlations_both()
    sil, topo = both.loc["accuracy vs silhouette E_a"], both.loc["log accuracy vs S(E_a, E_t)"]
    # re-derived from the printed values (what the issue measured)
    assert sil["tables r"] == pytest.approx(0.972, abs=5e-4) and sil["tables p"] == pytest.approx(0.0012, abs=5e-5)
    assert topo["tables r"] == pytest.approx(0.845, abs=5e-4) and topo["tables p"] == pytest.approx(0.034, abs=5e-4)
    # the text's values lie inside what the unrounded tables can give
    assert sil["r low"] <= 0.97 <= sil["r high"] and sil["p high"] < 0.01
    assert topo["r low"] <= 0.85 <= topo["r high"] and topo["p low"] <= 0.032 <= topo["p high"]
    assert both["text r reachable"].all() and both["text p reachable"].all()
    # the text's r and p agree with each other (p of r = 0.85 with n = 6 is 0.032)
    assert stats.t.sf(0.85 * np.sqrt(4 / (1 - 0.85**2)), 4) * 2 == pytest.approx(0.032, abs=5e-4)
    # the rounding of the inputs alone moves r by up to ~0.08 for the S correlation: a +-0.005 tolerance is wrong
    assert topo["r high"] - topo["r low"] > 0.1


def test_side_by_side_with_intervals_and_strict(fresh_clone):
    paper = pt.load()
    run = pd.DataFrame(
        [
            {"pretraining": p, "training": t, "accuracy": 0.5, "accuracy_lo": 0.45, "accuracy_hi": 0.55}
            for p in pt.PRETRAININGS
            for t in pt.TRAININGS
        ]
    )
    s = pt.side_by_side(run, paper, 1)
    assert len(s) == 3 * len(pt.TRAININGS) == 12  # dirty, clean, strict, dedup
    assert s.loc[("dirty", "dirty"), "accuracy (paper)"] == 0.73
    assert s.loc[("dirty", "dirty"), "accuracy (run - paper)"] == pytest.approx(-0.23)
    assert (s.loc[("dirty", "dirty"), "accuracy (run lo)"], s.loc[("dirty", "dirty"), "accuracy (run hi)"]) == (
        0.45,
        0.55,
    )
    strict = s.xs("strict", level="training")
    assert strict["accuracy (paper)"].isna().all() and strict["accuracy (run - paper)"].isna().all()
    assert (strict["accuracy (run)"] == 0.5).all()
    # several seeds per combination: summarised as mean [lo, hi] over seeds and clips
    seeds = pd.concat([run.assign(seed=0), run.assign(seed=1, accuracy=0.7, accuracy_lo=0.65, accuracy_hi=0.75)])
    s2 = pt.side_by_side(seeds, paper, 1)
    assert len(s2) == 12 and s2.loc[("none", "clean"), "accuracy (run)"] == pytest.approx(0.6)
    assert s2.loc[("none", "clean"), "accuracy (run lo)"] < 0.55
    with pytest.raises(ValueError, match="missing column"):
        pt.side_by_side(run, paper, 2)
