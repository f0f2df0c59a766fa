"""clap_lib/uncertainty.py: intervals of the paper's metrics, seed summaries, correlation reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clap_lib.analysis import metrics
from clap_lib.analysis.uncertainty import (
    Interval,
    bootstrap_weights,
    correlation_report,
    label_subsample_interval,
    metric_intervals,
    seed_intervals,
    seed_summary,
    subsample_intervals,
    topo_clip_intervals,
    weighted_silhouettes,
)

TOPO = ("topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")


def clusters(n_cls=25, per=8, dim=256, noise=0.3, seed=0, shuffle=False):
    """Clips around class centres; x_a = clips, E_a = a random linear map of them (+ a little noise),
    E_t = the class centres mapped the same way, x_t = a random linear image of E_t (the label text space)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_cls, dim))
    y = np.repeat(np.arange(n_cls), per)
    x_a = centres[y] + noise * rng.normal(size=(len(y), dim))
    M = rng.normal(size=(dim, 64)) / np.sqrt(dim)
    E_a = x_a @ M
    E_t = centres @ M
    x_t = E_t @ rng.normal(size=(64, 96))
    if shuffle:
        y = rng.permutation(y)
    return {"x_a": x_a, "E_a": E_a, "y": y, "x_t": x_t, "E_t": E_t}


# ----------------------------------------------------------------------------- Interval


def test_interval_format_and_columns():
    iv = Interval(0.6123, 0.5512, 0.6649)
    assert iv.format() == "0.61 [0.55, 0.66]"
    assert iv.format(3) == "0.612 [0.551, 0.665]"
    assert iv.contains(0.6) and not iv.contains(0.7)
    assert iv.width == pytest.approx(0.1137)
    assert iv.as_columns("accuracy") == {"accuracy": 0.6123, "accuracy_lo": 0.5512, "accuracy_hi": 0.6649}


# ----------------------------------------------------------------------------- weighted silhouette


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_weighted_silhouette_with_unit_weights_is_the_silhouette(metric):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(31, 5))
    y = np.r_[np.repeat([0, 1, 2], 10), 3]  # class 3 is a singleton: s = 0 as in sklearn
    got = weighted_silhouettes(X, y, np.ones((1, len(y))), metric=metric)[0]
    assert got == pytest.approx(metrics.silhouette(X, y, metric=metric), abs=1e-12)


def test_weighted_silhouette_by_hand():
    # 1-D, euclidean. Class 0 = {0, 1}, class 1 = {10, 11}; clip 0 drawn twice, clip 1 not drawn.
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    w = np.array([[2.0, 0.0, 1.0, 1.0]])
    # clip 0: its class holds only copies of itself -> s = 0 (not 1: a copy at distance 0 is not a neighbour)
    # clip 2: a = 1, b = (2*10 + 0*9)/2 = 10 -> 0.9;  clip 3: a = 1, b = 11 -> 10/11
    expected = (2 * 0 + 1 * 0.9 + 1 * 10 / 11) / 4
    assert weighted_silhouettes(X, y, w, metric="euclidean")[0] == pytest.approx(expected)


def test_bootstrap_weights_keep_class_counts():
    y = np.r_[np.zeros(3, int), np.ones(5, int), np.full(2, 7)]
    W = bootstrap_weights(y, 50, np.random.default_rng(0))
    assert W.shape == (50, 10)
    assert np.all(W.sum(axis=1) == 10)
    for c, n in ((0, 3), (1, 5), (7, 2)):
        assert np.all(W[:, y == c].sum(axis=1) == n)


# ----------------------------------------------------------------------------- metric_intervals


def test_separated_clusters_give_accuracy_one_and_high_silhouette():
    sel = clusters(n_cls=10, per=6, dim=32, noise=0.1)
    iv = metric_intervals(sel, n_boot=100, seed=0)
    assert set(iv) == {"accuracy", "sil_x_a", "sil_E_a", "sil_diff", *TOPO, *(f"{t}_excess" for t in TOPO)}
    assert (iv["accuracy"].value, iv["accuracy"].lo, iv["accuracy"].hi) == (1.0, 1.0, 1.0)
    assert iv["sil_x_a"].value > 0.8 and iv["sil_E_a"].value > 0.5
    # point estimates are exactly those of metrics.table_metrics (what run_metrics reports)
    tm = metrics.table_metrics(sel, n_perm=20)
    for k in ("accuracy", "sil_x_a", "sil_E_a", *TOPO, *(f"{t}_excess" for t in TOPO)):
        assert iv[k].value == tm[k], k
    mE = metrics.label_means(sel["E_a"], sel["y"])[0]
    assert iv["topo_Ea_Et"].value == metrics.topological_similarity(mE, sel["E_t"]).S
    # topo(x_a, E_a) is per clip (60 points here), not on the 10 label means
    assert iv["topo_xa_Ea"].value == metrics.topological_similarity(sel["x_a"], sel["E_a"]).S
    assert iv["sil_diff"].value == pytest.approx(iv["sil_x_a"].value - iv["sil_E_a"].value)
    for name, i in iv.items():
        assert i.lo <= i.value <= i.hi, name
        assert i.level == 0.95


def test_shuffled_labels_give_silhouette_near_zero_and_chance_accuracy():
    # tight clusters, labels shuffled: no label structure left -> silhouette <= 0 (it goes negative, because
    # b(i) is a minimum over noisy class means), accuracy near chance (0.1)
    iv = metric_intervals(clusters(n_cls=10, per=8, dim=32, noise=0.1, shuffle=True), n_boot=100)
    assert iv["sil_x_a"].hi < 0.05 and iv["sil_E_a"].hi < 0.05
    assert iv["accuracy"].value < 0.35
    # no cluster structure at all (noise >> centre spread) -> silhouette near 0 either way
    flat = metric_intervals(clusters(n_cls=10, per=8, dim=32, noise=20.0, shuffle=True), n_boot=100)
    assert abs(flat["sil_x_a"].value) < 0.1


def test_clip_level_topo_interval_is_over_clip_subsets():
    # x_a -> E_a linear and almost cosine-preserving at the clip level: S near 1; the interval comes from
    # subsets of the 200 clips (not of the 25 labels), so it equals subsample_intervals on the clip clouds
    sel = clusters(n_cls=25, per=8, dim=256, noise=1.0)
    iv = metric_intervals(sel, n_boot=30, seed=0)
    seed = int(np.random.SeedSequence(0).spawn(2)[1].generate_state(1)[0])
    direct = subsample_intervals(sel["x_a"], sel["E_a"], 30, seed)
    assert iv["topo_xa_Ea"] == direct["S"] and iv["topo_xa_Ea_excess"] == direct["excess"]
    assert iv["topo_xa_Ea"].value > 0.6


def test_intervals_shrink_with_more_clips():
    def widths(per):
        iv = metric_intervals(clusters(n_cls=10, per=per, dim=16, noise=1.4, seed=3), n_boot=200, seed=0)
        return iv["accuracy"].width, iv["sil_x_a"].width

    small, large = widths(4), widths(40)
    assert large[0] < small[0] and large[1] < small[1]


def test_intervals_are_reproducible_and_nested_by_level():
    sel = clusters(n_cls=12, per=5, dim=16, noise=1.0)
    a = metric_intervals(sel, n_boot=80, seed=5)
    assert a == metric_intervals(sel, n_boot=80, seed=5)
    narrow = metric_intervals(sel, n_boot=80, seed=5, level=0.5)
    for k in a:
        assert a[k].lo <= narrow[k].lo <= narrow[k].hi <= a[k].hi, k


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_cls=st.integers(8, 12),
    per=st.integers(2, 5),
    noise=st.floats(0.05, 3.0),
    level=st.sampled_from([0.5, 0.8, 0.95]),
)
def test_interval_properties(seed, n_cls, per, noise, level):
    sel = clusters(n_cls=n_cls, per=per, dim=8, noise=noise, seed=seed)
    iv = metric_intervals(sel, n_boot=40, seed=seed, level=level)
    bounds = {
        "accuracy": (0, 1),
        "sil_x_a": (-1, 1),
        "sil_E_a": (-1, 1),
        "sil_diff": (-2, 2),
        "topo_xa_Ea": (0, 1),
        "topo_xt_Et": (0, 1),
        "topo_Ea_Et": (0, 1),
        "topo_Ea_Et_excess": (-1, 1),
    }
    for k, (b_lo, b_hi) in bounds.items():
        assert b_lo <= iv[k].lo <= iv[k].hi <= b_hi, k
    # the point estimate is always inside the observed range of the statistic, and so is the percentile interval
    assert 0 <= iv["accuracy"].value <= 1
    # x_t -> E_t is linear here but not cosine-preserving; S(x_t, E_t) is still a valid overlap in [0, 1]
    assert 0 <= iv["topo_xt_Et"].value <= 1


def test_emb_sel_errors_name_the_problem():
    sel = clusters(n_cls=6, per=3, dim=8)
    with pytest.raises(KeyError, match="x_t"):
        metric_intervals({k: v for k, v in sel.items() if k != "x_t"})
    bad = dict(sel, y=np.where(sel["y"] == 5, 4, sel["y"]))  # label 5 loses its clips
    with pytest.raises(ValueError, match=r"labels \[5\]"):
        metric_intervals(bad)


# ----------------------------------------------------------------------------- topology intervals


def test_label_subsample_interval_identical_clouds_is_degenerate_at_one():
    P = np.random.default_rng(0).normal(size=(25, 8))
    iv = label_subsample_interval(P, P.copy(), n_boot=50)
    assert (iv.value, iv.lo, iv.hi) == (1.0, 1.0, 1.0)


def test_label_subsample_interval_independent_clouds_contains_value():
    rng = np.random.default_rng(4)
    iv = label_subsample_interval(rng.normal(size=(25, 8)), rng.normal(size=(25, 8)), n_boot=200)
    assert iv.lo <= iv.value <= iv.hi and iv.width > 0
    with pytest.raises(ValueError, match="label subsampling"):
        label_subsample_interval(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))
    with pytest.raises(ValueError, match="fraction"):
        label_subsample_interval(rng.normal(size=(25, 3)), rng.normal(size=(25, 3)), fraction=1.0)


def test_topo_clip_intervals():
    sel = clusters(n_cls=12, per=6, dim=16, noise=0.5)
    iv = topo_clip_intervals(sel, n_boot=60)
    assert set(iv) == {"topo_xa_Ea_means", "topo_Ea_Et"}
    for i in iv.values():
        assert 0 <= i.lo <= i.value <= i.hi <= 1


# ----------------------------------------------------------------------------- seeds, correlations


def test_seed_summary_by_hand():
    df = pd.DataFrame(
        {
            "pretraining": ["dirty"] * 3 + ["none"],
            "training": ["clean"] * 3 + ["dirty"],
            "seed": [0, 1, 2, 0],
            "accuracy": [0.5, 0.6, 0.7, 0.1],
            "accuracy_lo": [0.4, 0.5, 0.6, 0.0],
        }
    )
    out = seed_summary(df)
    assert list(out.columns) == [
        "pretraining",
        "training",
        "n_seeds",
        "accuracy_mean",
        "accuracy_std",
        "accuracy_min",
        "accuracy_max",
    ]
    r = out.iloc[0]
    assert (r.pretraining, r.training, r.n_seeds) == ("dirty", "clean", 3)
    assert r.accuracy_mean == pytest.approx(0.6) and r.accuracy_std == pytest.approx(0.1)
    assert (r.accuracy_min, r.accuracy_max) == (0.5, 0.7)
    assert np.isnan(out.iloc[1].accuracy_std) and out.iloc[1].n_seeds == 1
    with pytest.raises(KeyError, match="seed"):
        seed_summary(df.drop(columns="seed"))


def test_seed_intervals_by_hand():
    # three seeds, same test clips: mean 0.6, sd 0.1 -> seed part t_{2, 0.975} * 0.1 / sqrt(3);
    # clip part = mean half-widths: lower (0.1 + 0.1 + 0.1) / 3 = 0.1, upper (0.1 + 0.2 + 0.05) / 3
    df = pd.DataFrame(
        {
            "pretraining": ["dirty"] * 3 + ["none"],
            "training": ["clean"] * 3 + ["dirty"],
            "seed": [0, 1, 2, 0],
            "accuracy": [0.5, 0.6, 0.7, 0.1],
            "accuracy_lo": [0.4, 0.5, 0.6, 0.05],
            "accuracy_hi": [0.6, 0.8, 0.75, 0.2],
        }
    )
    out = seed_intervals(df).set_index(["pretraining", "training"])
    seed_part = 4.302652729911275 * 0.1 / np.sqrt(3)
    r = out.loc[("dirty", "clean")]
    assert r.n_seeds == 3 and r.accuracy == pytest.approx(0.6) and r.accuracy_sd == pytest.approx(0.1)
    assert r.accuracy_lo == pytest.approx(0.6 - np.hypot(seed_part, 0.1))
    assert r.accuracy_hi == pytest.approx(0.6 + np.hypot(seed_part, 0.35 / 3))
    one = out.loc[("none", "dirty")]  # one seed: its own interval
    assert (one.accuracy, one.accuracy_lo, one.accuracy_hi) == pytest.approx((0.1, 0.05, 0.2))
    assert np.isnan(one.accuracy_sd)
    # without per-seed intervals: the t interval over seeds alone; one seed has none
    bare = seed_intervals(df.drop(columns=["accuracy_lo", "accuracy_hi"])).set_index(["pretraining", "training"])
    assert bare.loc[("dirty", "clean"), "accuracy_hi"] == pytest.approx(0.6 + seed_part)
    assert np.isnan(bare.loc[("none", "dirty"), "accuracy_lo"])
    from scipy import stats

    assert seed_part == pytest.approx(stats.t.interval(0.95, 2, loc=0.6, scale=0.1 / np.sqrt(3))[1] - 0.6)
    with pytest.raises(KeyError, match="seed"):
        seed_intervals(df.drop(columns="seed"))


def test_seed_intervals_cover_the_expected_cell_value():
    # 3 seeds x 8 test clips per class, seed effect sd 0.05, clip noise shared by the seeds: the interval of the
    # mean covers the true cell value (0.5) in at least ~95 % of 300 simulated cells (derandomised)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(300):
        clip_err = rng.normal(0, 0.04)  # same test clips for every seed
        v = 0.5 + clip_err + rng.normal(0, 0.05, size=3)
        half = 1.96 * 0.04
        df = pd.DataFrame(
            {
                "pretraining": "dirty",
                "training": "dirty",
                "seed": [0, 1, 2],
                "accuracy": v,
                "accuracy_lo": v - half,
                "accuracy_hi": v + half,
            }
        )
        r = seed_intervals(df).iloc[0]
        hits += r.accuracy_lo <= 0.5 <= r.accuracy_hi
    assert hits / 300 >= 0.92


def test_correlation_report():
    x = np.arange(6.0)
    rep = correlation_report(x, 2 * x + 1, n_perm=2000, n_boot=200)
    assert rep["r"] == pytest.approx(1.0) and rep["n"] == 6
    assert rep["p"] < 1e-6 and rep["p_perm"] < 0.01
    assert rep["ci_lo"] == pytest.approx(1.0) and rep["ci_hi"] == pytest.approx(1.0)
    flat = correlation_report(x, np.ones(6))
    assert all(np.isnan(flat[k]) for k in ("r", "p", "p_perm", "ci_lo", "ci_hi"))


def test_combine_seeds_edge_cases():
    from clap_lib.analysis.uncertainty import combine_seeds

    assert combine_seeds([0.4], [0.3], [0.5]) == (0.4, 0.3, 0.5)  # one seed: its interval as given
    m, lo, hi = combine_seeds([0.4])
    assert m == 0.4 and np.isnan(lo) and np.isnan(hi)  # one seed, no interval: none
    # a NaN seed is dropped with its interval: the other two give 0.5 +- t_{1, 0.975} * sd / sqrt(2) (+) 0.1
    m, lo, hi = combine_seeds([0.4, np.nan, 0.6], [0.3, np.nan, 0.5], [0.5, np.nan, 0.7])
    half = np.hypot(12.706204736174698 * np.std([0.4, 0.6], ddof=1) / np.sqrt(2), 0.1)
    assert (m, lo, hi) == pytest.approx((0.5, 0.5 - half, 0.5 + half))
    assert all(np.isnan(combine_seeds([np.nan, np.nan])))
