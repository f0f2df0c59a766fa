"""The controlled experiment's numbers (clap_lib.analysis.controlled) on synthetic records whose answers are known by
construction (tests/controlled_records.py), cross-checked with pandas / numpy / scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from controlled_records import synthetic_records
from scipy import stats

from clap_lib.analysis import controlled as c
from clap_lib.analysis.hierarchical import hierarchical_bootstrap
from clap_lib.data.esc50 import ESC50_CLASSES


def test_the_fixture_writes_exactly_the_record_columns_and_passes_the_check():
    r = synthetic_records(seeds=(0,), dose_seeds=(0,), doses=(0.5,))
    assert tuple(r.runs.columns) == c.RUN_COLUMNS and tuple(r.clips.columns) == c.CLIP_COLUMNS
    assert tuple(r.classes.columns) == c.CLASS_COLUMNS
    c.check_records(r.runs, r.clips, r.classes)
    with pytest.raises(ValueError, match=r"clips.csv lacks the columns \['sil_E_a'\]"):
        c.check_records(r.runs, r.clips.drop(columns="sil_E_a"), r.classes)
    with pytest.raises(ValueError, match=r"classes.csv lacks the columns \['n_clean_pairs'\]"):
        c.check_records(r.runs, r.clips, r.classes.drop(columns="n_clean_pairs"))


def test_pretrainings_in_the_papers_order_then_other_backbones():
    runs = pd.DataFrame({"pretraining": ["mn04_as", "none", "dirty", "none", "clean"]})
    assert c.pretrainings(runs) == ["dirty", "clean", "none", "mn04_as"]


def test_condition_matrix_pools_both_splits_split_then_clip():
    r = synthetic_records(pretrainings=("dirty",), seeds=(0, 1), n_classes=2, clips_per_class=2, doses=())
    shuffled = r.clips.sample(frac=1.0, random_state=0)
    m = c.condition_matrix(shuffled, "dirty", "clean")
    assert m.X.shape == (2, 8) and m.seeds == (0, 1)
    assert list(m.columns) == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 1000), (1, 1001), (1, 1002), (1, 1003)]
    assert list(m.strata) == [ESC50_CLASSES[k] for k in (0, 0, 1, 1, 2, 2, 3, 3)]
    sel = r.clips.query("level == 'clean' and seed == 1 and split == 1 and clip == 1002")
    assert m.X[1, 6] == sel["correct"].item()
    assert c.condition_matrix(r.clips, "dirty", "clean", seeds=[1]).X.tolist() == [m.X[1].tolist()]
    with pytest.raises(ValueError, match="not every seed has every clip"):
        c.condition_matrix(r.clips.drop(index=sel.index), "dirty", "clean")
    with pytest.raises(ValueError, match="evaluated twice"):
        c.condition_matrix(pd.concat([r.clips, sel]), "dirty", "clean")
    with pytest.raises(ValueError, match="no evaluated clip of condition none/clean"):
        c.condition_matrix(r.clips, "none", "clean")


def test_accuracy_exactly_one_half_on_two_seeds_and_four_clips():
    """Seed 0 gets clips [1, 1, 0, 0] right, seed 1 [1, 0, 0, 1]: the grand mean is 0.5, which is chance (2
    classes), and flipping right and wrong maps the design onto itself, so the interval is symmetric about it."""
    r = synthetic_records(
        pretrainings=("dirty",), levels=("dirty",), seeds=(0, 1), doses=(), splits=(0,), n_classes=2,
        accuracy=lambda *_: 0.5,
    )  # fmt: skip
    m = c.condition_matrix(r.clips, "dirty", "dirty")
    assert m.X.tolist() == [[1, 1, 0, 0], [1, 0, 0, 1]]
    t = c.accuracy_table(r.clips, r.runs, n_boot=20_000).iloc[0]
    assert t["value"] == 0.5 and t["chance"] == 0.5 and (t["n_seeds"], t["n_clips"]) == (2, 4)
    assert t["lo"] < 0.5 < t["hi"] and t["lo"] + t["hi"] == pytest.approx(1.0)
    assert t["p"] > 0.9


def test_accuracy_table_is_the_mean_of_the_runs_with_the_hierarchical_interval():
    r = synthetic_records(seeds=(0, 1, 2), doses=())
    t = c.accuracy_table(r.clips, r.runs, n_boot=500).set_index(["pretraining", "level"])
    by_runs = r.runs.groupby(["pretraining", "level"])["accuracy"].mean()
    assert t["value"].to_dict() == pytest.approx(by_runs.reindex(t.index).to_dict())
    assert list(t.index.get_level_values("level")[:4]) == list(c.GRID_LEVELS)
    m = c.condition_matrix(r.clips, "clean", "unseen")
    direct = hierarchical_bootstrap(m.X, n_boot=500, strata=m.strata, null=0.25)
    assert (t.loc[("clean", "unseen"), ["lo", "hi", "p"]].tolist()) == [direct.lo, direct.hi, direct.p]


def _at_chance(p: str, level: str, f: float, seed: int) -> float:
    return 0.25 if level == "unseen" else 1.0


def test_unseen_exactly_at_chance_is_not_distinguishable_and_dirty_is_above():
    r = synthetic_records(pretrainings=("none",), seeds=(0, 1, 2), doses=(), clips_per_class=4, accuracy=_at_chance)
    t = c.accuracy_table(r.clips, r.runs, n_boot=4000).set_index("level")
    assert t.loc["unseen", "value"] == 0.25 == t.loc["unseen", "chance"]
    assert t.loc["unseen", "lo"] < 0.25 < t.loc["unseen", "hi"] and t.loc["unseen", "p"] > 0.5
    assert t.loc["dirty", "value"] == 1.0 and t.loc["dirty", "lo"] == 1.0 and t.loc["dirty", "p"] == 0.0


def test_paired_difference_of_identical_conditions_is_exactly_zero():
    same = lambda p, level, f, seed: {"dirty": 0.75, "unseen": 0.25}.get(level, 0.5)  # noqa: E731
    r = synthetic_records(seeds=(0, 1), doses=(), accuracy=same)
    t = c.contrast_table(r.clips, r.runs, n_boot=500).set_index(["pretraining", "contrast"])
    assert len(t) == 9 and list(t.loc["dirty"].index) == ["clean - matched", "dirty - matched", "clean - unseen"]
    row = t.loc[("none", "clean - matched")]
    assert (row["value"], row["lo"], row["hi"], row["p"]) == (0.0, 0.0, 0.0, 1.0)
    acc = c.accuracy_table(r.clips, r.runs, n_boot=10).set_index(["pretraining", "level"])["value"]
    for (p, _), x in t.iterrows():  # a paired mean difference is the difference of the means
        assert x["value"] == pytest.approx(acc[(p, x["a"])] - acc[(p, x["b"])])
    assert t.loc[("dirty", "clean - unseen"), "lo"] > 0 and t.loc[("dirty", "clean - unseen"), "p"] < 0.01


def test_compare_refuses_conditions_on_other_seeds():
    r = synthetic_records(pretrainings=("dirty",), seeds=(0, 1, 2), doses=())
    a = c.condition_matrix(r.clips, "dirty", "dirty")
    with pytest.raises(ValueError, match="not on the same seeds and clips"):
        c.compare(a, c.condition_matrix(r.clips, "dirty", "unseen", seeds=[0, 1]))


def test_silhouette_table_means_of_clip_samples_and_run_means():
    r = synthetic_records(seeds=(0, 1), doses=())
    runs = r.runs.copy()
    runs.loc[(runs["pretraining"] == "none") & (runs["level"] == "clean"), ["gru", "x_a_shift"]] = [False, np.nan]
    t = c.silhouette_table(r.clips, runs, n_boot=300).set_index(["pretraining", "level"])
    clip_means = r.clips.groupby(["pretraining", "level"])[["sil_x_a", "sil_E_a"]].mean().reindex(t.index)
    np.testing.assert_allclose(t[["sil_x_a", "sil_E_a"]], clip_means)
    # the stage's per-run silhouette is sklearn's silhouette_score, the mean of the samples: the same number
    run_means = runs.groupby(["pretraining", "level"])[["sil_x_a", "sil_E_a", "sil_x_a_before"]].mean()
    np.testing.assert_allclose(t[["sil_x_a", "sil_E_a", "sil_x_a_before"]], run_means.reindex(t.index))
    assert np.isnan(t.loc[("none", "clean"), "x_a_shift"]) and t.loc[("none", "clean"), "gru_share"] == 0.0
    assert t.loc[("dirty", "dirty"), "x_a_shift"] == pytest.approx(
        runs.query("pretraining == 'dirty' and level == 'dirty'")["x_a_shift"].mean()
    )
    assert (t["sil_x_a_lo"] <= t["sil_x_a"]).all() and (t["sil_x_a"] <= t["sil_x_a_hi"]).all()


def test_silhouette_constant_over_seeds_and_clips_has_a_zero_width_interval():
    r = synthetic_records(pretrainings=("dirty",), levels=("dirty",), seeds=(0, 1), doses=())
    clips = r.clips.assign(sil_E_a=0.3)
    row = c.silhouette_table(clips, r.runs, levels=("dirty",), n_boot=200).iloc[0]
    assert (row["sil_E_a"], row["sil_E_a_lo"], row["sil_E_a_hi"]) == pytest.approx((0.3, 0.3, 0.3))


def test_topology_table_means_over_runs_and_its_interval_is_scipys_percentile_bootstrap():
    r = synthetic_records(seeds=(0, 1, 2), doses=())
    t = c.topology_table(r.runs, n_boot=200).set_index(["pretraining", "level"])
    means = r.runs.groupby(["pretraining", "level"])[["S", "S_chance", "S_excess", "S_noself"]].mean()
    np.testing.assert_allclose(t[["S", "S_chance", "S_excess", "S_noself"]], means.reindex(t.index))
    assert (t["n_runs"] == 6).all()
    v = np.random.default_rng(3).normal(0.5, 0.1, size=12)
    lo, hi = c.run_interval(v, n_boot=40_000, seed=1)
    ref = stats.bootstrap((v,), np.mean, n_resamples=40_000, method="percentile", random_state=2).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=0.004)
    assert c.run_interval([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4))
    with pytest.raises(ValueError, match="finite"):
        c.run_interval([0.4, np.nan])


def _linear_dose(p: str, level: str, f: float, seed: int) -> float:
    """0.25 + 0.7 f on the dose seeds; the unseen runs of seed 2 (not a dose seed) get nothing right."""
    f = {"dirty": 1.0, "unseen": 0.0}.get(level, f)
    return 0.0 if level == "unseen" and seed == 2 else 0.25 + 0.7 * f if f == f else 0.5


def test_dose_curve_is_monotone_by_construction_and_takes_its_ends_from_the_dose_seeds():
    r = synthetic_records(pretrainings=("clean",), seeds=(0, 1, 2), dose_seeds=(0, 1), clips_per_class=10,
                          accuracy=_linear_dose)  # fmt: skip
    d = c.dose_curve(r.clips, r.runs, "clean", dose_seeds=(0, 1), n_boot=400)
    assert d["f"].tolist() == [0.0, 0.05, 0.1, 0.25, 0.5, 1.0]
    # 40 clips per split: round(40 (0.25 + 0.7 f)) right = 10, 11, 13, 17, 24, 38
    assert d["value"].tolist() == pytest.approx([10 / 40, 11 / 40, 13 / 40, 17 / 40, 24 / 40, 38 / 40])
    assert np.all(np.diff(d["value"]) > 0) and (d["n_seeds"] == 2).all() and (d["chance"] == 0.25).all()
    unseen_all = r.runs.query("level == 'unseen'")["accuracy"].mean()
    assert unseen_all == pytest.approx(2 / 3 * 0.25)  # seed 2 is left out of the curve's f = 0
    np.testing.assert_allclose(d["diff_value"], d["value"] - d["value"].iloc[0])
    assert (d.iloc[0][["diff_value", "diff_lo", "diff_hi", "diff_p"]].tolist()) == [0.0, 0.0, 0.0, 1.0]
    assert d.iloc[-1]["diff_lo"] > 0 and d.iloc[0]["p"] > 0.5 and d.iloc[-1]["p"] == 0.0
    assert c.dose_curve(r.clips, r.runs, "clean", (0, 1), doses=[0.5], n_boot=50)["f"].tolist() == [0.0, 0.5, 1.0]


def test_clean_classes_split_by_surviving_pairs_by_hand():
    r = synthetic_records(pretrainings=("dirty",), seeds=(0, 1), doses=())
    odd = {ESC50_CLASSES[k] for k in (1, 3, 5, 7)}  # default_surviving: odd classes keep pairs
    clips = r.clips.assign(correct=r.clips["category"].isin(odd).astype(int))
    t = c.clean_class_split(clips, r.classes, "dirty", n_boot=300).set_index("group")
    assert t.loc["no pair survived", ["value", "lo", "hi"]].tolist() == [0.0, 0.0, 0.0]
    assert t.loc["some pairs survived", ["value", "lo", "hi"]].tolist() == [1.0, 1.0, 1.0]
    assert t.loc["difference", ["value", "lo", "hi", "p"]].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert t.loc["no pair survived", "n_classes"] == 4 and (t["pretraining"] == "dirty").all()


def test_clean_class_split_with_membership_varying_by_seed():
    surviving = lambda split, seed, k: 0 if (k + seed) % 2 == 0 else 5  # noqa: E731
    r = synthetic_records(pretrainings=("none",), seeds=(0, 1, 2), doses=(), surviving=surviving)
    t = c.clean_class_split(r.clips, r.classes, "none", n_boot=300).set_index("group")
    joined = r.clips.query("level == 'clean'").merge(r.classes, on=["split", "seed", "category"])
    hand = joined.groupby(joined["n_clean_pairs"] > 0)["correct"].mean()
    assert t.loc["no pair survived", "value"] == pytest.approx(hand[False])
    assert t.loc["some pairs survived", "value"] == pytest.approx(hand[True])
    assert t.loc["difference", "value"] == pytest.approx(hand[True] - hand[False])


def test_clean_class_split_with_every_class_surviving_is_the_plain_bootstrap():
    r = synthetic_records(pretrainings=("none",), seeds=(0, 1), doses=(), surviving=lambda *_: 3)
    t = c.clean_class_split(r.clips, r.classes, "none", n_boot=300).set_index("group")
    plain = c.estimate(c.condition_matrix(r.clips, "none", "clean"), n_boot=300)
    assert t.loc["some pairs survived", ["value", "lo", "hi"]].tolist() == [plain.value, plain.lo, plain.hi]
    assert t.loc["no pair survived", ["value", "lo", "hi"]].isna().all()
    with pytest.raises(ValueError, match="lacks a"):
        c.clean_class_split(r.clips, r.classes.iloc[1:], "none", n_boot=10)


def test_condition_correlation_is_pearson_on_condition_means():
    r = synthetic_records(seeds=(0, 1, 2), doses=())
    got = c.condition_correlation(r.runs, "accuracy", "sil_E_a", n_boot=500, n_perm=2000)
    means = r.runs.groupby(["pretraining", "level"])[["accuracy", "sil_E_a", "S"]].mean()
    assert got.r == pytest.approx(stats.pearsonr(means["accuracy"], means["sil_E_a"]).statistic)
    assert (got.n_conditions, got.n_seeds, got.a, got.b) == (12, 3, "accuracy", "sil_E_a")
    assert got.lo <= got.r <= got.hi and 0 <= got.p_perm <= 1
    log = c.condition_correlation(r.runs, "accuracy", "S", log_a=True, n_boot=100, n_perm=100)
    assert log.a == "log accuracy"
    assert log.r == pytest.approx(stats.pearsonr(np.log(means["accuracy"]), means["S"]).statistic)


def test_condition_correlation_of_an_exact_line_is_one_in_every_seed_resample():
    r = synthetic_records(seeds=(0, 1, 2), doses=(), accuracy=lambda p, lv, f, s: c.GRID_LEVELS.index(lv) / 8 + s / 16)
    got = c.condition_correlation(r.runs, "accuracy", "S", n_boot=300, n_perm=500)  # fixture: S = 0.3 + 0.5 acc
    assert (got.r, got.lo, got.hi) == pytest.approx((1.0, 1.0, 1.0))
    assert got.p_perm < 0.01


def test_seed_condition_means_need_every_seed():
    r = synthetic_records(pretrainings=("dirty",), seeds=(0, 1), doses=())
    wide = c.seed_condition_means(r.runs, "accuracy")
    assert list(wide.columns) == [0, 1] and list(wide.index) == [("dirty", lv) for lv in c.GRID_LEVELS]
    assert wide.loc[("dirty", "clean"), 1] == r.runs.query("level == 'clean' and seed == 1")["accuracy"].mean()
    with pytest.raises(ValueError, match="every seed"):
        c.seed_condition_means(r.runs.query("not (level == 'clean' and seed == 1)"), "accuracy")
