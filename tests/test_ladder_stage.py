"""The ladder in the default run (issue 21): its networks, the pretraining dose trained on the frozen trunk, and the
effective dimensionality of x_a."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from clap_lib.config.profiles import LADDER_DOSES, make_config
from clap_lib.data.esc50 import train_eval_masks
from clap_lib.data.pretrain_dose import dose_clips
from clap_lib.pipeline.ladder import ladder_networks, participation_ratio
from clap_lib.training.heads import GruTop, train_top_classifier


def test_the_ladder_lists_every_published_crnn_random_inits_doses_and_mn04():
    nets = {n.name: n for n in ladder_networks()}
    published = ["gpv_f", "gpv_b", "vad_c", "teacher1", "teacher2", "a2", "v2", "a2_v2", "sre", "c1"]
    assert [n for n in nets if nets[n].source.startswith("file:") and nets[n].g is None][:10] == published
    assert {nets[n].exposure.kind for n in ("gpv_f", "teacher1", "teacher2", "mn04_as")} == {"audioset_527"}
    assert {nets[n].exposure.kind for n in ("gpv_b", "vad_c", "a2", "v2", "a2_v2", "sre", "c1")} == {"speech"}
    assert [nets[f"random{s}"].exposure.kind for s in range(3)] == ["none"] * 3
    for start in ("random", "gpv_b"):
        assert [nets[f"{start}+B+T{g:g}"].g for g in LADDER_DOSES] == list(LADDER_DOSES)
        assert nets[f"{start}+B+T0"].exposure.t_labels == 0 and nets[f"{start}+B+T1"].exposure.t_labels == 1
    assert len(nets) >= 15 and nets["mn04_random"].architecture == "mn04"


def test_participation_ratio_on_analytic_clouds():
    rng = np.random.default_rng(0)
    line = rng.normal(size=(500, 1)) * np.ones((1, 8))  # every point on one line
    assert participation_ratio(line) == pytest.approx(1.0, abs=1e-9)
    iso = rng.normal(size=(20000, 4))
    assert participation_ratio(iso) == pytest.approx(4.0, rel=0.02)
    two = np.c_[rng.normal(size=20000) * 3, rng.normal(size=20000)]  # eigenvalues 9 and 1: 100 / 82
    assert participation_ratio(two) == pytest.approx(100 / 82, rel=0.03)


def test_the_dose_g0_network_never_sees_a_target_label_and_the_top_learns(tiny_esc50):
    meta = pd.read_csv(tiny_esc50 / "meta" / "esc50.csv")
    split = make_config("gpvad").split
    train_mask, _ = train_eval_masks(meta)
    for g in LADDER_DOSES:
        idx, tr, va = dose_clips(meta, train_mask, split, g, 0.2, 0)
        n_t = meta.loc[idx, "category"].isin(split.target).sum()
        assert (n_t == 0) if g == 0 else n_t > 0
        assert (meta.loc[idx, "fold"] != 5).all()
    # the top alone learns a class structure present in its (frozen) trunk outputs
    g = torch.Generator().manual_seed(0)
    y = np.arange(200) % 5
    trunk = torch.randn(200, 6, 128, generator=g) * 0.5 + torch.randn(5, 1, 128, generator=g)[y]
    top = GruTop(torch.nn.GRU(128, 128, bidirectional=True, batch_first=True))
    before = {k: v.clone() for k, v in top.state_dict().items()}
    hist = train_top_classifier(top, 5, trunk, y, np.arange(40, 200), np.arange(40), seed=0, max_epochs=8)
    assert hist["val_acc"] > 0.9 and hist["best_epoch"] >= 1
    assert any(not torch.equal(before[k], v) for k, v in top.state_dict().items())
