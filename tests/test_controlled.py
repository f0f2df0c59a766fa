"""The controlled experiment (issue 20): its pair tables, its trainer and its stage end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures import tiny_config

from clap_lib.config.controlled import ControlledConfig
from clap_lib.data.esc50 import ClassSplit
from clap_lib.data.filtering import level_pairs
from clap_lib.models.loss import clip_loss
from clap_lib.pipeline.controlled_design import Run, design_runs, pair_tables
from clap_lib.training.heads import CachedClap, GruTop, Phase, frozen_params, quarter_rows, train_phase, validation_loss

T = ("dog", "rooster", "pig", "cow")
B = ("rain", "sea_waves", "crackling_fire", "crickets")


def _synthetic(n_clips: int = 8, per_clip: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dirty pairs of folds 1-4 (clip / category / caption) and class pools with spare captions to fill up from."""
    rows, pools = [], []
    for k, c in enumerate(T + B):
        word = c.replace("_", " ")
        pool = [f"a {word} sound number {j}" if c in T else f"some {word} noise, take {j}" for j in range(4 * per_clip)]
        pools += [(c, cap) for cap in pool]
        for i in range(n_clips):
            clip = 100 * k + i
            rows += [(clip, c, pool[(i + j) % len(pool)]) for j in range(per_clip)]
    return pd.DataFrame(rows, columns=["clip", "category", "caption"]), pd.DataFrame(
        pools, columns=["category", "caption"]
    )


def test_pair_tables_equal_size_nested_doses_and_no_target_clip_in_unseen_or_validation():
    dirty_all, pools = _synthetic()
    cc = ControlledConfig(doses=(0.25, 0.5), val_fraction=0.25)
    split = ClassSplit(T, B)
    tables, val = pair_tables(dirty_all, pools, split, seed=3, cc=cc)
    n = len(tables["dirty"])
    # every dose, unseen and dirty train on the same number of pairs, so on the same steps per quarter epoch
    for name in ("unseen", "dose:0.25", "dose:0.5"):
        assert len(tables[name]) == n
        assert len(quarter_rows(len(tables[name]), 0, 31, 5)) == len(quarter_rows(n, 0, 31, 5))
    is_t = lambda t: t["category"].isin(T)  # noqa: E731
    assert not is_t(tables["unseen"]).any() and not is_t(val).any()  # true zero-shot; validation never on T
    assert set(val["clip"]).isdisjoint(set().union(*(set(t["clip"]) for t in tables.values())))
    t_clips = {k: set(tables[k].loc[is_t(tables[k]), "clip"]) for k in ("dose:0.25", "dose:0.5", "dirty")}
    assert t_clips["dose:0.25"] < t_clips["dose:0.5"] < t_clips["dirty"]  # nested
    assert len(t_clips["dose:0.25"]) == 4 * 2 and len(t_clips["dose:0.5"]) == 4 * 4  # round(f * 8) per class
    # dirty is exactly the grid's dirty minus the validation clips; clean the paper's rule on it
    held = dirty_all[~dirty_all["clip"].isin(val["clip"])]
    assert sorted(map(tuple, tables["dirty"][["clip", "caption"]].to_numpy())) == sorted(
        map(tuple, held[["clip", "caption"]].to_numpy())
    )
    clean = level_pairs(held, T, "clean")[0]
    assert len(tables["clean"]) == len(clean) == len(tables["matched"]) < n  # the size-matched control
    assert set(map(tuple, tables["matched"][["clip", "caption"]].to_numpy())) <= set(
        map(tuple, tables["dirty"][["clip", "caption"]].to_numpy())
    )


def test_design_runs_counts_and_dose_runs_train_the_projectors_only():
    cc = ControlledConfig(seeds=(0, 1, 2), dose_seeds=(0, 1), doses=(0.1, 0.5))
    runs = design_runs(cc, ("dirty", "clean", "none"), can_fine_tune=True, extra=("mn04_as",))
    grid = [r for r in runs if r.level != "dose" and r.pretraining != "mn04_as"]
    assert len(grid) == 2 * 3 * 3 * 4 and all(r.gru for r in grid)
    doses = [r for r in runs if r.level == "dose"]
    assert len(doses) == 2 * 2 * 3 * 2 and not any(r.gru for r in doses)
    assert len([r for r in runs if r.pretraining == "mn04_as"]) == 2 * 3 * 4
    assert len({r.id for r in runs}) == len(runs)
    assert Run(1, 2, "none", "dose", 0.25, False).id == "split1/seed2/none/dose0.25"
    with pytest.raises(ValueError, match="dose_seeds \\[5\\] are not among controlled.seeds"):
        ControlledConfig(seeds=(0,), dose_seeds=(5,)).validate()
    with pytest.raises(ValueError, match="doses must be distinct fractions in \\(0, 1\\)"):
        ControlledConfig(doses=(0.0, 0.5)).validate()


def _toy(seed: int = 0, n: int = 96, frames: int = 6):
    """Trunk outputs of `n` clips of 4 classes and one caption per clip (x_t near its class's), learnable by the top;
    rows (clip, caption): validation = the first 24 clips, training = the rest."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    trunk = torch.randn(n, frames, 128, generator=g) * 0.5 + torch.randn(4, 1, 128, generator=g)[y]
    x_t = torch.randn(4, 16, generator=g)[y] + 0.3 * torch.randn(n, 16, generator=g)
    rows = np.stack([np.arange(n), np.arange(n)], axis=1)
    return trunk, x_t, y.numpy(), rows[24:], rows[:24]


def test_fine_tuning_trains_the_top_and_x_a_differs_between_training_levels():
    trunk, x_t, y, train, val = _toy()
    out = {}
    for name, rows in (("dirty", train), ("unseen", train[y[train[:, 0]] != 0])):  # unseen: no clip of class 0
        torch.manual_seed(0)
        gru = torch.nn.GRU(128, 128, bidirectional=True, batch_first=True)
        model = CachedClap(256, 16, 32, top=GruTop(gru))
        before = {k: v.clone() for k, v in model.top.state_dict().items()}
        phase = Phase(1e-3, 3, 12, batch_size=8, from_start=True)  # unseen: 54 pairs, a quarter 13
        hist = train_phase(model, list(model.parameters()), trunk, x_t, rows, val, phase, seed=0, salt=1)
        assert hist["best"] > 0 and hist["val_loss"] < hist["val_start"]  # the validation loss fell: it trained
        assert any(not torch.equal(before[k], v) for k, v in model.top.state_dict().items())
        with torch.no_grad():
            out[name] = model.x_a(trunk).numpy()
    assert np.abs(out["dirty"] - out["unseen"]).max() > 1e-3


def test_a_phase_that_only_hurts_keeps_its_start_and_frozen_phase_leaves_the_top_alone():
    trunk, x_t, _, rows, _ = _toy(1)
    torch.manual_seed(0)
    model = CachedClap(128, 16, 32)
    x_a = trunk.mean(1)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    # validated on mismatched pairs (each clip with a caption of the next class): learning the true pairs can only
    # raise that loss, so no quarter beats the start, which is restored
    wrong = np.stack([rows[:, 0], (rows[:, 1] + 1) % len(x_t)], axis=1)
    hist = train_phase(model, frozen_params(model), x_a, x_t, rows, wrong, Phase(1e-2, 2, 5, 16, from_start=True), 0, 1)
    assert hist["best"] == 0 and hist["stop"] == 2
    assert all(torch.equal(start[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="patience and max_epochs must be >= 1"):
        train_phase(model, frozen_params(model), x_a, x_t, rows, rows, Phase(1e-3, 0, 5, 16), 0, 1)


def test_validation_loss_is_the_size_weighted_mean_of_its_batches_with_each_clip_through_the_top_once():
    trunk, x_t, _, _, val = _toy()
    torch.manual_seed(0)
    model = CachedClap(256, 16, 32, top=GruTop(torch.nn.GRU(128, 128, bidirectional=True, batch_first=True)))
    val = np.concatenate([val, np.stack([val[:, 0], (val[:, 1] + 5) % len(x_t)], axis=1)])  # two captions a clip
    val = val[np.random.default_rng(0).permutation(len(val))]  # scattered over the batches
    model.eval()
    with torch.no_grad():  # by hand: every batch of pairs through the whole model, the last one smaller
        parts = [val[i : i + 7] for i in range(0, len(val), 7)]
        losses = [clip_loss(model.E_a(trunk[r[:, 0]]), model.E_t(x_t[r[:, 1]]), model.logit_scale) for r in parts]
        want = sum(float(v) * len(r) for v, r in zip(losses, parts)) / len(val)
    calls = []
    model.top.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    assert validation_loss(model, trunk, x_t, val, 7) == pytest.approx(want, rel=1e-5)
    assert sum(calls) == len(np.unique(val[:, 0])) < len(val)


def _real_captions_or_skip():
    from clap_lib.data.paths import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / "captions").is_dir():
        pytest.skip("needs the real caption files (../shared/data/captions); see ../shared/data/README.md")
    return root


def test_stage_end_to_end_on_tiny_esc50(tiny_esc50, tmp_path, monkeypatch):
    """The stage on a tiny ESC-50 with random CRNNs: every run trains on folds 1-4 only, is scored on fold 5 of its
    split's T, the records are what the chapter reads, and a rerun trains nothing."""
    from clap_lib.pipeline import controlled as stage
    from clap_lib.pipeline.controlled import controlled_for
    from clap_lib.pipeline.grid import run_grid
    from clap_lib.report import controlled as rc

    data_root = _real_captions_or_skip()
    cfg = tiny_config(
        "gpvad",
        **{
            "captions": "real",
            "weights.dirty": "random",
            "weights.clean": "random",
            "reference_weights": "",
            "pretrainings": "dirty,none",
            "trainings": "dirty",
            "run.paper_strength": "none",
            "controlled.enabled": "true",
            "controlled.seeds": "0",
            "controlled.dose_seeds": "0",
            "controlled.ladder": "false",  # its networks: tests/test_ladder_stage.py
            "controlled.doses": "0.5",
            "controlled.workers": "1",
            "controlled.d_embed": "16",
            "controlled.max_quarters": "3",
            "controlled.patience": "1",
            "controlled.gru_max_quarters": "1",
            "controlled.gru_patience": "1",
            "topo_n_perm": "5",
        },
    )
    meta = pd.read_csv(tiny_esc50 / "meta" / "esc50.csv")
    seen = []
    real_run_job = stage.run_job

    def spy(job, cc):
        seen.append(job)
        return real_run_job(job, cc)

    monkeypatch.setattr(stage, "run_job", spy)
    g = run_grid(cfg, tiny_esc50, tmp_path / "a", quiet=True, data_root=data_root)
    assert len(seen) == 2 * 2 * 4 + 2 * 2  # 2 splits x 2 pretrainings x 4 levels, and the doses
    split = cfg.split
    for job in seen:
        assert (meta.loc[np.unique(job.train[:, 0]), "fold"] != 5).all()  # no stage trains on fold 5
        assert (meta.loc[np.unique(job.val[:, 0]), "fold"] != 5).all()
        assert (meta.loc[job.eval_clips, "fold"] == 5).all()
        target = split.target if job.run_id.startswith("split0") else split.swapped().target
        assert set(meta.loc[job.eval_clips, "category"]) == set(target)
        assert not meta.loc[np.unique(job.val[:, 0]), "category"].isin(target).any()
        if "/unseen" in job.run_id:
            assert not meta.loc[np.unique(job.train[:, 0]), "category"].isin(target).any()
    found = controlled_for(g.dir)
    rec = rc.load_controlled(found["dir"])
    assert len(rec.runs) == len(seen) and set(rec.runs["split"]) == {0, 1}
    assert (
        rec.runs.loc[rec.runs["level"] != "dose", "gru"].all()
        and not rec.runs.loc[rec.runs["level"] == "dose", "gru"].any()
    )
    by = rec.runs.set_index("run")
    assert by.loc["split0/seed0/none/unseen", "n_target_pairs"] == 0
    assert by.loc["split0/seed0/none/unseen", "n_pairs"] == by.loc["split0/seed0/none/dirty", "n_pairs"]
    assert by.loc["split0/seed0/none/matched", "n_pairs"] == by.loc["split0/seed0/none/clean", "n_pairs"]
    # per-clip records agree with the run's accuracy; both splits together cover all 50 classes
    acc = rec.clips.groupby("run")["correct"].mean()
    np.testing.assert_allclose(acc.loc[by.index], by["accuracy"], atol=1e-12)
    assert rec.clips.loc[rec.clips["run"].str.contains("seed0/none/dirty"), "category"].nunique() == 50
    assert json.loads((found["dir"] / "design.json").read_text())["d_embed"] == 16
    an = rc.analyse(rec, n_boot=50)  # the chapter's numbers, from these records
    assert len(an.accuracy) == 2 * 4 and an.doses["f"].tolist() == [0.0, 0.5, 1.0] * 2
    # a rerun trains nothing: every run is a cached stage of its own
    before = (tmp_path / "a" / "run.log").read_text()
    run_grid(
        replace(cfg, run=replace(cfg.run, progress=False)), tiny_esc50, tmp_path / "a", quiet=True, data_root=data_root
    )
    log = (tmp_path / "a" / "run.log").read_text()[len(before) :]
    assert f"controlled: {len(seen)} runs, {len(seen)} cached, 0 to train" in log


def test_the_cuts_name_each_seed_count_and_why_the_budget_forced_it():
    from clap_lib.pipeline.controlled import _cuts

    default = " | ".join(_cuts(ControlledConfig()))
    assert "the dose curves use 2 of the 3 seeds" in default and "budget forces" not in default.split("ladder")[0]
    assert "class split 0 and 1 seed (one seed per network is the ladder's first cut" in default
    one = " | ".join(_cuts(ControlledConfig(dose_seeds=(0,), ladder_seeds=(0, 1))))
    assert "the dose curves use 1 seed of the 3, so their intervals are over clips only" in one
    assert "class split 0 and 2 seeds, at the levels" in one
