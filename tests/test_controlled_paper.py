"""The controlled experiment's records in the paper's terms (clap_lib.analysis.controlled_paper): the claims frame, the
claims on it with known answers, claims 4 and 5 on the variants of S and Table 3's three S; synthetic records
(tests/controlled_records.py) whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from controlled_records import TOPO_XA_EA, default_accuracy, synthetic_records

from clap_lib.analysis import claims as ac
from clap_lib.analysis import controlled_paper as cp
from clap_lib.analysis.controlled import run_interval
from clap_lib.analysis.hierarchical import hierarchical_bootstrap

N_BOOT = 300
#: accuracy far apart between every pair the claims compare (dirty > clean > none; training dirty > clean)
ORDERED = {"dirty": 0.9, "clean": 0.6, "none": 0.3}


def ordered(p: str, level: str, f: float, seed: int) -> float:
    return ORDERED.get(p, 0.5) * (0.5 if level == "clean" else 1.0)


def reversed_order(p: str, level: str, f: float, seed: int) -> float:
    return 1.0 - ordered(p, level, f, seed)


def _records(accuracy=ordered, **kw):
    kw = {"pretrainings": ("dirty", "clean", "none", "mn04_as"), "n_classes": 4, "clips_per_class": 10} | kw
    return synthetic_records(accuracy=accuracy, **kw)


@pytest.fixture(scope="module")
def frame():
    r = _records()
    return cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT)


def test_the_frame_is_the_papers_two_by_three_one_row_per_seed(frame):
    assert len(frame) == 3 * 2 * 3
    assert set(frame["pretraining"]) == {"dirty", "clean", "none"}  # mn04_as is not one of the paper's
    assert set(frame["training"]) == {"dirty", "clean"}  # unseen, matched and dose are not the paper's levels
    assert frame.groupby(["pretraining", "training"]).size().eq(3).all()
    assert (frame["n_splits"] == 2).all() and (frame["n_clips"] == 2 * 4 * 10).all()
    assert set(frame["random_guess"]) == {0.25}
    row = frame[(frame["pretraining"] == "clean") & (frame["training"] == "clean")].iloc[0]
    assert row["accuracy"] == pytest.approx(0.3) and row["topo_Ea_Et"] == pytest.approx(0.3 + 0.5 * 0.3)
    assert row["topo_xa_Ea"] == TOPO_XA_EA and row["topo_xa_Ea_excess"] == pytest.approx(TOPO_XA_EA - 0.25)
    assert row["topo_Ea_Et_noself"] == pytest.approx(0.3 + 0.5 * 0.3 - 0.05)


def test_a_row_pools_the_seeds_two_splits_and_its_interval_is_the_bootstrap_over_its_clips():
    r = _records(pretrainings=("dirty",), seeds=(0, 1), doses=())
    split1 = (r.clips["split"] == 1) & (r.clips["level"] == "dirty")
    r.clips.loc[split1, "correct"] = 0  # split 1 gets every clip wrong: the seed's row is half of split 0's
    r.runs.loc[(r.runs["split"] == 1) & (r.runs["level"] == "dirty"), "S"] = 0.1
    f = cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT, seed=3)
    row = f[(f["training"] == "dirty") & (f["seed"] == 1)].iloc[0]
    assert row["accuracy"] == pytest.approx(0.9 / 2)  # 36 of split 0's 40 clips, none of split 1's
    assert row["topo_Ea_Et"] == pytest.approx((0.3 + 0.5 * 0.9 + 0.1) / 2)  # the mean of its two runs' S
    clips = r.clips[(r.clips["level"] == "dirty") & (r.clips["seed"] == 1)].sort_values(["split", "clip"])
    want = hierarchical_bootstrap(clips[["correct"]].to_numpy(float).T, N_BOOT, 3, strata=clips["category"].to_numpy())
    assert (row["accuracy_lo"], row["accuracy_hi"]) == pytest.approx((want.lo, want.hi))
    diff = (clips["sil_x_a"] - clips["sil_E_a"]).to_numpy()
    assert row["sil_diff"] == pytest.approx(diff.mean()) and row["sil_diff_lo"] <= diff.mean() <= row["sil_diff_hi"]


def test_one_seed_keeps_its_clip_interval_and_s_is_a_point():
    r = _records(pretrainings=("dirty",), seeds=(0,), dose_seeds=(0,), doses=())
    f = cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT)
    rows = f[f["training"] == "dirty"]
    e = ac.estimate(rows, "accuracy")
    assert (e.lo, e.hi) == (rows["accuracy_lo"].iloc[0], rows["accuracy_hi"].iloc[0]) and e.lo < e.value < e.hi
    assert not ac.estimate(rows, "topo_Ea_Et").has_interval


def test_accuracy_strictly_ordered_by_construction_makes_claim_1_hold(frame):
    c1 = ac.claim_accuracy_falls(frame)
    assert c1.verdict == "holds" and len([p for p in c1.parts if p.in_verdict]) == 7
    assert all(p.verdict == "holds" for p in c1.parts)


def test_accuracy_rising_as_leakage_is_removed_makes_claim_1_fail():
    r = _records(reversed_order)
    c1 = ac.claim_accuracy_falls(cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT))
    assert c1.verdict == "fails" and all(p.verdict == "fails" for p in c1.parts)


def test_claim_3_reads_the_paired_per_seed_difference():
    r = _records(pretrainings=("dirty",), doses=())
    r.clips["sil_x_a"] = r.clips["sil_E_a"] + 0.1  # x_a 0.1 above E_a on every clip
    c3 = ac.claim_silhouette_backbone(cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT))
    assert c3.verdict == "holds" and all("paired diff 0.100 [0.100, 0.100]" in p.detail for p in c3.parts)
    r.clips["sil_x_a"] = r.clips["sil_E_a"] - 0.1
    assert ac.claim_silhouette_backbone(cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT)).verdict == "fails"


def test_a_constant_excess_leaves_claim_5_undecided_on_it_while_the_papers_s_follows_accuracy():
    r = _records()
    r.runs["S_excess"] = 0.2  # the edge-free excess of S(E_a, E_t) is the same in every run
    f = cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT)
    paper = ac.claim_topo_vs_log_accuracy(f, n_perm=2000, n_boot=N_BOOT)
    assert paper.verdict == "holds" and paper.numbers["r"] > 0.9  # S = 0.3 + 0.5 accuracy, by construction
    c4, c5 = cp.variant_claims(f, "excess", n_perm=2000, n_boot=N_BOOT)
    assert (c4.id, c5.id) == (4, 5)
    assert c5.verdict == "inconclusive" and c5.detail.startswith("correlation undefined (a constant column)")
    assert "edge-free excess" in c5.statement and c5.statement.startswith(ac.S5)
    # the excess of S(x_a, E_a) 0.6 and of S(x_t, E_t) 0.5 both exceed the constant 0.2
    assert c4.verdict == "holds" and c4.numbers["n_holds"] == 12
    assert cp.variant_claims(f, "noself", n_perm=2000, n_boot=N_BOOT)[1].verdict == "holds"


def test_claim_4_on_s_without_self_fails_where_the_variant_falls_below_s_of_e_a_e_t():
    r = _records(default_accuracy)  # accuracy 0.3 to 0.8: S(E_a, E_t) from 0.45 to 0.7, without self 0.05 less
    r.runs["S_xa_Ea_noself"] = 0.5  # below S(E_a, E_t) without self where accuracy >= 0.5
    f = cp.claims_frame(r.runs, r.clips, n_boot=N_BOOT)
    assert ac.claim_topology(f).verdict == "holds"  # the paper's S: 0.85 and 0.75 above at most 0.7
    c4 = cp.variant_claims(f, "noself", n_perm=2000, n_boot=N_BOOT)[0]
    above = f.groupby(["pretraining", "training"])["topo_Ea_Et_noself"].mean() >= 0.5
    assert c4.verdict == "fails" and c4.numbers["n_fails"] == int(above.sum()) == 3  # dirty/dirty, /clean, clean/dirty
    assert "excluded from its own neighbourhood" in c4.statement


def test_variant_frame_replaces_the_three_s_and_refuses_an_unknown_variant(frame):
    v = cp.variant_frame(frame, "noself")
    for topo in cp.TOPOLOGY_COLUMNS:
        assert v[topo].tolist() == frame[f"{topo}_noself"].tolist()
    assert v["accuracy"].tolist() == frame["accuracy"].tolist()
    assert cp.variant_frame(frame, "paper")["topo_Ea_Et"].tolist() == frame["topo_Ea_Et"].tolist()
    with pytest.raises(ValueError, match="variant 'k3'"):
        cp.variant_frame(frame, "k3")


def test_every_claim_is_computed_on_the_frame(frame):
    claims = ac.evaluate_claims(frame, n_perm=2000, n_boot=N_BOOT)
    assert [c.id for c in claims] == [1, 2, 3, 4, 5]
    assert claims[1].numbers["n"] == 6 and claims[1].numbers["n_rows"] == 18


def test_topology_spaces_are_means_over_runs_with_their_interval():
    r = _records(seeds=(0, 1, 2))
    r.runs.loc[r.runs["seed"] == 2, "S_xt_Et"] = 0.45  # one seed's runs differ
    t = cp.topology_spaces(r.runs, n_boot=N_BOOT, seed=1)
    assert len(t) == 4 * 4 and (t["n_runs"] == 6).all()  # every pretraining x grid level, 3 seeds x 2 splits
    row = t[(t["pretraining"] == "mn04_as") & (t["level"] == "matched")].iloc[0]
    runs = r.runs[(r.runs["pretraining"] == "mn04_as") & (r.runs["level"] == "matched")]
    assert row["topo_xt_Et"] == pytest.approx(runs["S_xt_Et"].mean()) == pytest.approx((4 * 0.75 + 2 * 0.45) / 6)
    assert (row["topo_xt_Et_lo"], row["topo_xt_Et_hi"]) == pytest.approx(run_interval(runs["S_xt_Et"], N_BOOT, 1))
    assert row["topo_xa_Ea_lo"] == row["topo_xa_Ea_hi"] == TOPO_XA_EA
    assert row["topo_Ea_Et_noself_chance"] == pytest.approx(0.2)
    assert np.isclose(row["topo_Ea_Et_excess"], runs["S"].mean() - 0.25)
    assert list(pd.unique(t["level"])) == ["dirty", "clean", "unseen", "matched"]
