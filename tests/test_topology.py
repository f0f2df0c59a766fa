"""clap_lib/topology.py: the bound on S with self included, S under its variants, which fit the paper."""

from __future__ import annotations

import numpy as np
import pytest

from clap_lib.analysis import metrics
from clap_lib.analysis import topology as tp


def test_pigeonhole_bound_by_hand_and_tight():
    # with self: S_k >= max(1, 2k - n) / k;  n = 4: [1, 1/2, 2/3, 1]
    np.testing.assert_allclose(tp.S_k_lower_bound(4), [1, 1 / 2, 2 / 3, 1])
    # without self: S_k >= max(0, 2k - n + 1) / k;  n = 4: [0, 1/2, 1]
    np.testing.assert_allclose(tp.S_k_lower_bound(4, include_self=False), [0, 1 / 2, 1])
    # tight at k = 2: P pairs {0,1},{2,3}, Q pairs {0,2},{1,3} -> S_2 = 1/2 (only the point itself is shared);
    # k = 3 by hand: p0 {0,1,2} q0 {0,2,1}: 3; p1 {1,0,2} q1 {1,3,2}: 2; p2 {2,3,1} q2 {2,0,1}: 2; p3: 3
    P = np.array([0, 1, 10, 11.0])[:, None]
    Q = np.array([0, 10, 1, 11.0])[:, None]
    np.testing.assert_allclose(metrics.knn_overlap_curve(P, Q, "euclidean"), [1, 1 / 2, 10 / 12, 1])


@pytest.mark.parametrize("include_self", [True, False])
def test_no_pair_of_clouds_goes_below_the_bound(include_self):
    rng = np.random.default_rng(0)
    for n in (5, 12, 31):
        bound = tp.S_k_lower_bound(n, include_self)
        for _ in range(30):
            P, Q = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
            assert np.all(metrics.knn_overlap_curve(P, Q, include_self=include_self) >= bound - 1e-12)


def test_S_lower_bound_of_a_window():
    assert tp.S_lower_bound(50, tp.TopoVariant(True, 2)) == 0.5  # any window holding k = 2, self in
    assert tp.S_lower_bound(50, tp.TopoVariant(True, 3)) == pytest.approx(1 / 3)
    assert tp.S_lower_bound(50, tp.TopoVariant(True, 1)) == 1.0  # S_1 = 1 always
    assert tp.S_lower_bound(50, tp.TopoVariant(False, 1)) == pytest.approx(1 / 25)  # (2*25 - 49) / 25
    assert tp.S_lower_bound(10, tp.TopoVariant(True, 2, 10)) == 1.0  # a window reaching k = n


def test_paper_values_rule_out_self_included_windows_with_k_2():
    from clap_lib.analysis import paper_tables as pt

    paper = pt.load(pt.PACKAGED)
    c = tp.variant_consistency(paper["topo_Ea_Et"], n=50, n_draws=40)
    assert c.loc["self in, k = 2..n/2", "lower_bound"] == 0.5 and c.loc["self in, k = 2..n/2", "min_printed"] == 0.38
    assert not c.loc["self in, k = 2..n/2", "consistent"] and not c.loc["self in, k = 2..10", "consistent"]
    assert not c.loc["self in, k = 1..n/2", "consistent"]
    assert c.loc["self in, k = 3..n/2", "consistent"] and c.loc["self out, k = 1..n/2", "consistent"]
    assert set(c.index) == {v.name for v in tp.VARIANTS}
    # windows up to n/2 put chance near 0.51, above five of the paper's six values; small self-excluded
    # windows have a much lower chance level
    assert c.loc["self out, k = 1..n/2", "null_mean"] > 0.5
    assert c.loc["self out, k = 1..5", "null_mean"] < 0.3
    with pytest.raises(ValueError, match="values"):
        tp.variant_consistency([], n=50)
    pd_direct = tp.paper_variant_consistency(paper, n_draws=40)
    assert pd_direct.equals(c)


def test_S_variants_rows_match_metrics():
    rng = np.random.default_rng(1)
    P = rng.normal(size=(20, 4))
    Q = P + 0.5 * rng.normal(size=P.shape)
    t = tp.S_variants(P, Q, n_perm=20)
    assert t.loc["self in, k = 2..n/2", "S"] == metrics.topological_similarity(P, Q).S
    assert t.loc["self out, k = 1..n/2", "S"] == metrics.topological_similarity(P, Q, 1, 10, include_self=False).S
    trivial = "self in, k = 1..n/2"  # S_1 = 1 for any clouds: S = chance = 1
    assert t.loc[trivial, "S"] == t.loc[trivial, "chance"] == 1.0
    assert (t.drop(trivial)["S"] > t.drop(trivial)["chance"]).all()  # related clouds beat chance otherwise
    with pytest.raises(ValueError, match="k_min"):
        tp.TopoVariant(True, 0)
    with pytest.raises(ValueError, match="exceeds"):
        tp.TopoVariant(False, 2, 20).window(20)
