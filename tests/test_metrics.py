"""clap_lib/metrics.py: zero-shot accuracy, silhouette, topological similarity, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import special_ortho_group
from sklearn.metrics import silhouette_score

from clap_lib.analysis.metrics import (
    TopoResult,
    chance_knn_overlap,
    knn_overlap_curve,
    label_means,
    pairwise_distances,
    per_class_accuracy,
    permutation_null_S,
    permutation_p_value,
    silhouette,
    silhouette_per_class,
    topological_similarity,
    zero_shot_accuracy,
    zero_shot_predict,
)
from clap_lib.analysis.resampling import PearsonResult, pearson, pearson_bootstrap_ci, pearson_permutation

# ----------------------------------------------------------------------------- topology


def naive_curve(P, Q, metric):
    """Reference: explicit neighbour sets for each k (self forced first, stable ties)."""
    n = len(P)
    DP, DQ = pairwise_distances(P, metric), pairwise_distances(Q, metric)
    out = []
    for k in range(1, n + 1):
        tot = 0
        for i in range(n):
            np_i = [i] + [j for j in np.argsort(DP[i], kind="stable") if j != i]
            nq_i = [i] + [j for j in np.argsort(DQ[i], kind="stable") if j != i]
            tot += len(set(np_i[:k]) & set(nq_i[:k]))
        out.append(tot / (n * k))
    return np.array(out)


def test_identical_clouds_give_one():
    X = np.random.default_rng(0).normal(size=(20, 5))
    for metric in ("cosine", "euclidean"):
        np.testing.assert_array_equal(knn_overlap_curve(X, X, metric), np.ones(20))


def test_cosine_invariant_transforms_give_one():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(25, 6))
    R = special_ortho_group.rvs(6, random_state=2)
    Q = (P @ R) * rng.uniform(0.1, 10.0, size=(25, 1))  # rotate, then rescale each point
    np.testing.assert_allclose(knn_overlap_curve(P, Q, "cosine"), np.ones(25))
    res = topological_similarity(P, Q)
    assert res.S == pytest.approx(1.0) and res.k_star == 2


def test_hand_checked_five_points():
    P = np.array([0, 1, 2, 4, 8.0])[:, None]
    Q = np.array([5, 0, 9, 2, 14.0])[:, None]  # no distance ties in Q
    # Neighbour orders (self first; P's ties broken by lower index, e.g. p1: 0 and 2 both at 1):
    #   p0: 0 1 2 3 4    q0 (5):  0 3 2 1 4
    #   p1: 1 0 2 3 4    q1 (0):  1 3 0 2 4
    #   p2: 2 1 0 3 4    q2 (9):  2 0 4 3 1
    #   p3: 3 2 1 0 4    q3 (2):  3 1 0 2 4
    #   p4: 4 3 2 1 0    q4 (14): 4 2 0 3 1
    # k=1: only self in each                  -> 5 / 5          S_1 = 1
    # k=2: {01}{03} {10}{13} {21}{20} {32}{31} {43}{42}: 1 each -> 5 / 10     S_2 = 1/2
    # k=3: {012}&{032}={0,2} ... every row shares 2      -> 10 / 15    S_3 = 2/3
    # k=4: rows 0,1,3 share 4; row 2 {2103}&{2043}={2,0,3}; row 4 {4321}&{4203}={4,3,2}
    #                                                    -> 18 / 20    S_4 = 9/10
    # k=5: everything                                    -> 25 / 25    S_5 = 1
    curve = knn_overlap_curve(P, Q, "euclidean")
    np.testing.assert_allclose(curve, [1, 1 / 2, 2 / 3, 9 / 10, 1])
    res = topological_similarity(P, Q, metric="euclidean", k_max=4)
    assert (res.S, res.k_star, res.k_range) == (pytest.approx(0.9), 4, (2, 4))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_curve_matches_naive(seed, metric):
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(30, 4)), rng.normal(size=(30, 7))  # continuous -> no ties
    Q[:, :4] += 2 * P  # some shared structure so the curve is not just chance
    np.testing.assert_allclose(knn_overlap_curve(P, Q, metric), naive_curve(P, Q, metric))


def test_duplicate_points_keep_self_first():
    # p0 == p1 and q1 == q2: a plain stable argsort would give N_1(p1) = {0}, N_1(q2) = {1}
    P = np.array([[1.0, 0], [1, 0], [0, 1]])
    Q = np.array([[1.0, 0], [0, 1], [0, 1]])
    for metric in ("cosine", "euclidean"):
        assert knn_overlap_curve(P, Q, metric)[0] == 1.0


def test_chance_matches_monte_carlo():
    n, rng = 12, np.random.default_rng(0)
    mc = np.mean([knn_overlap_curve(rng.normal(size=(n, 3)), rng.normal(size=(n, 3))) for _ in range(2000)], axis=0)
    chance = chance_knn_overlap(n)
    assert chance[0] == 1.0 and chance[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(mc, chance, atol=0.01)


def test_permutation_null_and_p_value():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(40, 5))
    Q = P + 0.1 * rng.normal(size=P.shape)
    obs = topological_similarity(P, Q).S
    null = permutation_null_S(P, Q, n_perm=100, seed=1)
    assert null.shape == (100,) and null.max() < obs
    assert permutation_p_value(obs, null) == pytest.approx(1 / 101)
    # Null S sits just above the analytic chance max over k in [2, n//2]. That max is ~0.5 for
    # any n: chance S_2 = (1 + 1/(n-1))/2 because self is always shared (and S_{n/2} ~ 0.5 too).
    chance_max = chance_knn_overlap(40)[1:20].max()
    assert chance_max == pytest.approx((1 + 1 / 39) / 2)
    assert chance_max <= null.mean() < chance_max + 0.03
    assert permutation_p_value(0.0, null) == 1.0
    assert permutation_p_value(0.5, [0.1, 0.5, 0.7]) == pytest.approx(3 / 4)


def test_topo_validation():
    X = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="n >= 3"):
        knn_overlap_curve(X[:2], X[:2])
    with pytest.raises(ValueError, match="same number"):
        knn_overlap_curve(X, X[:4])
    with pytest.raises(ValueError, match="k_max=6"):
        topological_similarity(X, X, k_max=6)
    with pytest.raises(ValueError, match="k_min=3, k_max=2"):
        topological_similarity(X, X, k_min=3, k_max=2)
    assert topological_similarity(X[:3], X[:3]).k_range == (2, 2)  # n//2 < k_min -> k_min
    assert isinstance(topological_similarity(X, X), TopoResult)


# ----------------------------------------------------------------------------- zero-shot


def test_zero_shot_hand_example():
    E_t = np.eye(3)
    E_a = np.array([[2, 0.1, 0], [0.1, 1, 0], [0, 0, 5], [1, 0.9, 0], [0, 1, 1.1], [0, 0, 0]])
    labels = np.array([0, 1, 2, 1, 1, 2])
    # predictions: 0, 1, 2, 0 (wrong), 2 (wrong), 0 (zero vector -> all sims 0 -> argmax 0, wrong)
    np.testing.assert_array_equal(zero_shot_predict(E_a, E_t), [0, 1, 2, 0, 2, 0])
    assert zero_shot_accuracy(E_a, E_t, labels) == pytest.approx(3 / 6)
    np.testing.assert_allclose(per_class_accuracy(E_a, E_t, labels), [1, 1 / 3, 1 / 2])
    assert zero_shot_accuracy(E_t[labels] * 3, E_t, labels) == 1.0
    pc = per_class_accuracy(E_t[[0, 0]], np.eye(3), [0, 0])
    assert pc[0] == 1.0 and np.isnan(pc[1:]).all()
    with pytest.raises(ValueError, match="row indices"):
        zero_shot_accuracy(E_a, E_t, labels + 1)


# ----------------------------------------------------------------------------- silhouette


def test_silhouette_by_hand():
    X = np.array([[1, 0.1], [1, 0.3], [0.8, 0.5], [0.1, 1], [0.4, 1], [-0.2, 1]])
    y = np.array([0, 0, 0, 1, 1, 2])  # class 2 is a singleton -> s = 0
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - U @ U.T
    s = np.zeros(6)
    for i in range(6):
        own = (y == y[i]) & (np.arange(6) != i)
        if own.sum() == 0:
            continue
        a = D[i, own].mean()
        b = min(D[i, y == c].mean() for c in set(y) - {y[i]})
        s[i] = (b - a) / max(a, b)
    assert silhouette(X, y) == pytest.approx(s.mean(), abs=1e-9)
    assert silhouette(X, y) == pytest.approx(silhouette_score(X, y, metric="cosine"))
    per = silhouette_per_class(X, y)
    assert list(per) == [0, 1, 2] and per[2] == 0.0
    assert per[0] == pytest.approx(s[:3].mean()) and per[1] == pytest.approx(s[3:5].mean())


def test_silhouette_errors():
    X = np.random.default_rng(0).normal(size=(4, 2))
    with pytest.raises(ValueError, match="1 distinct labels for 4 samples"):
        silhouette(X, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="4 distinct labels for 4 samples"):
        silhouette(X, [0, 1, 2, 3])


def test_label_means():
    X = np.array([[1.0, 2], [3, 4], [10, 10]])
    means, uniq = label_means(X, ["b", "b", "a"])
    np.testing.assert_array_equal(uniq, ["a", "b"])
    np.testing.assert_allclose(means, [[10, 10], [2, 3]])


# ----------------------------------------------------------------------------- statistics


def test_pearson_matches_corrcoef():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    res = pearson(x, y)
    assert isinstance(res, PearsonResult) and res.n == 30
    assert res.r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert 0 < res.p < 0.01


def test_permutation_p_close_to_parametric():
    rng = np.random.default_rng(3)
    x = rng.normal(size=50)
    y = 0.45 * x + rng.normal(size=50)
    p_par, p_perm = pearson(x, y).p, pearson_permutation(x, y, n_perm=10000, seed=0)
    assert p_par < 0.01 and p_perm < 0.01
    assert abs(p_par - p_perm) < 0.02


def test_permutation_p_uniform_under_independence():
    ps = []
    for s in range(40):
        rng = np.random.default_rng(100 + s)
        ps.append(pearson_permutation(rng.normal(size=50), rng.normal(size=50), 1000, seed=s))
    assert 0.35 <= np.mean(ps) <= 0.65
    assert min(ps) >= 1 / 1001 and max(ps) <= 1.0


def test_pearson_bootstrap_ci():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    lo, hi = pearson_bootstrap_ci(x, y, n_boot=1000)
    assert lo < pearson(x, y).r < hi and 0 < lo and hi < 1


# ----------------------------------------------------------------------------- fuzz


@st.composite
def clouds(draw):
    n = draw(st.integers(3, 12))
    elems = st.floats(-10, 10, allow_nan=False, width=32)
    P = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 4))), elements=elems))
    Q = draw(hnp.arrays(np.float64, (n, draw(st.integers(1, 4))), elements=elems))
    return P, Q


@settings(max_examples=60, deadline=None)
@given(clouds(), st.sampled_from(["cosine", "euclidean"]))
def test_fuzz_curve(pq, metric):
    P, Q = pq
    s = knn_overlap_curve(P, Q, metric)
    assert np.all((s >= 0) & (s <= 1 + 1e-12))
    assert s[0] == 1.0 and s[-1] == pytest.approx(1.0)
    assert topological_similarity(P, Q, metric=metric).S <= 1 + 1e-12


@settings(max_examples=60, deadline=None)
@given(clouds(), st.data(), st.sampled_from(["cosine", "euclidean"]))
def test_fuzz_silhouette_and_accuracy(pq, data, metric):
    X, _ = pq
    n = len(X)
    labels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    if 2 <= len(set(labels)) <= n - 1:
        assert -1 - 1e-9 <= silhouette(X, labels, metric=metric) <= 1 + 1e-9
    E_t = data.draw(hnp.arrays(np.float64, (3, X.shape[1]), elements=st.floats(-5, 5)))
    assert 0.0 <= zero_shot_accuracy(X, E_t, labels) <= 1.0


# ----------------------------------------------------------------------------- S without self, summaries


def test_self_excluded_curve_matches_naive_and_hand_example():
    from clap_lib.analysis.metrics import knn_overlap_curve as curve

    rng = np.random.default_rng(7)
    P, Q = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    DP, DQ = pairwise_distances(P), pairwise_distances(Q)
    ref = []
    for k in range(1, 9):
        tot = sum(
            len(
                set([j for j in np.argsort(DP[i], kind="stable") if j != i][:k])
                & set([j for j in np.argsort(DQ[i], kind="stable") if j != i][:k])
            )
            for i in range(9)
        )
        ref.append(tot / (9 * k))
    np.testing.assert_allclose(curve(P, Q, include_self=False), ref)
    # hand: 4 points on a line, P pairs {0,1},{2,3}, Q pairs {0,2},{1,3}: no nearest neighbour is shared
    P = np.array([0, 1, 10, 11.0])[:, None]
    Q = np.array([0, 10, 1, 11.0])[:, None]
    without = curve(P, Q, "euclidean", include_self=False)
    assert without[0] == 0.0 and without[-1] == 1.0
    assert curve(P, Q, "euclidean")[1] == 0.5  # with self: S_2 = 1/2, only the point itself is shared


def test_self_excluded_chance_matches_monte_carlo():
    n, rng = 12, np.random.default_rng(0)
    mc = np.mean(
        [knn_overlap_curve(rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), include_self=False) for _ in range(2000)],
        axis=0,
    )
    chance = chance_knn_overlap(n, include_self=False)
    assert len(chance) == n - 1 and chance[-1] == 1.0 and chance[0] == pytest.approx(1 / 11)
    np.testing.assert_allclose(mc, chance, atol=0.01)


def test_topo_summary_random_and_structured():
    from clap_lib.analysis.metrics import excess_over_chance, topo_summary

    rng = np.random.default_rng(3)
    P = rng.normal(size=(30, 4))
    s = topo_summary(P, rng.normal(size=(30, 4)), n_perm=100, seed=1)
    # unrelated clouds: S sits at its chance level (the null of the max, ~0.53 here), not at 0
    assert s.p > 0.05 and abs(s.S - s.chance) < 0.05 and s.chance > 0.5
    assert s.chance > s.chance_at_k  # the max over k is above the chance curve at any single k
    # identical clouds: S = 1 at k = 2 (the lower edge), excess = max_k (1 - chance_k), analytic
    t = topo_summary(P, P, n_perm=20)
    assert t.S == 1.0 and t.k_star == 2 and t.on_edge and t.p == pytest.approx(1 / 21)
    gap = 1 - chance_knn_overlap(30)
    assert t.excess == pytest.approx(gap.max()) and t.excess_k == int(np.argmax(gap)) + 1
    assert t.area == pytest.approx(gap.mean())
    assert excess_over_chance(np.ones(29), include_self=False)[0] == pytest.approx(1 - 1 / 29)
    d = t.as_dict("topo_Ea_Et")
    assert d["topo_Ea_Et"] == 1.0 and d["topo_Ea_Et_k_edge"] is True and len(d["topo_Ea_Et_curve"]) == 30
    assert len(d["topo_Ea_Et_chance_curve"]) == 30 and d["topo_Ea_Et_chance"] == t.chance


def test_table_metrics_is_every_table_number():
    from clap_lib.analysis.metrics import table_metrics

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 12))
    y = np.repeat(np.arange(8), 5)
    x_a = centres[y] + 0.5 * rng.normal(size=(40, 12))
    M = rng.normal(size=(12, 6))
    sel = {"x_a": x_a, "E_a": x_a @ M, "y": y, "x_t": rng.normal(size=(8, 9)), "E_t": centres @ M}
    out = table_metrics(sel, n_perm=30, seed=2)
    assert out["accuracy"] == zero_shot_accuracy(sel["E_a"], sel["E_t"], y) and out["random_guess"] == 1 / 8
    assert (out["n_eval_clips"], out["n_classes"]) == (40, 8)
    assert out["sil_E_a"] == silhouette(sel["E_a"], y)
    # topo(x_a, E_a) on the 40 clips; topo(E_a, E_t) on the 8 label means of E_a
    assert out["topo_xa_Ea"] == topological_similarity(x_a, sel["E_a"]).S and len(out["topo_xa_Ea_curve"]) == 40
    mE = label_means(sel["E_a"], y)[0]
    assert out["topo_Ea_Et"] == topological_similarity(mE, sel["E_t"]).S and len(out["topo_Ea_Et_curve"]) == 8
    for name in ("topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"):
        for suffix in ("_k", "_k_edge", "_chance", "_p", "_chance_at_k", "_excess", "_excess_k", "_area"):
            assert f"{name}{suffix}" in out
    assert table_metrics(sel, k_max=30, n_perm=5)["topo_Ea_Et_k"] <= 4  # a fixed k_max is cut to n // 2 (8 labels)


def test_permutation_p_is_exact_for_small_n():
    import itertools
    from math import factorial

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=6), rng.normal(size=6)
    r0 = np.corrcoef(x, y)[0, 1]
    ref = np.mean([abs(np.corrcoef(x, y[list(p)])[0, 1]) >= abs(r0) - 1e-12 for p in itertools.permutations(range(6))])
    assert pearson_permutation(x, y) == pytest.approx(ref)
    assert pearson_permutation(x, y, n_perm=10, seed=3) == pearson_permutation(x, y)  # no Monte Carlo
    # |r| = 1 for 6 points is reached only by the identity and the reversal: 2 of 720 permutations
    assert pearson_permutation(np.arange(6.0), np.arange(6.0)) == pytest.approx(2 / factorial(6))
