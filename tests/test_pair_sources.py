"""Cached log-mels and streamed audio are two sources of the same batches: through the one trainer they give
the same losses epoch by epoch (the audio files are exactly one segment long, so a "random" segment is the whole
file and the streamed log-mel is the cached one)."""

import numpy as np
import pytest
import soundfile as sf
import torch
from toy import ToyTextEncoder

from clap_lib.config.experiment import AudioConfig, ClapTrainConfig, PretrainConfig
from clap_lib.data.audio import LogMel, compute_logmels, fix_length, load_audio, normalise
from clap_lib.models.backbones.cnn14 import Cnn14
from clap_lib.models.clap import Clap
from clap_lib.training.pair_sources import (
    CachedClips,
    ClipDataset,
    PairData,
    StreamedClips,
    StreamedPairs,
    random_segment,
)
from clap_lib.training.pretrain import pretrain_backbone
from clap_lib.training.trainer import train_clap

AUDIO = AudioConfig(16000, 1.0, 512, 320, 32, 50.0, 8000.0)  # 51 frames x 32 mels
CAPTIONS = ["a low hum", "a deep drone", "a middle tone", "a plain beep", "a high whistle", "a shrill squeal"]
N_FILES = 12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """12 one-second files, three pitch classes; file i's class is i % 3."""
    root = tmp_path_factory.mktemp("pair_audio")
    t = np.arange(AUDIO.n_samples) / AUDIO.sample_rate
    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_FILES):
        x = 0.3 * np.sin(2 * np.pi * (200 * 4 ** (i % 3)) * t) + 0.05 * rng.standard_normal(len(t))
        paths.append(str(root / f"f{i}.wav"))
        sf.write(paths[-1], x.astype(np.float32), AUDIO.sample_rate)
    return paths


def both_sources(paths):
    """The same pairs (file i with both captions of its class) as a cached and as a streamed source."""
    waves = np.stack([normalise(fix_length(load_audio(p, AUDIO.sample_rate), AUDIO.n_samples)) for p in paths])
    logmels = compute_logmels(waves, AUDIO)  # the lab's feature path, computed once
    rows = np.array([(i, 2 * (i % 3) + k) for i in range(N_FILES) for k in range(2)])
    val_clip = np.isin(rows[:, 0], [9, 10, 11])  # validation clips disjoint from the training ones
    train, val = rows[~val_clip], rows[val_clip]
    cached = PairData(logmels, CAPTIONS, train, val)
    table = lambda r: ([paths[i] for i in r[:, 0]], [CAPTIONS[j] for j in r[:, 1]])  # noqa: E731
    streamed = StreamedPairs.from_paths(table(train), table(val), AUDIO, seed=0, front=LogMel(AUDIO), salts=(1, 2))
    return cached, streamed, logmels


def model(seed=0):
    torch.manual_seed(seed)  # dropout everywhere: both sources must draw the same masks in the same order
    return Clap(Cnn14(AUDIO.n_mels, 1 / 32, 3, p_block=0.1, p_fc=0.1), ToyTextEncoder(), d_embed=8, p_drop=0.3)


def test_sources_say_whether_eval_features_are_fixed(files):
    cached, streamed, _ = both_sources(files)
    assert cached.deterministic_eval and not streamed.deterministic_eval
    assert (cached.size("train"), cached.size("val")) == (18, 6) == (streamed.size("train"), streamed.size("val"))
    with pytest.raises(ValueError, match=r"split 'test': allowed \['train', 'val'\]"):
        cached.size("test")


def test_both_sources_yield_the_same_batches(files):
    cached, streamed, _ = both_sources(files)
    batches = [np.array([3, 0, 7]), np.array([17, 5])]
    for split in ("train", "val"):
        chosen = batches if split == "train" else [np.array([0, 5]), np.array([2])]
        for (xc, cc), (xs, cs) in zip(
            cached.batches(split, chosen, 4, torch.device("cpu")),
            streamed.batches(split, chosen, 4, torch.device("cpu")),
        ):
            assert cc == cs
            assert torch.equal(xc, xs)


def test_cached_frozen_features_encode_each_clip_once(files):
    cached, _, logmels = both_sources(files)
    calls = []

    def audio(x):
        calls.append(len(x))
        return x.mean(dim=(1, 2))[:, None]

    x_a, x_t = cached.frozen_features(
        "train", audio, lambda caps: torch.tensor([[float(len(c))] for c in caps]), torch.device("cpu")
    )
    assert sum(calls) == 9  # 9 training clips, 18 pairs
    rows = cached.train
    assert torch.equal(x_a[:, 0], torch.from_numpy(logmels[rows[:, 0]]).mean(dim=(1, 2)))
    assert x_t[:, 0].tolist() == [float(len(CAPTIONS[j])) for j in rows[:, 1]]


def test_streamed_pairs_need_one_caption_per_file(files):
    with pytest.raises(ValueError, match="train: 2 audio files but 1 captions"):
        StreamedPairs.from_paths((files[:2], ["x"]), (files[:1], ["y"]), AUDIO, 0, LogMel(AUDIO), (1, 2))


def test_cached_and_streamed_sources_give_equal_losses_epoch_by_epoch(files):
    cached, streamed, _ = both_sources(files)
    cfg = ClapTrainConfig(
        frozen_epochs=2, max_unfrozen_epochs=2, early_stop_patience=5, batch_size=6, frozen_lr=1e-2, unfrozen_lr=1e-3
    )
    steps = {"cached": [], "streamed": []}
    m_c, m_s = model(), model()
    h_c = train_clap(m_c, cached, cfg, seed=3, progress=False, on_step=lambda s: steps["cached"].append(s["loss"]))
    h_s = train_clap(m_s, streamed, cfg, seed=3, progress=False, on_step=lambda s: steps["streamed"].append(s["loss"]))
    assert [h["phase"] for h in h_c] == [h["phase"] for h in h_s] == ["frozen"] * 2 + ["unfrozen"] * 2
    assert len(steps["cached"]) == 4 * 3  # 18 training pairs, batch 6
    # same log-mels, batch order, dropout masks: equal up to float32 rounding of a CNN run on differently sized
    # batches (the cached frozen phase encodes each clip once; measured: 1e-7 relative, training steps exact)
    np.testing.assert_allclose(steps["streamed"], steps["cached"], rtol=1e-6)
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose([h[key] for h in h_s], [h[key] for h in h_c], rtol=1e-6, err_msg=key)
    for k, v in m_c.state_dict().items():
        assert torch.allclose(v.double(), m_s.state_dict()[k].double(), rtol=1e-5, atol=1e-6), k
    assert h_c[-1]["train_loss"] < h_c[0]["train_loss"]  # and something was learnt


def test_cached_and_streamed_clips_pretrain_alike(files):
    waves = np.stack([normalise(fix_length(load_audio(p, AUDIO.sample_rate), AUDIO.n_samples)) for p in files])
    labels = np.arange(N_FILES) % 3
    streamed = StreamedClips(ClipDataset(files, AUDIO, 0, 1), ClipDataset(files, AUDIO, 0, 2), LogMel(AUDIO))
    cfg = PretrainConfig(epochs=2, batch_size=4, lr=3e-3, spec_augment=False)
    runs = []
    for source in (CachedClips(compute_logmels(waves, AUDIO)), streamed):
        torch.manual_seed(0)
        net = Cnn14(AUDIO.n_mels, 1 / 32, 3, p_block=0.1, p_fc=0.1)
        runs.append(
            pretrain_backbone(net, source, labels, np.arange(9), np.arange(9, 12), cfg, seed=0, progress=False)[1]
        )
    for key in ("train_loss", "val_loss", "val_acc"):
        np.testing.assert_allclose([h[key] for h in runs[1]], [h[key] for h in runs[0]], rtol=1e-6, err_msg=key)


def test_random_segments_are_seeded_per_epoch_and_item(tmp_path):
    path = str(tmp_path / "long.wav")
    sf.write(
        path,
        np.random.default_rng(1).standard_normal(int(1.5 * AUDIO.sample_rate)).astype(np.float32),
        AUDIO.sample_rate,
    )
    ds = ClipDataset([path] * 2, AUDIO, seed=0, salt=1)  # 1.5 s: a 1 s window moves
    a, b, c, d = ds[(0, 0)][0], ds[(0, 0)][0], ds[(1, 0)][0], ds[(0, 1)][0]
    assert a.shape == (AUDIO.n_samples,) and np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert abs(a.mean()) < 1e-5 and abs(a.std() - 1) < 1e-3  # zero mean, unit variance
    x = np.arange(10.0)
    assert np.array_equal(
        random_segment(x, 4, np.random.default_rng(0)), x[np.random.default_rng(0).integers(0, 7) :][:4]
    )  # uniform start in [0, 6]
    assert np.array_equal(random_segment(x[:3], 5, np.random.default_rng(0)), [0, 1, 2, 0, 0])  # zero-padded
