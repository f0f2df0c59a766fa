import numpy as np
import pytest
import torch
from torch import nn

from clap_lib.models import Clap, Cnn14
from clap_lib.training import (ClapTrainConfig, PairData, PretrainConfig, TrainingDiverged, pretrain_backbone,
                               train_clap)


def separable_logmels(n_per_class=12, n_classes=3, frames=64, mels=64, seed=0):
    """Classes differ in which mel band carries energy: trivially separable."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(n_classes):
        base = np.full((frames, mels), -60.0)
        base[:, 20 * c : 20 * c + 10] = -10.0
        X += [base + rng.normal(0, 3, (frames, mels)) for _ in range(n_per_class)]
        y += [c] * n_per_class
    return np.asarray(X, np.float32), np.asarray(y)


def test_pretraining_learns_separable_classes():
    X, y = separable_logmels()
    idx = np.random.default_rng(0).permutation(len(y))
    torch.manual_seed(0)
    model = Cnn14(width=1 / 16, n_classes=3)
    _, hist = pretrain_backbone(model, X, y, idx[:27], idx[27:], PretrainConfig(epochs=8, batch_size=9, lr=3e-3, spec_augment=False),
                                seed=0, progress=False)
    assert len(hist) == 8
    assert max(h["val_acc"] for h in hist) == 1.0
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]


class BagOfWordsText(nn.Module):
    """A tiny deterministic text backbone with the TextEncoder interface (fast tests)."""

    def __init__(self, vocab=("dog", "rain", "siren", "a", "the", "sound", "of"), dim=16):
        super().__init__()
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.emb = nn.EmbeddingBag(len(vocab) + 1, dim, mode="mean")
        self.embed_dim = dim

    def tokenize(self, texts):
        ids = [[self.vocab.get(w, len(self.vocab)) for w in t.split()] or [len(self.vocab)] for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return {"ids": torch.tensor([j for i in ids for j in i]), "offsets": offsets}

    def forward(self, tokens):
        return self.emb(tokens["ids"], tokens["offsets"])


def tiny_clap_data():
    X, y = separable_logmels(n_per_class=8)
    captions = ["a dog", "the dog", "rain", "the rain", "a siren", "siren sound"]
    pairs = np.array([(i, 2 * y[i] + k) for i in range(len(y)) for k in range(2)])
    perm = np.random.default_rng(0).permutation(len(pairs))
    return PairData(X, captions, pairs[perm[:38]], pairs[perm[38:]])


def make_model(seed=0):
    torch.manual_seed(seed)
    return Clap(Cnn14(width=1 / 16, n_classes=3), BagOfWordsText(), d_embed=8)


CFG = ClapTrainConfig(frozen_epochs=3, max_unfrozen_epochs=3, early_stop_patience=5, batch_size=8,
                      frozen_lr=1e-2, unfrozen_lr=1e-3)


def test_clap_training_is_deterministic_and_records_both_phases():
    data = tiny_clap_data()
    m1, m2 = make_model(), make_model()
    h1 = train_clap(m1, data, CFG, seed=1, progress=False)
    h2 = train_clap(m2, data, CFG, seed=1, progress=False)
    assert [h["phase"] for h in h1] == ["frozen"] * 3 + ["unfrozen"] * 3
    assert [h["val_loss"] for h in h1] == [h["val_loss"] for h in h2]
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    assert h1[-1]["val_loss"] < h1[0]["val_loss"]


def test_frozen_phase_leaves_backbones_untouched():
    data = tiny_clap_data()
    m = make_model()
    before = {k: v.clone() for k, v in m.audio.state_dict().items()}
    train_clap(m, data, ClapTrainConfig(frozen_epochs=2, max_unfrozen_epochs=0, batch_size=8), seed=0, progress=False)
    for k, v in m.audio.state_dict().items():
        assert torch.equal(v, before[k]), k  # eval mode: not even BN running stats move


def test_resume_after_interruption_gives_the_same_result(tmp_path):
    data = tiny_clap_data()
    full = make_model()
    train_clap(full, data, CFG, seed=2, progress=False)
    # interrupted run: stop inside the unfrozen phase by raising from the loss on a chosen call
    ckpt = tmp_path / "resume.pt"
    part = make_model()
    calls = {"n": 0}
    original = part.embed_audio
    def flaky(x_a):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return original(x_a)
    part.embed_audio = flaky
    with pytest.raises(KeyboardInterrupt):
        train_clap(part, data, CFG, seed=2, ckpt=ckpt, progress=False)
    assert ckpt.is_file()
    resumed = make_model(seed=123)  # different init: everything must come from the checkpoint
    train_clap(resumed, data, CFG, seed=2, ckpt=ckpt, progress=False)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_non_finite_loss_stops_with_epoch_and_step():
    data = tiny_clap_data()
    bad = PairData(np.full_like(data.logmels, np.nan), data.captions, data.train, data.val)
    with pytest.raises(TrainingDiverged, match=r"epoch 0, step 0"):
        train_clap(make_model(), bad, CFG, seed=0, progress=False)


def test_resume_from_a_frozen_phase_checkpoint(tmp_path):
    """A frozen-phase checkpoint holds only the projectors; the pipeline rebuilds the same backbones."""
    data = tiny_clap_data()
    full = make_model()
    train_clap(full, data, CFG, seed=2, progress=False)
    ckpt = tmp_path / "resume.pt"
    part = make_model()
    original = part.embed_audio

    def flaky(x_a):
        if ckpt.is_file():  # the first call after the first (frozen-phase) epoch checkpoint
            raise KeyboardInterrupt
        return original(x_a)
    part.embed_audio = flaky
    with pytest.raises(KeyboardInterrupt):
        train_clap(part, data, CFG, seed=2, ckpt=ckpt, progress=False)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["phase"] == "frozen" and not any(k.startswith(("audio.", "text.")) for k in saved["model"])
    resumed = make_model()  # same construction as the interrupted run, as experiment.build_clap does
    train_clap(resumed, data, CFG, seed=2, ckpt=ckpt, progress=False)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_calibrate_batchnorm_sets_the_statistics_of_the_clips():
    from clap_lib.training import calibrate_batchnorm

    torch.manual_seed(0)
    X, _ = separable_logmels(n_per_class=8)
    model = Cnn14(64, width=1 / 16, n_classes=3).eval()
    assert calibrate_batchnorm(model, X, batch=len(X)) == 13  # bn0 + 2 per conv block
    # one batch: bn0's running statistics are exactly each mel bin's mean / unbiased variance over all frames
    flat = torch.from_numpy(X).reshape(-1, X.shape[-1]).double()
    assert torch.allclose(model.bn0.running_mean.double(), flat.mean(0), atol=1e-3)
    assert torch.allclose(model.bn0.running_var.double(), flat.var(0), rtol=1e-4)
    assert not model.training and model.bn0.momentum == 0.1  # the module is left as it was
    # in batches (shuffled, so each mixes classes) the averages stay close to the whole-set statistics
    calibrate_batchnorm(model, X, batch=6)
    assert torch.allclose(model.bn0.running_mean.double(), flat.mean(0), atol=1e-3)
    assert torch.allclose(model.bn0.running_var.double(), flat.var(0), rtol=0.15)
