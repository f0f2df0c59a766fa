"""clap_lib/claims.py: the paper's five claims evaluated on results tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clap_lib.analysis.claims import (
    COMBINATION_ORDER,
    LEAKAGE_ORDER,
    Claim,
    Estimate,
    Part,
    aggregate,
    combination_means,
    compare,
    estimate,
    evaluate_claims,
    leakage_pairs,
)
from clap_lib.analysis.uncertainty import correlation_report, metric_intervals
from clap_lib.report.claims import claims_table, parts_table

FAST = dict(n_perm=2000, n_boot=200)


def paper_like() -> pd.DataFrame:
    """A results table in which every claim holds by construction."""
    acc = np.array([0.80, 0.50, 0.45, 0.30, 0.06, 0.05])  # LEAKAGE_ORDER
    sil_E = 0.05 + 0.4 * acc
    return pd.DataFrame(
        {
            "pretraining": [p for p, _ in LEAKAGE_ORDER],
            "training": [t for _, t in LEAKAGE_ORDER],
            "accuracy": acc,
            "random_guess": 0.04,
            "sil_E_a": sil_E,
            "sil_x_a": sil_E + 0.05,
            "topo_xa_Ea": 0.9,
            "topo_xt_Et": 0.85,
            "topo_Ea_Et": 0.7 + 0.05 * np.log(acc),
        }
    )


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
    # three seeds, no per-seed interval: the t interval of the mean, 0.6 +- t_{2, 0.975} * 0.1 / sqrt(3)
    rows = pd.DataFrame({"accuracy": [0.5, 0.7, 0.6]})
    half = 4.302652729911275 * 0.1 / np.sqrt(3)
    assert estimate(rows, "accuracy") == Estimate(
        pytest.approx(0.6), pytest.approx(0.6 - half), pytest.approx(0.6 + half)
    )
    # with per-seed intervals (half-widths 0.1, 0.1, 0.1 below; 0.1, 0.1, 0.05 above) added in quadrature
    rows = rows.assign(accuracy_lo=[0.4, 0.6, 0.5], accuracy_hi=[0.6, 0.8, 0.65])
    e = estimate(rows, "accuracy")
    assert (e.lo, e.hi) == pytest.approx((0.6 - np.hypot(half, 0.1), 0.6 + np.hypot(half, 0.25 / 3)))
    assert estimate(rows.iloc[:1][["accuracy"]], "accuracy") == Estimate(0.5)
    assert estimate(rows.iloc[:1], "accuracy") == Estimate(0.5, 0.4, 0.6)  # one row: its own interval
    assert estimate(rows, "missing") is None


# ----------------------------------------------------------------------------- the claims


def test_all_claims_hold_on_a_paper_like_table():
    claims = evaluate_claims(paper_like(), **FAST)
    assert [c.id for c in claims] == [1, 2, 3, 4, 5]
    assert all(isinstance(c, Claim) for c in claims)
    assert {c.id: c.verdict for c in claims} == {1: "holds", 2: "holds", 3: "holds", 4: "holds", 5: "holds"}
    c1, c2, _, c4, c5 = claims
    assert c1.numbers["partial_order_tau"] == pytest.approx(1.0)
    assert c1.numbers["n_partial_order_pairs"] == 12 and c1.numbers["n_discordant_pairs"] == 0
    # 3 training comparisons (one per pretraining) + 4 pretraining comparisons (dirty > clean > none, twice)
    assert len(c1.parts) == 7 and all(p.verdict == "holds" for p in c1.parts)
    assert {p.name for p in c1.parts} >= {
        "training dirty > clean | pretraining none",
        "pretraining clean > none | training clean",
    }
    assert c1.numbers["max_combination"] == "dirty/dirty" and c1.numbers["min_combination"] == "none/clean"
    assert c2.numbers["r"] == pytest.approx(1.0) and c2.numbers["p_perm"] < 0.05
    assert c4.numbers["n_holds"] == 12
    assert c5.numbers["r"] == pytest.approx(1.0)


def test_claims_flip_when_the_structure_is_destroyed():
    df = paper_like()
    df["accuracy"] = df["accuracy"].to_numpy()[[5, 3, 1, 0, 4, 2]]  # scrambled: cleaner combinations win
    df["sil_E_a"] = 0.5 - df["accuracy"]  # separability against accuracy
    df["sil_x_a"] = df["sil_E_a"] - 0.05  # the projection now adds clusters
    df["topo_Ea_Et"] = 0.95  # audio-text topology above the unimodal ones
    v = verdicts(df)
    assert v[1] == "fails" and v[2] == "fails" and v[3] == "fails" and v[4] == "fails"
    assert v[5] in ("fails", "inconclusive")  # constant topo_Ea_Et: undefined correlation
    claim1 = evaluate_claims(df, **FAST)[0]
    assert claim1.numbers["n_discordant_pairs"] > 0 and "does not fall" in claim1.detail


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
    df["accuracy_lo"], df["accuracy_hi"] = df["accuracy"] - 0.004, df["accuracy"] + 0.004
    assert verdicts(df)[1] == "holds"  # every within-level drop is decisive, the smallest (0.06 vs 0.05) too
    df["accuracy_lo"], df["accuracy_hi"] = df["accuracy"] - 0.05, df["accuracy"] + 0.05
    c1 = evaluate_claims(df, **FAST)[0]
    assert c1.verdict == "inconclusive"  # training dirty 0.06 vs clean 0.05 without pretraining: within +-0.05
    undecided = [p.name for p in c1.parts if p.verdict == "inconclusive"]
    assert undecided == ["training dirty > clean | pretraining none"]
    df["accuracy_lo"], df["accuracy_hi"] = 0.0, 1.0
    assert verdicts(df)[1] == "inconclusive"


def test_claim1_tests_the_training_effect():
    # clean training 0.01 ABOVE dirty training under every pretraining, intervals +-0.05; the pretraining
    # effect is large and decisive. The old rule (dirty/dirty decisively above none/clean, no decisive
    # reversal) said "holds"; the training effect is not there, so the claim cannot hold.
    acc = {
        ("dirty", "dirty"): 0.70,
        ("dirty", "clean"): 0.71,
        ("clean", "dirty"): 0.45,
        ("clean", "clean"): 0.46,
        ("none", "dirty"): 0.10,
        ("none", "clean"): 0.11,
    }
    df = pd.DataFrame(
        [
            {"pretraining": p, "training": t, "accuracy": a, "accuracy_lo": a - 0.05, "accuracy_hi": a + 0.05}
            for (p, t), a in acc.items()
        ]
    )
    c1 = evaluate_claims(df, **FAST)[0]
    assert c1.verdict == "inconclusive"
    assert c1.numbers["training effect"] == "inconclusive" and c1.numbers["pretraining effect"] == "holds"
    by = {p.name: p.verdict for p in c1.parts}
    assert [by[f"training dirty > clean | pretraining {p}"] for p in ("dirty", "clean", "none")] == ["inconclusive"] * 3
    # as points the same table is a reversal in every pretraining: fails
    c1 = evaluate_claims(df.drop(columns=["accuracy_lo", "accuracy_hi"]), **FAST)[0]
    assert c1.verdict == "fails" and c1.numbers["training effect"] == "fails"
    assert "training dirty > clean | pretraining none" in c1.detail


def test_claim1_with_strict_training_shows_it_beside_the_verdict():
    df = paper_like()
    strict = pd.DataFrame(
        {"pretraining": ["dirty", "clean", "none"], "training": "strict", "accuracy": [0.55, 0.35, 0.07]}
    )  # strict above clean: beyond the paper's claim
    full = pd.concat(
        [
            df,
            strict.assign(
                **df.iloc[0][["random_guess", "sil_E_a", "sil_x_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]].to_dict()
            ),
        ],
        ignore_index=True,
    )
    c1 = evaluate_claims(full, **FAST)[0]
    assert c1.verdict == "holds"
    beyond = {p.name: p.verdict for p in c1.parts if not p.in_verdict}
    assert beyond["training clean > strict | pretraining dirty"] == "fails"
    assert "pretraining dirty > clean | training strict" in beyond
    assert len(c1.parts) == 7 + 3 + 2
    lab = [c for c in COMBINATION_ORDER if c[1] != "dedup"]  # dedup is the paper profile's, never beside strict
    assert c1.numbers["n_partial_order_pairs"] == len(leakage_pairs(lab)) == 27


def test_leakage_order_is_a_display_order_not_a_ranking():
    # the paper's own Table 1 puts clean/dirty (0.61) above dirty/clean (0.48): these two are incomparable in
    # the partial order, and no verdict may depend on how they are ranked against each other
    assert (("dirty", "clean"), ("clean", "dirty")) not in leakage_pairs(LEAKAGE_ORDER)
    df = paper_like()
    swapped = df.copy()
    swapped.loc[1, "accuracy"], swapped.loc[2, "accuracy"] = df.loc[2, "accuracy"], df.loc[1, "accuracy"]
    a, b = evaluate_claims(df, **FAST)[0], evaluate_claims(swapped, **FAST)[0]
    assert a.verdict == b.verdict == "holds"
    assert a.numbers["partial_order_tau"] == b.numbers["partial_order_tau"] == 1.0


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
    c1 = evaluate_claims(paper_like().iloc[:2], **FAST)[0]  # one pretraining: its effect cannot be tested
    assert c1.verdict == "inconclusive" and c1.numbers["pretraining effect"].startswith("not tested")
    assert c1.numbers["training effect"] == "holds"
    with pytest.raises(ValueError, match="unknown"):
        evaluate_claims(paper_like().replace({"pretraining": {"none": "random"}}))


def test_claims_table():
    t = claims_table(evaluate_claims(paper_like(), **FAST))
    assert list(t.columns) == ["id", "statement", "paper_says", "verdict", "detail", "numbers", "parts"]
    assert len(t) == 5 and set(t["verdict"]) == {"holds"}
    assert "partial_order_tau=1" in t.loc[0, "numbers"] and t.loc[0, "parts"] == "7/7 hold"
    parts = parts_table(evaluate_claims(paper_like(), **FAST))
    assert list(parts.columns) == ["id", "part", "verdict", "detail", "in_verdict"]
    assert parts["id"].value_counts().sort_index().to_dict() == {1: 7, 2: 2, 3: 6, 4: 12, 5: 2}
    assert isinstance(evaluate_claims(paper_like(), **FAST)[3].parts[0], Part)


def test_claims_from_synthetic_embeddings_with_intervals():
    """Six synthetic 'models' whose class noise grows along the leakage order; E_a = x_a through a random
    projection plus extra noise (the projection cannot add separability), E_t = projected class centres."""
    rng = np.random.default_rng(0)
    n_cls, per, dim = 10, 20, 24
    centres = rng.normal(size=(n_cls, dim))
    y = np.repeat(np.arange(n_cls), per)
    rows = []
    for (p, t), noise in zip(LEAKAGE_ORDER, (0.4, 1.6, 1.0, 3.0, 2.2, 6.0)):
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
    assert df.loc[0, "accuracy"] > 0.9 and df.loc[5, "accuracy"] < 0.6
    claims = evaluate_claims(df, **FAST)
    assert claims[0].verdict == "holds" and claims[1].verdict == "holds"
    # the projection only loses separability: no combination contradicts claim 3; near chance (none/clean,
    # both silhouettes ~0) the paired interval may straddle 0, which is what 'inconclusive' is for
    assert claims[2].numbers["n_fails"] == 0 and claims[2].numbers["n_holds"] >= 5
    assert claims[2].verdict in ("holds", "inconclusive")


# ----------------------------------------------------------------------------- seeds are not replicates


def _null_tables(n_tables: int, n_seeds: int, seed: int = 0) -> list[pd.DataFrame]:
    """Results tables with NO association between accuracy and sil_E_a: each combination has its own
    (independent) accuracy and silhouette, and the seeds of a combination scatter a little around it."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_tables):
        acc_c, sil_c = rng.normal(0.5, 0.1, 6), rng.normal(0.2, 0.1, 6)
        rows = [
            {
                "pretraining": p,
                "training": t,
                "seed": s,
                "accuracy": acc_c[i] + rng.normal(0, 0.01),
                "sil_E_a": sil_c[i] + rng.normal(0, 0.01),
            }
            for i, (p, t) in enumerate(LEAKAGE_ORDER)
            for s in range(n_seeds)
        ]
        out.append(pd.DataFrame(rows))
    return out


def test_correlation_claims_keep_their_false_positive_rate_with_seeds():
    from clap_lib.analysis.claims import claim_accuracy_vs_silhouette

    tables = _null_tables(300, n_seeds=3)
    holds = [
        claim_accuracy_vs_silhouette(df, alpha=0.05, n_perm=500, n_boot=10, seed=i).verdict == "holds"
        for i, df in enumerate(tables)
    ]
    # one-sided test at 0.05: "holds" needs r > 0 and p_perm < 0.05 (two-sided), so at most ~2.5 % + noise
    assert np.mean(holds) <= 0.05
    # the same tables with the 18 rows treated as independent (the old rule) pseudo-replicate: far above alpha
    naive = [
        (lambda rep: rep["r"] > 0 and rep["p_perm"] < 0.05)(
            correlation_report(df["sil_E_a"], df["accuracy"], n_perm=500, n_boot=10, seed=i)
        )
        for i, df in enumerate(tables[:150])
    ]
    assert np.mean(naive) > 0.1
    c = claim_accuracy_vs_silhouette(tables[0], n_perm=500, n_boot=10)
    assert c.numbers["n"] == 6 and c.numbers["n_rows"] == 18


def test_combination_means():
    df = pd.DataFrame(
        {"pretraining": ["none", "dirty", "none"], "training": ["clean", "dirty", "clean"], "accuracy": [0.1, 0.8, 0.3]}
    )
    m = combination_means(df, ["accuracy"])
    assert list(zip(m.pretraining, m.training)) == [("dirty", "dirty"), ("none", "clean")]
    assert m["accuracy"].tolist() == pytest.approx([0.8, 0.2]) and m["n_rows"].tolist() == [1, 2]


def test_every_claim_holds_on_the_papers_own_tables():
    from clap_lib.analysis import paper_tables as pt

    claims = evaluate_claims(pt.load(pt.PACKAGED), **FAST)
    assert {c.id: c.verdict for c in claims} == {1: "holds", 2: "holds", 3: "holds", 4: "holds", 5: "holds"}
    assert claims[1].numbers["r"] == pytest.approx(0.972, abs=5e-4)
    assert claims[4].numbers["r"] == pytest.approx(0.845, abs=5e-4)
    # exact permutation p over the 720 orderings of the six combinations: 35 reach |r| >= 0.845
    assert claims[4].numbers["p_perm"] == pytest.approx(35 / 720)
    # the paper's own partial-order agreement: every comparable pair is concordant
    assert claims[0].numbers["n_discordant_pairs"] == 0 and claims[0].numbers["partial_order_tau"] == 1.0


def test_every_verdict_is_the_aggregate_of_its_parts():
    tables = [
        paper_like(),
        paper_like().assign(sil_x_a=lambda d: d["sil_E_a"] - 0.01),
        paper_like().assign(accuracy_lo=lambda d: d["accuracy"] - 0.05, accuracy_hi=lambda d: d["accuracy"] + 0.05),
    ]
    for df in tables:
        for c in evaluate_claims(df, **FAST):
            assert c.parts, c.id
            assert c.verdict == aggregate([p.verdict for p in c.parts if p.in_verdict]), c.id
