"""The page "A ladder of backbones" (clap_lib.report.ladder, ladder_text, ladder_figures, notebooks/ladder.py) on a
synthetic ladder in the stage's format (ladder.csv, ladder_runs.csv) whose answers are known by construction:
accuracy at dirty exactly linear in the probe (r = 1), accuracy at unseen at the random guess, audit scores equal
to the exposure rank (tau = 1), and accuracies whose exposure coefficient is exactly 0 or 0.1 (residuals orthogonal
to the design). No training."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from page_cells import grid_folder, run_page
from statsmodels.stats.proportion import proportion_confint

from clap_lib.analysis.ladder import Exposure
from clap_lib.report import ladder as rl
from clap_lib.report import ladder_figures as lf
from clap_lib.report import ladder_text as lt
from clap_lib.report.numbered import list_table

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {"gpv_f": "audioset_527", "teacher1": "audioset_527", "teacher2": "audioset_527"}
PUBLISHED |= {n: "speech" for n in ("gpv_b", "vad_c", "a2", "v2", "a2_v2", "sre", "c1")}
DOSES = (0.0, 0.25, 0.5, 1.0)
CHANCE = 1 / 25


def synthetic_networks() -> pd.DataFrame:
    """ladder.csv of the default ladder (23 networks): probe = 0.1 + 0.1 x exposure rank + 0.002 x row (distinct),
    audit score = exposure rank; mn04_random nearly one-dimensional (participation ratio 1.3, probe 0.11)."""
    nets = [(n, "crnn", f"file:{n}", Exposure(k), None, None) for n, k in PUBLISHED.items()]
    nets += [(f"random{s}", "crnn", f"random seed {s}", Exposure("none"), None, None) for s in range(3)]
    for start in ("random", "gpv_b"):
        prefix = "" if start == "random" else f"file:{start}+"
        nets += [
            (
                f"{start}+B+T{g:g}",
                "crnn",
                f"{prefix}train:background+T:{g:g} (top only)",
                Exposure("esc50", g),
                start,
                g,
            )
            for g in DOSES
        ]
    nets += [("mn04_as", "mn04", "file:mn04_as", Exposure("audioset_527"), None, None)]
    nets += [("mn04_random", "mn04", "random seed 0", Exposure("none"), None, None)]
    rows = []
    for i, (name, arch, source, e, start, g) in enumerate(nets):
        probe = 0.11 if name == "mn04_random" else 0.1 + 0.1 * e.rank + 0.002 * i
        sil = 0.5 * probe - 0.05
        rows.append(
            {
                "network": name,
                "architecture": arch,
                "source": source,
                "exposure": e.kind,
                "exposure_label": e.label,
                "exposure_rank": e.rank,
                "t_labels": e.t_labels,
                "g": g,
                "start": start,
                "audit_score": e.rank,
                "silhouette": sil,
                "silhouette_lo": sil - 0.01,
                "silhouette_hi": sil + 0.01,
                "probe": probe,
                "probe_lo": probe - 0.02,
                "probe_hi": probe + 0.02,
                "nn1": probe - 0.05,
                "nn1_lo": probe - 0.07,
                "nn1_hi": probe - 0.03,
                "chance": 0.02,
                "n_clips": 2000,
                "dim": 960 if arch == "mn04" else 256,
                "probe_not_converged": 0,
                "participation_ratio": 1.3 if name == "mn04_random" else 12.0 + 0.1 * i,
            }
        )
    return pd.DataFrame(rows)


def synthetic_runs(nets: pd.DataFrame, dirty=None, unseen=None, spread: float = 0.01) -> pd.DataFrame:
    """ladder_runs.csv: 2 seeds x (unseen, dirty) per network; the seeds are the network's mean -/+ `spread`, so
    the network means are exactly `dirty` (default 0.05 + 0.5 x probe) and `unseen` (default: the random guess,
    +-0.005)."""
    k = np.arange(len(nets))
    means = {
        "dirty": 0.05 + 0.5 * nets["probe"].to_numpy() if dirty is None else np.asarray(dirty),
        "unseen": CHANCE + 0.005 * (k % 3 - 1) if unseen is None else np.asarray(unseen),
    }
    rows = []
    for i, net in enumerate(nets["network"]):
        for lv, m in means.items():
            for seed, sign in ((0, -1), (1, 1)):
                acc = m[i] + sign * spread
                rows.append(
                    {"network": net, "run": f"r{i}{lv}{seed}", "split": 0, "seed": seed, "level": lv}
                    | {"accuracy": acc, "accuracy_frozen": acc, "chance": CHANCE, "n_eval_clips": 200}
                    | {"sil_x_a": 0.0, "sil_E_a": 0.1, "S": 0.2, "seconds": 1.0}
                )
    return pd.DataFrame(rows)


def write_ladder(folder: Path, nets: pd.DataFrame, runs: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text("{}")
    nets.sample(frac=1, random_state=0).to_csv(folder / "ladder.csv", index=False)  # any order on disk
    runs.to_csv(folder / "ladder_runs.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    nets = synthetic_networks()
    rec = rl.records_for({"dir": write_ladder(tmp_path_factory.mktemp("ladder"), nets, synthetic_runs(nets))})
    return rec, rl.analyse(rec, n_boot=300, n_perm=2000)


def test_records_for_loads_the_folder_or_says_in_one_sentence_why_not(tmp_path):
    assert "no controlled experiment" in rl.records_for(None)
    assert rl.records_for({"skipped": "the device budget was spent."}).endswith(
        "was not run here: the device budget was spent."
    )
    (tmp_path / "c").mkdir()
    text = rl.records_for({"dir": tmp_path / "c"})
    assert "ladder.csv and ladder_runs.csv absent" in text and text.count(". ") == 0
    nets = synthetic_networks()
    rec = rl.records_for({"dir": write_ladder(tmp_path / "d", nets, synthetic_runs(nets))})
    assert len(rec.networks) == 23 and len(rec.runs) == 23 * 4
    assert list(rec.networks["exposure_rank"]) == sorted(nets["exposure_rank"])  # least exposure first
    assert rec.networks["exposure"].iloc[-1] == "audioset_527"  # tied with g = 1: the kind orders the tie
    nets.drop(columns="participation_ratio").to_csv(tmp_path / "d" / "ladder.csv", index=False)
    with pytest.raises(ValueError, match=r"ladder.csv lacks the columns \['participation_ratio'\]"):
        rl.load_ladder(tmp_path / "d")
    nets.iloc[1:].to_csv(tmp_path / "d" / "ladder.csv", index=False)
    with pytest.raises(ValueError, match="does not list: \\['gpv_f'\\]"):
        rl.load_ladder(tmp_path / "d")


def test_wilson_is_statsmodels_wilson_interval():
    acc, n = np.array([0.04, 0.5, 0.0, 1.0, 0.125]), np.array([200, 200, 50, 10, 400])
    lo, hi = rl.wilson(acc, n)
    ref = [proportion_confint(a * m, m, method="wilson") for a, m in zip(acc, n)]
    np.testing.assert_allclose(np.c_[lo, hi], ref, atol=1e-6)


def test_accuracy_exactly_linear_in_the_probe_gives_r_1(analysed):
    _, an = analysed
    c = an.correlations["dirty", "probe", "all"]
    assert c.pearson.value == pytest.approx(1.0) and c.spearman.value == pytest.approx(1.0)
    assert c.n_networks == 23 and 0.9 < c.pearson.lo <= c.pearson.hi <= 1 + 1e-12
    assert set(an.correlations) == {(lv, m, s) for lv in rl.LEVELS for m in rl.MEASURES for s in ("all", "crnn")}
    assert an.correlations["dirty", "probe", "crnn"].n_networks == 21
    # the silhouette is linear in the probe here, so it correlates as well
    assert an.correlations["dirty", "silhouette", "all"].pearson.value == pytest.approx(1.0)
    text = lt.correlation_text(c, "dirty", "probe", "all")
    assert "over n = 23 networks, Pearson r = 1.00 [" in text and "excludes 0: a positive correlation" in text


def test_network_means_seed_ranges_and_readings_against_chance(analysed):
    rec, an = analysed
    p = an.points.set_index(["network", "level"])
    row = p.loc[("gpv_f", "dirty")]
    probe = rec.networks.set_index("network").loc["gpv_f", "probe"]
    assert row["accuracy"] == pytest.approx(0.05 + 0.5 * probe)
    assert (row["seed_min"], row["seed_max"]) == pytest.approx((row["accuracy"] - 0.01, row["accuracy"] + 0.01))
    lo, _ = rl.wilson(row["seed_min"], 200)
    _, hi = rl.wilson(row["seed_max"], 200)
    assert (row["lo"], row["hi"]) == pytest.approx((lo, hi))
    assert set(an.points.loc[an.points["level"] == "unseen", "reading"]) == {"indistinguishable"}
    assert set(an.points.loc[an.points["level"] == "dirty", "reading"]) == {"above"}
    text = lt.chance_sentences(an)
    assert "every one of the 23 networks includes the random guess" in text
    assert "no backbone gives zero-shot ability on truly unseen classes here" in text
    assert "dirty (T captions seen: not zero-shot), random guess 0.040: 23 of 23 networks above chance (from " in text
    assert ", the highest); 0 indistinguishable from it" in text


def test_chance_sentence_names_the_networks_above_chance(tmp_path):
    nets = synthetic_networks()
    unseen = np.full(len(nets), CHANCE)
    unseen[0] = 0.2  # gpv_f
    rec = rl.records_for({"dir": write_ladder(tmp_path, nets, synthetic_runs(nets, unseen=unseen))})
    text = lt.chance_sentences(rl.analyse(rec, n_boot=50, n_perm=100))
    assert "unseen (true zero-shot), random guess 0.040: 1 of 23 networks above chance (gpv_f 0.200 [" in text
    assert "; 22 indistinguishable from it" in text and "no backbone gives" not in text


def test_audit_scores_in_exposure_order_give_tau_1(analysed):
    _, an = analysed
    table, tau = an.audit
    assert tau.tau == pytest.approx(1.0) and tau.n == 23 and not tau.exact and tau.p < 0.01
    assert list(table["exposure rank"]) == sorted(table["exposure rank"], reverse=True)
    t = rl.table_audit(an)
    assert t.index.name == "network" and list(t["audit rank"]) == list(range(1, 24))
    assert (
        "Kendall tau-b between the audit's score and the exposure rank over n = 23 networks is 1.00, permutation p "
        in (lt.audit_sentence(an))
    )
    assert "the audit ranks the more exposed networks higher" in lt.audit_sentence(an)


def _orthogonal_noise(nets: pd.DataFrame, scale: float) -> np.ndarray:
    """Noise with zero projection on the design of every coding (constant, probe, t_labels, exposure dummies)."""
    dummies = pd.get_dummies(nets["exposure"]).to_numpy(float)
    X = np.c_[np.ones(len(nets)), nets["probe"], nets["t_labels"], dummies]
    r = np.random.default_rng(0).standard_normal(len(nets))
    r -= X @ np.linalg.lstsq(X, r, rcond=None)[0]
    return scale * r / np.abs(r).max()


@pytest.mark.parametrize("effect", [0.0, 0.1])
def test_the_exposure_coefficient_is_recovered_and_read_by_its_interval(tmp_path, effect):
    nets = synthetic_networks()
    dirty = 0.02 + 0.3 * nets["probe"] + effect * nets["t_labels"] + _orthogonal_noise(nets, 0.01)
    rec = rl.records_for({"dir": write_ladder(tmp_path, nets, synthetic_runs(nets, dirty=dirty))})
    an = rl.analyse(rec, n_boot=50, n_perm=100)
    reg = an.regressions["dirty", "t_labels"]
    coef = reg.coefficients.set_index("term").loc["t_labels"]
    assert coef["coef"] == pytest.approx(effect, abs=1e-9) and reg.n_networks == 23
    kinds = an.regressions["dirty", "exposure"]
    assert kinds.exposure_terms == ("exposure[T.audioset_527]", "exposure[T.esc50]", "exposure[T.speech]")
    text = lt.regression_sentences(an)
    if effect:
        assert coef["lo"] > 0 and reg.p < 0.05
        assert "interval excluding 0: more T labels go with accuracy above what the probe predicts" in text
    else:
        assert coef["lo"] < 0 < coef["hi"] and reg.p == pytest.approx(1.0)
        assert "interval including 0: no effect of T labels beyond the probe that this ladder can claim" in text
    t = rl.table_regressions(an)
    assert len(t) == 2 * (1 + 3)
    assert t.loc[(rl.LEVEL_TEXT["dirty"], rl.CODINGS["exposure"][1], "exposure speech (vs none)")].notna().all()


def test_an_exposure_constant_over_the_networks_gives_no_regression(tmp_path):
    nets = synthetic_networks()
    speech = nets[nets["exposure"] == "speech"]
    rec = rl.records_for({"dir": write_ladder(tmp_path, speech, synthetic_runs(speech))})
    an = rl.analyse(rec, n_boot=50, n_perm=100)
    assert an.regressions["dirty", "t_labels"] == "every network with runs has the same t_labels: nothing to regress on"
    assert "no regression (every network with runs has the same exposure" in lt.regression_sentences(an)
    assert isinstance(an.audit, str) and rl.table_audit(an).empty and lt.audit_sentence(an).startswith("No audit")
    assert rl.dose_networks(an).empty and lt.dose_sentences(an) == "" and lt.dimension_sentences(an) == ""
    assert ("dirty", "probe", "crnn") not in an.correlations  # one architecture: no CRNN-only rows
    labelled = nets[nets["exposure"] != "none"]
    rec = rl.records_for({"dir": write_ladder(tmp_path / "b", labelled, synthetic_runs(labelled))})
    an = rl.analyse(rec, n_boot=50, n_perm=100)
    assert an.regressions["unseen", "exposure"].startswith("no network without labels (exposure none)")
    assert an.regressions["unseen", "t_labels"].n_networks == 19


def test_tables_render_with_their_rows(analysed):
    rec, an = analysed
    for name, t, rows in (
        ("tbl-a", rl.table_networks(an), 23),
        ("tbl-b", rl.table_correlations(an), 8),
        ("tbl-c", rl.table_regressions(an), 8),
        ("tbl-d", rl.table_audit(an), 23),
        ("tbl-e", rl.table_doses(an), 10),
    ):
        assert len(t) == rows, name
        assert f":name: {name}" in list_table(t, "Caption.", name)
    n = rl.table_networks(an)
    assert n.loc["mn04_random", "participation ratio (of dim)"] == "1.3 (960)"
    assert n.loc["gpv_f", "unseen: seed range (seeds)"].endswith("(2)")
    d = rl.table_doses(an)
    assert list(d.loc["random"].index) == ["-", "0", "0.25", "0.5", "1"]
    assert list(d.loc["random", "network"]) == ["random0"] + [f"random+B+T{g:g}" for g in DOSES]


def test_one_seed_per_network_drops_the_seed_range_and_says_the_interval_is_over_clips(tmp_path, analysed):
    nets = synthetic_networks()
    one = synthetic_runs(nets).query("seed == 0")
    rec = rl.records_for({"dir": write_ladder(tmp_path / "ladder", nets, one)})
    an = rl.analyse(rec, n_boot=200, n_perm=500)
    t = rl.table_networks(an)
    assert not [c for c in t.columns if "seed range" in c] and "accuracy, unseen" in t.columns
    row = an.points.set_index(["network", "level"]).loc[("gpv_f", "dirty")]
    assert (row["lo"], row["hi"]) == pytest.approx(rl.wilson(row["accuracy"], 200))  # the one seed's clips only
    n = lt.ladder_numbers(rec)
    assert (n["n_seeds"], n["seeds_text"]) == (1, "1 seed (0)")
    assert "not measured" in n["accuracy_note"] and "seeds" not in n["bars_note"].replace("one seed", "")
    two = lt.ladder_numbers(analysed[0])
    assert two["seeds_text"] == "2 seeds (0 and 1)" and "range over seeds" in two["bars_note"]


def test_dose_and_dimension_sentences(analysed):
    _, an = analysed
    lines = lt.dose_sentences(an).splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["* start random", "* start gpv_b"]
    assert all("higher at g = 1 (intervals apart)" in ln for ln in lines)  # probe 0.1 apart, intervals +-0.02
    assert "accuracy at unseen" in lines[0] and "not distinguishable (intervals overlap)" in lines[0]
    dim = lt.dimension_sentences(an)
    assert dim.startswith("* mn04_random: the variance of its x_a spans about 1.3 of its 960 dimensions")
    assert "a linear probe on it reaches accuracy 0.110 [0.090, 0.130] over the 50 classes (random guess 0.020)" in dim
    assert dim.count("*") == 1


def test_figures_draw_every_network_chance_and_the_fitted_line(analysed):
    _, an = analysed
    fig = lf.figure_scatter(an, "probe")
    dirty = fig.axes[1]
    assert len(dirty.texts) == 23 and dirty.get_title().startswith(rl.LEVEL_TEXT["dirty"] + "; Pearson r = 1.00")
    (chance, fit) = dirty.get_lines()[-2:]
    assert chance.get_ydata()[0] == pytest.approx(CHANCE)
    (x0, x1), (y0, y1) = fit.get_xdata(), fit.get_ydata()
    assert (y1 - y0) / (x1 - x0) == pytest.approx(0.5)  # dirty = 0.05 + 0.5 probe
    assert len(fig.legends[0].get_texts()) == len(set(an.networks["exposure_label"])) + 3
    dose = lf.figure_doses(an)
    assert len(dose.axes) == 3 and [t.get_text() for t in dose.axes[0].get_legend().get_texts()] == [
        "start random",
        "start gpv_b",
    ]
    assert rl.LEVEL_TEXT["unseen"] == dose.axes[1].get_title()


# ----------------------------------------------------------------------------------------------- the page


def test_the_page_without_records_is_one_sentence(monkeypatch, tmp_path):
    text, glued = run_page(monkeypatch, grid_folder(tmp_path), None, "ladder")
    assert text == [rl.records_for(None)] and glued == {}
    text, _ = run_page(monkeypatch, grid_folder(tmp_path / "b"), {"skipped": "no device"}, "ladder")
    assert text == [rl.records_for({"skipped": "no device"})]
    (tmp_path / "c").mkdir()
    text, _ = run_page(monkeypatch, grid_folder(tmp_path / "d"), {"dir": tmp_path / "c"}, "ladder")
    assert len(text) == 1 and "has no ladder of backbones" in text[0]


def test_the_page_with_records_glues_every_number_it_cites_and_numbers_what_it_refers_to(monkeypatch, tmp_path):
    nets = synthetic_networks()
    folder = write_ladder(tmp_path / "records", nets, synthetic_runs(nets))
    text, glued = run_page(monkeypatch, grid_folder(tmp_path), {"dir": folder}, "ladder")
    page = "\n".join(text)
    cited = set(re.findall(r"\{glue:text\}`([a-z_0-9]+)", page)) | set(re.findall(r"\{glue:figure\} (\w+)", page))
    assert cited and cited <= set(glued)
    assert (glued["n_networks"], glued["n_published"], glued["n_random_crnn"], glued["n_dose"]) == (23, 10, 3, 8)
    assert (glued["n_other_arch"], glued["other_archs"], glued["dose_starts"]) == (
        2,
        "mn04_as and mn04_random",
        "random and gpv_b",
    )
    assert (glued["doses"], glued["seeds"], glued["n_runs"]) == ("0, 0.25, 0.5 and 1", "0 and 1", 92)
    assert glued["chance"] == pytest.approx(CHANCE) and glued["n_eval_clips"] == 200
    labels = set(re.findall(r":name: ([a-z0-9-]+)", page))
    assert set(re.findall(r"\{numref\}`([a-z0-9-]+)`", page)) <= labels
    assert {
        "tbl-ladder-networks",
        "tbl-ladder-correlations",
        "tbl-ladder-regression",
        "tbl-ladder-audit",
        "tbl-ladder-dose",
        "fig-ladder-probe",
        "fig-ladder-silhouette",
        "fig-ladder-dose",
    } <= labels
    assert "no backbone gives zero-shot ability on truly unseen classes here" in page
    assert "mn04_random: the variance of its x_a spans about 1.3" in page
