"""The grid end to end on a tiny synthetic ESC-50 (all 50 classes, 5 folds) written by the test."""
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from clap_lib import metrics
from clap_lib.captions import CAPTION_BANK
from clap_lib.esc50 import EVAL_FOLD, read_esc50_meta
from clap_lib.experiment import PRETRAININGS, TRAININGS, latest_grid, make_config, run_grid, training_pairs
from clap_lib.esc50 import ESC50_CLASSES
from clap_lib.filtering import leakage_filter
from fixtures import tiny_config

pytestmark = pytest.mark.slow

COLUMNS = ["accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]


def test_results_table_has_every_combination_and_metric(tiny_grid):
    grid, artifacts = tiny_grid
    df = latest_grid(artifacts).results
    assert sorted(zip(df["pretraining"], df["training"])) == sorted((p, t) for p in PRETRAININGS for t in TRAININGS)
    assert df[COLUMNS].notna().all().all()
    assert df["accuracy"].between(0, 1).all() and df[["sil_x_a", "sil_E_a"]].abs().le(1).all().all()
    assert df[["topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]].apply(lambda s: s.between(0, 1)).all().all()
    assert np.allclose(df["random_guess"], 1 / 25) and (df["n_eval_clips"] == 25 * 2).all()
    assert set(grid.correlations) == {"acc_vs_sil_E_a", "logacc_vs_topo_Ea_Et"}


def test_metrics_recomputed_from_saved_embeddings(tiny_grid):
    """The table's numbers are exactly what metrics.py gives on the saved fold-5 embeddings."""
    grid, _ = tiny_grid
    row = grid.results.iloc[0]
    e = np.load(f"{row['run_dir']}/embeddings.npz")
    T = json.loads((grid.dir / "config.json").read_text())["target_classes"]
    t_idx = np.array([ESC50_CLASSES.index(c) for c in T])
    sel = np.isin(e["clip_target"], t_idx)
    y = np.searchsorted(t_idx, e["clip_target"][sel])
    assert row["accuracy"] == pytest.approx(metrics.zero_shot_accuracy(e["E_a"][sel], e["E_t"][t_idx], y))
    assert row["sil_E_a"] == pytest.approx(metrics.silhouette(e["E_a"][sel], y))
    mE_a, _ = metrics.label_means(e["E_a"][sel], y)
    assert row["topo_Ea_Et"] == pytest.approx(metrics.topological_similarity(mE_a, e["E_t"][t_idx]).S)
    # every fold-5 clip is embedded, and only fold-5 clips
    assert all(name.startswith(f"{EVAL_FOLD}-") for name in e["clip_file"]) and len(e["clip_file"]) == 100


def test_clean_training_pairs_are_the_filtered_dirty_pairs(tiny_esc50):
    meta = read_esc50_meta(tiny_esc50)
    ok = np.ones(len(meta), bool)
    split = tiny_config().split
    dirty, info_d = training_pairs(meta, ok, split, "dirty")
    clean, info_c = training_pairs(meta, ok, split, "clean")
    assert len(dirty) == 50 * 4 * 2 * 6 == info_d["n_pairs"]  # 50 classes x folds 1-4 x 2 clips x 6 captions
    # fold discipline: no fold-5 clip in any training pair
    assert not (meta.loc[dirty["clip"], "fold"] == EVAL_FOLD).any()
    keep = leakage_filter(dirty["caption"].tolist(), split.target).keep
    assert len(clean) == int(keep.sum()) == info_c["n_pairs"]
    assert set(clean["caption"]) == set(dirty["caption"][keep])
    # residual leakage: the target clips that stay are paired with synonym captions only
    target_caps = set(clean.loc[clean["category"].isin(split.target), "caption"])
    assert target_caps <= {c for cls in split.target for c in CAPTION_BANK[cls][4:]}
    assert info_c["n_target_clip_pairs"] == int(clean["category"].isin(split.target).sum()) > 0


def test_rerun_reuses_every_stage(tiny_grid, tiny_esc50):
    grid, artifacts = tiny_grid
    before = (artifacts / "run.log").read_text()
    again = run_grid(tiny_config(), tiny_esc50, artifacts, progress=False, quiet=True)
    log = (artifacts / "run.log").read_text()[len(before):]
    assert "computed" not in log and log.count("reusing") == 1 + 2 + 6 + 1
    pd.testing.assert_frame_equal(again.results, grid.results)


def test_one_changed_parameter_recomputes_only_what_depends_on_it(tiny_grid, tiny_esc50):
    _, artifacts = tiny_grid
    cfg = replace(tiny_config(**{"clap.frozen_epochs": "2"}), pretrainings=("clean",), trainings=("clean",))
    before = (artifacts / "run.log").read_text()
    run_grid(cfg, tiny_esc50, artifacts, progress=False, quiet=True, update_latest=False)
    log = (artifacts / "run.log").read_text()[len(before):]
    cache = [ln.split("[cache] ")[1] for ln in log.splitlines() if "[cache] " in ln]
    assert [c.split("/")[0] for c in cache] == ["features", "pretrain", "clap", "grid"]
    assert "reusing" in cache[0] and "reusing" in cache[1]  # log-mels and the clean pretraining are shared
    assert "computed" in cache[2] and "computed" in cache[3]  # the changed CLAP recipe is trained anew


def test_profiles_and_bad_values():
    assert make_config("paper").width == 1.0 and make_config("paper").text_model == "bert-base-uncased"
    with pytest.raises(ValueError, match="unknown profile 'fast'; allowed: lab, paper"):
        make_config("fast")
