"""Issue 21, the ladder of CRNNs: the seven teacher-student networks load strictly with their label files, the
pretraining dose's clip sets (nested, no T clip at g = 0), and the ladder's statistics against scipy /
statsmodels / scikit-learn on synthetic data with a known answer."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from clap_lib.config.experiment import KNOWN_WEIGHTS
from clap_lib.data.paths import shared_data_dir
from clap_lib.models.backbones import spec
from clap_lib.models.backbones.crnn import Crnn
from clap_lib.models.backbones.gpvad_files import (
    GPVAD_DD_ENV,
    GPVAD_DD_FILES,
    GPVAD_FILES,
    PUBLISHED,
    gpvad_dir,
    load_gpvad,
    read_gpvad_labels,
)


def _shared(folder: str, files) -> Path:
    d = shared_data_dir()
    missing = [f.file for f in files if d is None or not (d / folder / f.file).is_file()]
    if missing:
        pytest.skip(f"not in <shared data>/{folder}: {', '.join(missing)}")
    return d / folder


# --- the published networks ----------------------------------------------------------------------------


def test_every_published_crnn_is_known_by_name():
    assert (
        set(KNOWN_WEIGHTS["crnn"])
        == set(PUBLISHED)
        == {"gpv_f", "gpv_b", "vad_c", "teacher1", "teacher2", "a2", "v2", "a2_v2", "sre", "c1"}
    )
    assert {f.exposure for f in PUBLISHED.values()} == {"audioset_527", "speech"}
    assert [n for n, f in PUBLISHED.items() if f.exposure == "audioset_527"] == ["gpv_f", "teacher1", "teacher2"]


@pytest.mark.parametrize("name", sorted(GPVAD_DD_FILES))
def test_gpvad_dd_file_loads_strictly_with_its_label_file(name):
    folder = _shared("gpvad_dd", [GPVAD_DD_FILES[name]])
    f = GPVAD_DD_FILES[name]
    m = load_gpvad(folder / f.file)  # the SHA-256 prefix is checked on the way
    assert isinstance(m, Crnn) and not m.training
    state = torch.load(folder / f.file, map_location="cpu", weights_only=True)
    assert len(state) == 40 and set(state) == set(m.state_dict())
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    labels = read_gpvad_labels(folder / f.labels, m.n_labels)  # raises unless the CSV has one row per output
    assert len(labels) == {"teacher_labels.csv": 527, "student_labels.csv": 2}[f.labels]
    assert "Speech" in labels
    # by registry name, through the backbone interface the pipeline uses
    bb = spec("crnn")
    assert bb.weights_file(name) == folder / f.file
    assert bb.head_labels(name) == labels
    assert bb.weights_info(name)["exposure"] == f.exposure


def test_student_labels_are_non_speech_and_speech():
    folder = _shared("gpvad_dd", [GPVAD_DD_FILES["a2"]])
    assert read_gpvad_labels(folder / "student_labels.csv", 2) == ("non-Speech", "Speech")


def test_teacher_labels_are_gpv_f_labels():
    dd = _shared("gpvad_dd", [GPVAD_DD_FILES["teacher1"]])
    gp = _shared("gpvad", [GPVAD_FILES["gpv_f"]])
    teacher = read_gpvad_labels(dd / "teacher_labels.csv", 527)
    assert teacher == read_gpvad_labels(gp / "gpv_f_labels.csv", 527)
    assert teacher[0] == "A_capella"


@pytest.mark.parametrize("name", ["teacher1", "sre"])
def test_truncated_gpvad_dd_copy_fails_naming_the_file(name, tmp_path):
    folder = _shared("gpvad_dd", [GPVAD_DD_FILES[name]])
    f = GPVAD_DD_FILES[name]
    data = (folder / f.file).read_bytes()
    same_name = tmp_path / f.file  # a registered name: the SHA-256 check names it and the expected prefix
    same_name.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{same_name}: SHA-256 .* not the published {f.file} \({f.sha256_prefix}"):
        load_gpvad(same_name)
    with pytest.raises(ValueError, match=rf"{same_name} is not a readable torch state dict"):
        load_gpvad(same_name, verify=False)


def test_gpvad_dd_folder_from_its_own_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(GPVAD_DD_ENV, str(tmp_path))
    assert gpvad_dir(folder="gpvad_dd") == tmp_path
    with pytest.raises(FileNotFoundError, match="vox2.pth"):
        load_gpvad("v2")
    with pytest.raises(FileNotFoundError, match=rf"vox2.pth.*{GPVAD_DD_ENV}"):
        spec("crnn").weights_file("v2")


# --- the pretraining dose ----------------------------------------------------------------------------------

DOSES = (0.0, 0.25, 0.5, 1.0)


@pytest.fixture(scope="module")
def esc50_meta():
    from clap_lib.data.esc50 import locate_esc50, read_esc50_meta

    try:
        return read_esc50_meta(locate_esc50())
    except FileNotFoundError as e:
        pytest.skip(f"ESC-50 metadata not found: {e}")


def test_dose_source_parses_and_names_its_reference():
    from clap_lib.config.experiment import WeightSource, parse_source
    from clap_lib.config.profiles import make_config
    from clap_lib.pipeline.keys import reference_name

    assert parse_source("file:gpv_b+train:background+T:0.25") == WeightSource("gpv_b", "background", 0.25)
    assert parse_source("train:background+T:0") == WeightSource(None, "background", 0.0)
    assert parse_source("train:background") == WeightSource(None, "background", None)
    for bad in (
        "train:all+T:0.5",
        "T:0.5",
        "train:background+T:1.5",
        "train:background+T:x",
        "train:background+T:0.5+T:0.5",
        "file:gpv_b+T:0.5",
    ):
        with pytest.raises(ValueError, match="bad weight source"):
            parse_source(bad)
    assert reference_name("file:gpv_b+train:background+T:0.25") == "reference/gpv_b+background+T0.25"
    assert reference_name("train:background+T:1") == "reference/random+background+T1"
    from clap_lib.config.experiment import config_payload
    from clap_lib.report.tables import _weights_text

    text = _weights_text(
        config_payload(make_config("gpvad", {"weights.clean": "file:gpv_b+train:background+T:0.25"})), "clean"
    )
    assert "published gpv_b.pth" in text and "B plus 0.25 of the T classes' clips, folds 1-4" in text
    cfg = make_config("gpvad", {"reference_weights": ",".join(f"file:gpv_b+train:background+T:{g:g}" for g in DOSES)})
    assert len(cfg.reference_weights) == 4


def test_dose_payloads_differ_by_g_only_in_the_source():
    from clap_lib.config.profiles import make_config
    from clap_lib.pipeline.keys import stage_payloads

    refs = tuple(f"train:background+T:{g:g}" for g in DOSES)
    cfg = make_config("gpvad", {"reference_weights": ",".join(refs)})
    p = stage_payloads(cfg, "data")
    pays = [p[f"backbone/reference/random+background+T{g:g}"] for g in DOSES]
    assert len({str(x) for x in pays}) == 4
    assert all({"seed", "pretrain", "split_seed"} <= set(x["fields"]) for x in pays)  # trained here, seeded


def test_g0_clip_set_holds_no_target_clip_and_doses_are_nested(esc50_meta):
    from clap_lib.data.esc50 import EVAL_FOLD, split_classes, train_eval_masks
    from clap_lib.data.pretrain_dose import dose_classes, dose_clips

    meta = esc50_meta
    split = split_classes(0)
    train_mask, _ = train_eval_masks(meta)
    cat = meta["category"].to_numpy()
    sets, trains, vals = [], [], []
    for g in DOSES:
        idx, tr, va = dose_clips(meta, train_mask, split, g, 0.2, seed=3)
        assert (meta["fold"].to_numpy()[idx] != EVAL_FOLD).all()
        assert np.array_equal(np.sort(np.concatenate([idx[tr], idx[va]])), idx)
        per_class = meta.iloc[idx]["category"].value_counts()
        # B: all 32 training clips of each class; T: round(32 g) of each class
        assert all(per_class.get(c, 0) == 32 for c in split.background)
        assert all(per_class.get(c, 0) == int(32 * g) for c in split.target)
        sets.append(set(idx)), trains.append(set(idx[tr])), vals.append(set(idx[va]))
        assert dose_classes(split, g) == ((*split.background, *split.target) if g else split.background)
    assert not set(cat[list(sets[0])]) & set(split.target)  # g = 0 never sees a T clip
    assert len(sets[0]) == 25 * 32 and len(sets[-1]) == 50 * 32
    for a, b in zip(range(3), range(1, 4)):
        assert sets[a] < sets[b] and trains[a] <= trains[b] and vals[a] <= vals[b]
    assert 0.15 < len(vals[-1]) / len(sets[-1]) < 0.25
    # another seed draws other T clips at g = 0.25, the same B clips
    other = set(dose_clips(meta, train_mask, split, 0.25, 0.2, seed=4)[0])
    assert other != sets[1] and other & sets[0] == sets[0]


def test_g0_network_never_gets_a_target_label(esc50_meta, tmp_path):
    """The pipeline's pretraining input of the dose sources: at g = 0 no item with a T label and a head of B only."""
    from clap_lib.config.profiles import make_config
    from clap_lib.data.esc50 import train_eval_masks
    from clap_lib.pipeline.esc50_inputs import Esc50Inputs

    cfg = make_config("gpvad", {"reference_weights": "file:gpv_b+train:background+T:0,train:background+T:0.5"})
    meta = esc50_meta
    inp = Esc50Inputs(cfg, meta, "fp", cfg.split, None)
    train_mask, _ = train_eval_masks(meta)
    ok = np.ones(len(meta), bool)
    p0 = inp._pretraining("background", None, ok, train_mask, 0.0)
    seen = np.concatenate([p0.train_idx, p0.val_idx])
    assert p0.n_classes == 25 and p0.labels.max() == 24
    assert not meta.loc[seen, "category"].isin(cfg.split.target).any()
    assert (p0.labels[meta["category"].isin(cfg.split.target).to_numpy()] == -1).all()
    # the backbone stage keeps the evidence: every clip it trained on, none of T
    assert p0.evidence(tmp_path) == {"n_pretraining_clips": 800, "n_target_clips": 0}
    saw = pd.read_csv(tmp_path / "pretraining_clips.csv")
    assert len(saw) == 800 and not saw["category"].isin(cfg.split.target).any() and set(saw["fold"]) == {1, 2, 3, 4}
    assert (saw["part"] == "val").sum() == len(p0.val_idx)
    p5 = inp._pretraining("background", None, ok, train_mask, 0.5)
    seen5 = np.concatenate([p5.train_idx, p5.val_idx])
    assert p5.n_classes == 50 and set(seen) < set(seen5)
    classes = (*cfg.split.background, *cfg.split.target)
    assert [classes[i] for i in p5.labels[seen5]] == list(meta.loc[seen5, "category"])
    assert "background+T:0.5" in p5.trained_on


# --- the ladder's statistics ---------------------------------------------------------------------------------------


def test_exposure_of_every_kind_of_source():
    from clap_lib.analysis.ladder import Exposure
    from clap_lib.analysis.ladder import exposure_of as exposure_with

    bb = spec("crnn")
    published = {n: bb.weights_info(n)["exposure"] for n in KNOWN_WEIGHTS["crnn"]}

    def exposure_of(source):  # the crnn registry's exposures, as a caller passes them
        return exposure_with(source, published)

    assert exposure_of("random") == Exposure("none")
    assert [exposure_of(f"file:{n}").kind for n in ("gpv_f", "teacher1", "teacher2")] == ["audioset_527"] * 3
    assert {exposure_of(f"file:{n}").kind for n in ("gpv_b", "vad_c", "a2", "v2", "a2_v2", "sre", "c1")} == {"speech"}
    assert exposure_of("file:gpv_b+train:background") == Exposure("esc50", 0.0)
    assert exposure_of("file:gpv_b+train:background+T:0.25") == Exposure("esc50", 0.25)
    assert exposure_of("train:all") == Exposure("esc50", 1.0)
    ranks = [
        exposure_of(s).rank
        for s in (
            "random",
            "file:a2",
            "train:background+T:0",
            "train:background+T:0.5",
            "train:background+T:1",
            "file:gpv_f",
        )
    ]
    assert ranks == [0, 1, 2, 2.5, 3, 3]
    assert [exposure_of(s).t_labels for s in ("random", "file:sre", "train:background+T:0.5", "file:teacher2")] == [
        0,
        0,
        0.5,
        1,
    ]
    from clap_lib.analysis.ladder import ladder_sources

    ladder = ladder_sources("crnn")
    assert len(ladder) == 10 + 1 + 2 * 4  # published, random init, the dose from random and from GPV-B
    assert ladder["gpv_b+B+T0.25"] == "file:gpv_b+train:background+T:0.25"
    assert ladder["random+B+T0"] == "train:background+T:0"
    assert sorted(exposure_of(s).label for s in ladder.values()).count("speech") == 7
    assert set(ladder_sources("cnn14")) == {"panns", "random", *(f"random+B+T{g:g}" for g in (0, 0.25, 0.5, 1))}
    with pytest.raises(ValueError, match="no registered label exposure"):
        exposure_of("file:/somewhere/mine.pth")
    with pytest.raises(ValueError, match="dose g"):
        Exposure("speech", 0.5)


def _ladder(rng, n_net=8, slope=2.0, noise=0.0):
    rows = []
    for k in range(n_net):
        for s in range(int(rng.integers(1, 4))):  # 1-3 seeds per network
            x = k / n_net + 0.05 * rng.standard_normal()
            rows.append(
                {
                    "network": f"n{k}",
                    "seed": s,
                    "separability": x,
                    "accuracy": 0.1 + slope * x + noise * rng.standard_normal(),
                }
            )
    return pd.DataFrame(rows)


def test_ladder_correlation_perfectly_linear_is_one_in_every_resample():
    from clap_lib.analysis.ladder import ladder_correlation

    df = _ladder(np.random.default_rng(0))
    c = ladder_correlation(df, n_boot=300)
    # every row on one line: so is every mean of rows, in every two-level resample
    assert c.pearson.value == pytest.approx(1) and c.pearson.lo == pytest.approx(1) and c.pearson.hi == pytest.approx(1)
    assert c.spearman.value == pytest.approx(1) and c.spearman.lo == pytest.approx(1)
    assert c.n_networks == 8 and c.n_rows == len(df) and 250 < c.n_boot <= 300


def test_ladder_correlation_is_that_of_network_means_against_scipy():
    from clap_lib.analysis.ladder import hierarchical_draw, ladder_correlation

    df = _ladder(np.random.default_rng(1), n_net=12, noise=0.5)
    means = df.groupby("network")[["separability", "accuracy"]].mean()
    c = ladder_correlation(df, n_boot=500, seed=2)
    assert c.pearson.value == pytest.approx(stats.pearsonr(means["separability"], means["accuracy"]).statistic)
    assert c.spearman.value == pytest.approx(stats.spearmanr(means["separability"], means["accuracy"]).statistic)
    assert c.p_pearson == pytest.approx(stats.pearsonr(means["separability"], means["accuracy"]).pvalue)
    assert c.pearson.lo < c.pearson.value < c.pearson.hi and c.spearman.lo < c.spearman.hi
    # a network seen with more seeds is still one point: repeating its rows changes nothing
    more = pd.concat([df, df[df["network"] == "n3"]], ignore_index=True)
    assert ladder_correlation(more, n_boot=10).pearson.value == pytest.approx(c.pearson.value)
    # the draw: networks with replacement, then each drawn network's own rows
    draw = hierarchical_draw([1, 3, 2], np.random.default_rng(0))
    assert len(draw) == 3 and all(len(rows) == [1, 3, 2][k] and rows.max() < [1, 3, 2][k] for k, rows in draw)


def test_exposure_regression_recovers_a_known_coefficient():
    from clap_lib.analysis.ladder import exposure_regression

    rng = np.random.default_rng(3)
    df = _ladder(rng, n_net=10)
    g = {f"n{k}": v for k, v in enumerate(rng.permutation(np.linspace(0, 1, 10)))}
    df["exposure"] = df["network"].map(g)
    df["accuracy"] += 0.5 * df["exposure"]  # y = 0.1 + 2 x + 0.5 e exactly
    r = exposure_regression(df)
    c = r.coefficients.set_index("term")
    assert list(c.index) == ["Intercept", "separability", "exposure"] and r.exposure_terms == ("exposure",)
    assert c.loc["exposure", "coef"] == pytest.approx(0.5) and c.loc["separability", "coef"] == pytest.approx(2)
    assert c.loc["exposure", "hi"] - c.loc["exposure", "lo"] < 1e-8 and r.r2_full == pytest.approx(1)


def test_exposure_regression_against_sklearn_and_a_hand_f_test():
    from sklearn.linear_model import LinearRegression

    from clap_lib.analysis.ladder import exposure_regression

    rng = np.random.default_rng(4)
    df = _ladder(rng, n_net=15, noise=0.3)
    g = {f"n{k}": float(rng.random()) for k in range(15)}
    df["exposure"] = df["network"].map(g)
    df["accuracy"] += 0.4 * df["exposure"]
    r = exposure_regression(df, level=0.9)
    m = df.groupby("network", sort=False)[["separability", "exposure", "accuracy"]].mean()
    X, y = m[["separability", "exposure"]].to_numpy(), m["accuracy"].to_numpy()
    lin = LinearRegression().fit(X, y)
    c = r.coefficients.set_index("term")
    assert c.loc[["separability", "exposure"], "coef"].to_numpy() == pytest.approx(lin.coef_)
    # standard error and 90 % t interval by hand
    A = np.column_stack([np.ones(len(X)), X])
    rss = float(np.sum((y - lin.predict(X)) ** 2))
    se = np.sqrt(rss / (len(y) - 3) * np.linalg.inv(A.T @ A)[2, 2])
    assert c.loc["exposure", "se"] == pytest.approx(se)
    t = stats.t.ppf(0.95, len(y) - 3)
    assert (c.loc["exposure", "lo"], c.loc["exposure", "hi"]) == pytest.approx(
        (lin.coef_[1] - t * se, lin.coef_[1] + t * se)
    )
    # F-test of exposure beyond separability: nested residual sums of squares
    reduced = LinearRegression().fit(X[:, :1], y)
    rss0 = float(np.sum((y - reduced.predict(X[:, :1])) ** 2))
    f = (rss0 - rss) / (rss / (len(y) - 3))
    assert r.f == pytest.approx(f) and r.p == pytest.approx(stats.f.sf(f, 1, len(y) - 3)) and r.df_num == 1
    assert r.r2_separability == pytest.approx(reduced.score(X[:, :1], y))


def test_exposure_regression_categorical_against_a_reference():
    from clap_lib.analysis.ladder import exposure_regression

    rng = np.random.default_rng(5)
    df = _ladder(rng, n_net=9)
    kinds = dict(zip([f"n{k}" for k in range(9)], ["none", "speech", "audioset_527"] * 3))
    df["exposure"] = df["network"].map(kinds)
    df["accuracy"] += df["exposure"].map({"none": 0.0, "speech": 0.1, "audioset_527": 0.3})
    r = exposure_regression(df, categorical=True, reference="none")
    c = r.coefficients.set_index("term")
    assert c.loc["exposure[T.speech]", "coef"] == pytest.approx(0.1)
    assert c.loc["exposure[T.audioset_527]", "coef"] == pytest.approx(0.3)
    assert set(r.exposure_terms) == {"exposure[T.speech]", "exposure[T.audioset_527]"} and r.df_num == 2
    counts = df["network"].value_counts()
    row = df.index[df["network"] == counts.index[counts > 1][0]][0]  # a row of a network with several seeds
    df.loc[row, "exposure"] = "speech" if df.loc[row, "exposure"] != "speech" else "none"
    with pytest.raises(ValueError, match="varies within network"):
        exposure_regression(df, categorical=True)


def test_ranking_tau_without_ties_is_scipys_exact_test():
    from clap_lib.analysis.ladder import ranking_tau

    rng = np.random.default_rng(6)
    s, r = rng.standard_normal(6), rng.permutation(6).astype(float)
    res = ranking_tau(s, r)
    ref = stats.kendalltau(s, r, method="exact")
    assert res.exact and res.n_permutations == 720
    assert res.tau == pytest.approx(ref.statistic) and res.p == pytest.approx(ref.pvalue)
    perfect = ranking_tau(np.arange(6.0), np.arange(6.0))
    assert perfect.tau == 1 and perfect.p == pytest.approx(2 / 720)  # only the order and its reverse are as extreme


def test_ranking_tau_with_tied_exposure_against_full_enumeration():
    from clap_lib.analysis.ladder import kendall_tau_b, ranking_tau

    s = np.array([0.1, 0.5, 0.3, 0.9, 0.2, 0.8, 0.7])  # audit scores of 7 networks
    r = np.array([0, 1, 1, 1, 2, 3, 3.0])  # exposure ranks, tied
    res = ranking_tau(s, r)
    tau = stats.kendalltau(s, r).statistic  # tau-b
    assert res.tau == pytest.approx(tau) and kendall_tau_b(s, r) == pytest.approx(tau)
    null = np.array([stats.kendalltau(s[list(p)], r).statistic for p in itertools.permutations(range(7))])
    assert res.exact and res.p == pytest.approx(np.mean(np.abs(null) >= abs(tau) - 1e-12))
    mc = ranking_tau(s, r, n_perm=2000, seed=1)  # 2000 < 7!: a seeded sample of permutations
    assert not mc.exact and mc.n_permutations == 2000 and abs(mc.p - res.p) < 0.05
    with pytest.raises(ValueError, match="constant"):
        ranking_tau(s, np.ones(7))


def test_audit_ranking_orders_networks_and_scores_the_order():
    from clap_lib.analysis.ladder import Exposure, audit_ranking

    exp = {
        "random": Exposure("none"),
        "a2": Exposure("speech"),
        "b": Exposure("esc50", 0.0),
        "b+T": Exposure("esc50", 1.0),
        "gpv_f": Exposure("audioset_527"),
    }
    scores = {"random": -0.3, "a2": -0.2, "b": -0.1, "b+T": 0.2, "gpv_f": 0.1}
    table, tau = audit_ranking(scores, exp)
    assert list(table["network"]) == ["b+T", "gpv_f", "b", "a2", "random"]
    assert list(table["audit rank"]) == [1, 2, 3, 4, 5]
    # ranks 3, 3 tied at the top: 9 concordant pairs, 0 discordant, 1 tied in exposure only
    assert tau.tau == pytest.approx(9 / np.sqrt(10 * 9)) and tau.exact and tau.n_permutations == 120
    with pytest.raises(ValueError, match="only in one of them: \\['c1'\\]"):
        audit_ranking(scores | {"c1": 0.0}, exp)


@pytest.mark.slow
def test_dose_backbone_stage_trains_on_b_only_at_g0(tiny_esc50, tmp_path):
    """End to end through the backbone stage (tiny ESC-50, lab backbone): the g = 0 dose network's head has the B
    classes only, and the stage folder records every clip it trained on, none of T."""
    from fixtures import tiny_config

    from clap_lib.data.esc50 import read_esc50_meta
    from clap_lib.pipeline.esc50_inputs import Esc50Inputs
    from clap_lib.pipeline.stages import backbone_stage, features_stage

    cfg = tiny_config(reference_weights="train:background+T:0")
    meta = read_esc50_meta(tiny_esc50)
    feats = features_stage(tmp_path, meta, "tiny", cfg.audio, False, lambda *a: None)
    ok = np.load(feats.dir / "ok.npy")
    inp = Esc50Inputs(cfg, meta, "tiny", cfg.split, None).backbone("reference/random+background+T0", feats, ok)
    bb = backbone_stage(tmp_path, cfg, feats, inp, lambda *a: None)
    state = torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True)
    assert state["fc_audioset.weight"].shape[0] == len(cfg.split.background) == 25
    saw = pd.read_csv(bb.dir / "pretraining_clips.csv")
    assert len(saw) == 25 * 4 * 2 and not saw["category"].isin(cfg.split.target).any()  # 2 clips per class and fold
    assert "background+T:0" in (bb.dir / "provenance.json").read_text()
