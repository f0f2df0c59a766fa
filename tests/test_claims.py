"""clap_lib/claims.py: the paper's five claims evaluated on results tables with known answers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clap_lib.claims import (LEAKAGE_ORDER, Claim, Estimate, aggregate, claims_table, compare, estimate,
                             evaluate_claims, leakage_pairs)
from clap_lib.uncertainty import metric_intervals

FAST = dict(n_perm=2000, n_boot=200)


def paper_like() -> pd.DataFrame:
    """A results table in which every claim holds by construction."""
    acc = np.array([0.80, 0.50, 0.45, 0.30, 0.06, 0.05])  # LEAKAGE_ORDER
    sil_E = 0.05 + 0.4 * acc
    return pd.DataFrame({"pretraining": [p for p, _ in LEAKAGE_ORDER], "training": [t for _, t in LEAKAGE_ORDER],
                         "accuracy": acc, "random_guess": 0.04, "sil_E_a": sil_E, "sil_x_a": sil_E + 0.05,
                         "topo_xa_Ea": 0.9, "topo_xt_Et": 0.85, "topo_Ea_Et": 0.7 + 0.05 * np.log(acc)})


def verdicts(df, **kw) -> dict[int, str]:
    return {c.id: c.verdict for c in evaluate_claims(df, **(FAST | kw))}


# ----------------------------------------------------------------------------- building blocks

def test_compare_points_and_intervals():
    assert compare(Estimate(0.5), Estimate(0.4)) == "holds"
    assert compare(Estimate(0.4), Estimate(0.4)) == "holds"
    assert compare(Estimate(0.4), Estimate(0.4), strict=True) == "fails"
    assert compare(Estimate(0.3), Estimate(0.4)) == "fails"
    assert compare(Estimate(0.5, 0.45, 0.55), Estimate(0.4, 0.35, 0.44)) == "holds"
    assert compare(Estimate(0.5, 0.40, 0.55), Estimate(0.4, 0.35, 0.45)) == "inconclusive"
    assert compare(Estimate(0.3, 0.25, 0.34), Estimate(0.4, 0.35, 0.45)) == "fails"
    assert compare(Estimate(0.5, 0.45, 0.55), Estimate(0.45)) == "holds"  # a point is [v, v]


def test_aggregate():
    assert aggregate(["holds", "holds"]) == "holds"
    assert aggregate(["holds", "inconclusive"]) == "inconclusive"
    assert aggregate(["holds", "inconclusive", "fails"]) == "fails"
    assert aggregate([]) == "inconclusive"


def test_leakage_partial_order_has_twelve_pairs():
    pairs = leakage_pairs(LEAKAGE_ORDER)
    assert len(pairs) == 12
    assert (("dirty", "dirty"), ("none", "clean")) in pairs
    assert (("dirty", "clean"), ("none", "dirty")) not in pairs  # incomparable: cleaner pretraining, dirtier data
    assert (("dirty", "clean"), ("clean", "dirty")) not in pairs
    assert (("clean", "dirty"), ("dirty", "clean")) not in pairs


def test_estimate_from_seeds_and_interval_columns():
    rows = pd.DataFrame({"accuracy": [0.5, 0.7, 0.6]})
    assert estimate(rows, "accuracy") == Estimate(pytest.approx(0.6), 0.5, 0.7)
    rows = rows.assign(accuracy_lo=[0.4, 0.6, 0.5], accuracy_hi=[0.6, 0.8, 0.65])
    assert estimate(rows, "accuracy") == Estimate(pytest.approx(0.6), 0.4, 0.8)
    assert estimate(rows.iloc[:1][["accuracy"]], "accuracy") == Estimate(0.5)
    assert estimate(rows, "missing") is None


# ----------------------------------------------------------------------------- the claims

def test_all_claims_hold_on_a_paper_like_table():
    claims = evaluate_claims(paper_like(), **FAST)
    assert [c.id for c in claims] == [1, 2, 3, 4, 5]
    assert all(isinstance(c, Claim) for c in claims)
    assert {c.id: c.verdict for c in claims} == {1: "holds", 2: "holds", 3: "holds", 4: "holds", 5: "holds"}
    c1, c2, _, c4, c5 = claims
    assert c1.numbers["kendall_tau"] == pytest.approx(1.0)
    assert c1.numbers["n_partial_order_pairs"] == 12 and c1.numbers["n_reversed_pairs"] == 0
    assert c1.numbers["max_combination"] == "dirty/dirty" and c1.numbers["min_combination"] == "none/clean"
    assert c2.numbers["r"] == pytest.approx(1.0) and c2.numbers["p_perm"] < 0.05
    assert c4.numbers["n_holds"] == 12
    assert c5.numbers["r"] == pytest.approx(1.0)


def test_claims_flip_when_the_structure_is_destroyed():
    df = paper_like()
    df["accuracy"] = df["accuracy"].to_numpy()[[5, 3, 1, 0, 4, 2]]  # scrambled: cleaner combinations win
    df["sil_E_a"] = 0.5 - df["accuracy"]                          # separability against accuracy
    df["sil_x_a"] = df["sil_E_a"] - 0.05                           # the projection now adds clusters
    df["topo_Ea_Et"] = 0.95                                        # audio-text topology above the unimodal ones
    v = verdicts(df)
    assert v[1] == "fails" and v[2] == "fails" and v[3] == "fails" and v[4] == "fails"
    assert v[5] in ("fails", "inconclusive")  # constant topo_Ea_Et: undefined correlation
    claim1 = evaluate_claims(df, **FAST)[0]
    assert claim1.numbers["n_reversed_pairs"] > 0 and "rises" in claim1.detail


def test_weak_correlation_is_inconclusive_not_holds():
    df = paper_like()
    df["sil_E_a"] = [0.30, 0.10, 0.25, 0.05, 0.20, 0.12]  # r > 0 but far from significant with n = 6
    c2 = evaluate_claims(df, **FAST)[1]
    assert 0 < c2.numbers["r"] and c2.numbers["p_perm"] >= 0.05
    assert c2.verdict == "inconclusive"


def test_intervals_make_close_calls_inconclusive():
    df = paper_like()
    df["sil_x_a"] = df["sil_E_a"] + 0.01
    df["sil_x_a_lo"], df["sil_x_a_hi"] = df["sil_x_a"] - 0.03, df["sil_x_a"] + 0.03
    df["sil_E_a_lo"], df["sil_E_a_hi"] = df["sil_E_a"] - 0.03, df["sil_E_a"] + 0.03
    c3 = evaluate_claims(df, **FAST)[2]
    assert c3.verdict == "inconclusive" and c3.numbers["n_inconclusive"] == 6
    # a paired difference interval decides where the marginal intervals overlap
    df["sil_diff"] = df["sil_x_a"] - df["sil_E_a"]
    df["sil_diff_lo"], df["sil_diff_hi"] = 0.005, 0.02
    assert evaluate_claims(df, **FAST)[2].verdict == "holds"
    df.loc[0, ["sil_diff_lo", "sil_diff_hi"]] = [-0.03, -0.01]
    c3 = evaluate_claims(df, **FAST)[2]
    assert c3.verdict == "fails" and c3.numbers["n_fails"] == 1


def test_claim1_with_overlapping_accuracy_intervals():
    df = paper_like()
    df["accuracy_lo"], df["accuracy_hi"] = df["accuracy"] - 0.05, df["accuracy"] + 0.05
    assert verdicts(df)[1] == "holds"  # no decisive reversal, and dirty/dirty is decisively above none/clean
    df["accuracy_lo"], df["accuracy_hi"] = 0.0, 1.0
    assert verdicts(df)[1] == "inconclusive"


def test_seeds_that_disagree_are_inconclusive():
    a, b = paper_like().assign(seed=0), paper_like().assign(seed=1)
    b["sil_x_a"] = b["sil_E_a"] - 0.05  # seed 1 contradicts seed 0 everywhere
    v = verdicts(pd.concat([a, b], ignore_index=True))
    assert v[3] == "inconclusive"
    assert v[1] == "holds" and v[4] == "holds"


def test_missing_columns_and_combinations():
    df = paper_like().drop(columns=["topo_xt_Et"])
    c4 = evaluate_claims(df, **FAST)[3]
    assert c4.verdict == "inconclusive" and "topo_xt_Et" in c4.detail
    c1 = evaluate_claims(paper_like().iloc[:4], **FAST)[0]
    assert c1.verdict == "inconclusive" and "none/clean" in c1.detail
    with pytest.raises(ValueError, match="unknown"):
        evaluate_claims(paper_like().replace({"pretraining": {"none": "random"}}))


def test_claims_table():
    t = claims_table(evaluate_claims(paper_like(), **FAST))
    assert list(t.columns) == ["id", "statement", "paper_says", "verdict", "detail", "numbers"]
    assert len(t) == 5 and set(t["verdict"]) == {"holds"}
    assert "kendall_tau=1" in t.loc[0, "numbers"]


def test_claims_from_synthetic_embeddings_with_intervals():
    """Six synthetic 'models' whose class noise grows along the leakage order; E_a = x_a through a random
    projection plus extra noise (the projection cannot add separability), E_t = projected class centres."""
    rng = np.random.default_rng(0)
    n_cls, per, dim = 10, 6, 24
    centres = rng.normal(size=(n_cls, dim))
    y = np.repeat(np.arange(n_cls), per)
    rows = []
    for (p, t), noise in zip(LEAKAGE_ORDER, (0.2, 0.35, 0.45, 0.6, 2.5, 3.0)):
        x_a = centres[y] + noise * rng.normal(size=(len(y), dim))
        M = rng.normal(size=(dim, 16)) / np.sqrt(dim)
        E_a = x_a @ M + 0.3 * noise * rng.normal(size=(len(y), 16))
        E_t = centres @ M
        sel = {"x_a": x_a, "E_a": E_a, "y": y, "x_t": E_t @ rng.normal(size=(16, 20)), "E_t": E_t}
        row = {"pretraining": p, "training": t}
        for name, iv in metric_intervals(sel, n_boot=100, seed=1).items():
            row |= iv.as_columns(name)
        rows.append(row)
    df = pd.DataFrame(rows)
    assert df.loc[0, "accuracy"] == 1.0 and df.loc[5, "accuracy"] < 0.6
    claims = evaluate_claims(df, **FAST)
    assert claims[0].verdict == "holds" and claims[1].verdict == "holds"
    # the projection only loses separability: no combination contradicts claim 3; near chance (none/clean,
    # both silhouettes ~0) the paired interval may straddle 0, which is what 'inconclusive' is for
    assert claims[2].numbers["n_fails"] == 0 and claims[2].numbers["n_holds"] >= 5
    assert claims[2].verdict in ("holds", "inconclusive")
