"""The grid end to end on a tiny synthetic ESC-50 (all 50 classes, 5 folds) written by the test."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fixtures import tiny_config

from clap_lib.analysis import metrics
from clap_lib.config.profiles import make_config
from clap_lib.data.captions import CAPTION_BANK
from clap_lib.data.esc50 import EVAL_FOLD, read_esc50_meta
from clap_lib.data.filtering import leakage_filter
from clap_lib.data.pairs import load_caption_source, training_pairs
from clap_lib.pipeline.evaluation import eval_selection
from clap_lib.pipeline.grid import run_grid
from clap_lib.pipeline.results import latest_grid

pytestmark = pytest.mark.slow

COLUMNS = ["accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]


def test_results_table_has_every_combination_and_metric(tiny_grid):
    grid, artifacts = tiny_grid
    df = latest_grid(artifacts).results
    assert sorted(zip(df["pretraining"], df["training"])) == sorted(
        (p, t) for p in ("dirty", "clean", "none") for t in ("dirty", "clean")
    )
    assert df[COLUMNS].notna().all().all()
    assert df["accuracy"].between(0, 1).all() and df[["sil_x_a", "sil_E_a"]].abs().le(1).all().all()
    assert df[["topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]].apply(lambda s: s.between(0, 1)).all().all()
    assert np.allclose(df["random_guess"], 1 / 25) and (df["n_eval_clips"] == 25 * 2).all()
    assert set(grid.correlations) == {"acc_vs_sil_E_a", "logacc_vs_topo_Ea_Et"}
    for col in ("topo_Ea_Et_chance", "topo_Ea_Et_excess", "topo_Ea_Et_k_edge"):
        assert col in df  # S is reported with its chance level, edge flag and edge-free summary


def test_metrics_recomputed_from_saved_embeddings(tiny_grid):
    """The table's numbers are exactly what metrics.py gives on the saved fold-5 embeddings."""
    grid, _ = tiny_grid
    row = grid.results.iloc[0]
    e = dict(np.load(f"{row['run_dir']}/embeddings.npz"))
    sel = eval_selection(e, tiny_config().split)
    assert row["accuracy"] == pytest.approx(metrics.zero_shot_accuracy(sel["E_a"], sel["E_t"], sel["y"]))
    assert row["sil_E_a"] == pytest.approx(metrics.silhouette(sel["E_a"], sel["y"]))
    mE_a, _ = metrics.label_means(sel["E_a"], sel["y"])
    assert row["topo_Ea_Et"] == pytest.approx(metrics.topological_similarity(mE_a, sel["E_t"]).S)
    # S(x_a, E_a) is on clips, as the paper computes it (not on label means)
    assert row["topo_xa_Ea"] == pytest.approx(
        metrics.topological_similarity(sel["x_a"], sel["E_a"], 2, len(sel["x_a"]) // 2).S
    )
    # every fold-5 clip is embedded, and only fold-5 clips
    assert all(name.startswith(f"{EVAL_FOLD}-") for name in e["clip_file"]) and len(e["clip_file"]) == 100


def test_grid_paths_are_relative_so_the_folder_can_move(tiny_grid, tmp_path):
    import shutil

    grid, artifacts = tiny_grid
    raw = pd.read_csv(grid.dir / "results.csv")["run_dir"]
    assert not any(str(p).startswith("/") for p in raw)
    stages = json.loads((grid.dir / "stages.json").read_text())
    assert not any(str(p).startswith("/") for part in stages.values() for p in part.values())
    moved = tmp_path / "moved"
    shutil.copytree(artifacts, moved)
    g = latest_grid(moved)
    assert g.dir.is_relative_to(moved) and all(str(p).startswith(str(moved)) for p in g.results["run_dir"])


def test_training_levels_are_filtered_dirty_pairs(tiny_esc50):
    meta = read_esc50_meta(tiny_esc50)
    ok = np.ones(len(meta), bool)
    cfg = tiny_config()
    split = cfg.split
    src = load_caption_source(cfg)
    dirty, info_d, fp_d = training_pairs(cfg, meta, ok, split, "dirty", src)
    clean, info_c, fp_c = training_pairs(cfg, meta, ok, split, "clean", src)
    strict, info_s, _ = training_pairs(cfg, meta, ok, split, "strict", src)
    assert len(dirty) == 50 * 4 * 2 * 6 == info_d["n_pairs"]  # 50 classes x folds 1-4 x 2 clips x 6 captions
    assert not (meta.loc[dirty["clip"], "fold"] == EVAL_FOLD).any()  # fold discipline
    keep = leakage_filter(dirty["caption"].tolist(), split.target).keep
    assert len(clean) == int(keep.sum()) == info_c["n_pairs"]
    assert set(clean["caption"]) == set(dirty["caption"][keep])
    assert set(strict["caption"]) <= set(clean["caption"])  # strict removes a superset of clean
    # residual leakage: the target clips that stay in clean are paired with synonym captions only
    target_caps = set(clean.loc[clean["category"].isin(split.target), "caption"])
    assert target_caps <= {c for cls in split.target for c in CAPTION_BANK[cls][4:]}
    assert info_c["n_target_clip_pairs"] == int(clean["category"].isin(split.target).sum()) > 0
    assert info_s["n_target_clip_pairs"] < info_c["n_target_clip_pairs"]
    assert fp_d != fp_c and set(info_c["surviving_T"]) == set(split.target)


def test_rerun_reuses_every_stage(tiny_grid, tiny_esc50):
    grid, artifacts = tiny_grid
    before = (artifacts / "run.log").read_text()
    again = run_grid(tiny_config(), tiny_esc50, artifacts, quiet=True)
    log = (artifacts / "run.log").read_text()[len(before) :]
    assert "computed" not in log and log.count("reusing") == 1 + 3 + 1 + 6 + 1  # features, backbones, text, clap, grid
    pd.testing.assert_frame_equal(again.results, grid.results)


def test_one_changed_parameter_recomputes_only_what_depends_on_it(tiny_grid, tiny_esc50):
    _, artifacts = tiny_grid
    cfg = replace(tiny_config(**{"clap.frozen_epochs": "2"}), pretrainings=("clean",), trainings=("clean",))
    before = (artifacts / "run.log").read_text()
    run_grid(cfg, tiny_esc50, artifacts, quiet=True, update_latest=False)
    log = (artifacts / "run.log").read_text()[len(before) :]
    cache = [ln.split("[cache] ")[1] for ln in log.splitlines() if "[cache] " in ln]
    assert [c.split("/")[0] for c in cache] == ["features", "backbone", "text", "clap", "grid"]
    assert "reusing" in cache[1]  # the clean backbone is shared (features and text are too: their keys are the same)
    assert all("reusing" in c for c in cache[:3]) and "computed" in cache[3] and "computed" in cache[4]


def test_gpvad_profile_end_to_end_with_random_crnns(tiny_esc50, tmp_path):
    """The default profile's pipeline (CRNN backbone, GPVAD front end) on synthetic audio, with random weights."""
    cfg = tiny_config(
        "gpvad",
        **{
            "weights.dirty": "random",
            "weights.clean": "random",
            "reference_weights": "",
            "pretrainings": "dirty,none",
            "trainings": "dirty",
        },
    )
    g = run_grid(cfg, tiny_esc50, tmp_path / "a", quiet=True)
    assert len(g.results) == 2 and g.results["accuracy"].between(0, 1).all()
    x_a = np.load(tmp_path / "a" / json.loads((g.dir / "stages.json").read_text())["backbone"]["none"] / "x_a.npy")
    assert x_a.shape == (500, 256)  # every clip, the CRNN's 256-d x_a
    sep = pd.read_csv(g.dir / "separability.csv")
    assert set(sep["backbone"]) == {"dirty", "none"} and sep["probe"].between(0, 1).all()
    # same seed, same random init: the two levels are the same network, so their x_a are equal
    x_dirty = np.load(tmp_path / "a" / json.loads((g.dir / "stages.json").read_text())["backbone"]["dirty"] / "x_a.npy")
    np.testing.assert_array_equal(x_a, x_dirty)
    # the band-limited control of the dirty network: the bands above 8 kHz at log(eps), x_a compared clip by clip
    from clap_lib.models.frontend import crnn_front_end, mel_bands_above

    bc = json.loads((g.dir / "band_control.json").read_text())
    assert bc["bands"] == mel_bands_above(8000.0, crnn_front_end(cfg.audio)).tolist() == [59, 60, 61, 62, 63]
    assert -1 <= bc["x_a_cosine_p5"] <= bc["x_a_cosine_median"] <= 1 and bc["n_clips"] == 500
    assert [r["measure"] for r in bc["rows"]] == ["linear probe accuracy", "1-NN accuracy", "silhouette of x_a"]
    assert bc["rows"][0]["as run"] == pytest.approx(sep.set_index("backbone").loc["dirty", "probe"])
    # the default run's extra stage (the shortcut at paper strength): computed, or skipped with the reason
    from clap_lib.pipeline.paper_strength import paper_strength_for

    ps = paper_strength_for(g.dir)
    assert ps is not None and ("skipped" in ps or ps["shortcut"]["all_50"]["every_clip"]["n_clips"] == 500)


def test_missing_weights_stop_before_any_work(tiny_esc50, tmp_path, capsys, monkeypatch):
    from clap_lib.cli import main

    empty = tmp_path / "weights"
    empty.mkdir()
    monkeypatch.setenv("CLAP_GPVAD", str(empty))
    args = [
        "run",
        "--profile",
        "gpvad",
        "--esc50",
        str(tiny_esc50),
        "--artifacts",
        str(tmp_path / "a"),
        "--set",
        "captions=bank",
        "--set",
        "controlled.enabled=false",  # it needs real captions
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{empty}/gpv_f.pth" in err and "CLAP_GPVAD" in err and "<shared data>/gpvad" in err
    assert not (tmp_path / "a" / "features").exists()  # nothing was computed


def test_profiles_and_bad_values():
    assert make_config("paper").width == 1.0 and make_config("paper").text_model == "bert-base-uncased"
    with pytest.raises(ValueError, match="unknown profile 'fast'; allowed: gpvad, lab, paper"):
        make_config("fast")


def test_show_checks_manifests(tiny_grid, tmp_path, capsys):
    import shutil

    from clap_lib.cli import main

    _, artifacts = tiny_grid
    copy = tmp_path / "copy"
    shutil.copytree(artifacts, copy)
    assert main(["show", "--artifacts", str(copy)]) == 0
    run_dir = latest_grid(copy).results["run_dir"].iloc[0]
    with open(f"{run_dir}/metrics.json", "a") as f:
        f.write(" ")
    capsys.readouterr()
    assert main(["show", "--artifacts", str(copy)]) == 2
    assert "metrics.json" in capsys.readouterr().err
