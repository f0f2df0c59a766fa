"""EfficientAT mn04 (issue 22): front end against a hand computation, every stage's shape, strict loading of the
published file (and clear failures for a truncated or wrong one), its label CSV, seeded random init, and the
published head as an ESC-50 classifier on real clips."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clap_lib.config.profiles import make_config
from clap_lib.data.paths import shared_data_dir
from clap_lib.models.backbones import spec
from clap_lib.models.backbones.crnn import random_crnn
from clap_lib.models.backbones.mn04 import divisible8, random_mn04
from clap_lib.models.backbones.mn04_files import (
    MN04_FILES,
    N_STATE_ENTRIES,
    efficientat_dir,
    load_mn04,
    read_mn04_labels,
)
from clap_lib.models.frontend_mn04 import Mn04FrontEnd, mel_bands_above, mn04_logmel

FE = Mn04FrontEnd()


def _shared_file():
    d = shared_data_dir()
    if d is None or not (d / "efficientat" / "mn04_as.pt").is_file():
        pytest.skip("the published mn04_as.pt is not in <shared data>/efficientat")
    return d / "efficientat"


def _tone(freq: float, sr: int, seconds: float) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


# --- front end --------------------------------------------------------------------------------------


def _kaldi_mel_by_hand() -> np.ndarray:
    """(128, 513) from section 1.5 of ARCHITECTURE.md, in float64 numpy: triangles in the mel domain."""
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)
    lo, hi = mel(0.0), mel(15000.0)
    step = (hi - lo) / 129
    m = mel(np.arange(512) * 31.25)
    W = np.zeros((128, 513))
    for b in range(128):
        left, centre, right = lo + b * step, lo + (b + 1) * step, lo + (b + 2) * step
        W[b, :512] = np.maximum(0.0, np.minimum((m - left) / (centre - left), (right - m) / (right - centre)))
    return W


def test_front_end_frame_equals_a_direct_computation_on_a_tone():
    x = _tone(1000.0, 32000, 1.0)
    L = mn04_logmel(x, 32000)
    assert L.shape == (1, 1 + (32000 - 1) // 320, 128) == (1, 100, 128) and L.dtype == np.float32
    t = 40  # one interior frame, by hand
    y = x[1:].astype(np.float64) - 0.97 * x[:-1]
    padded = np.pad(y, 512, mode="reflect")
    win = np.zeros(1024)
    win[112 : 112 + 800] = np.hanning(800)  # numpy's Hann is the symmetric one: both ends 0
    assert win[112] == 0 and win[911] == 0
    power = np.abs(np.fft.rfft(padded[t * 320 : t * 320 + 1024] * win)) ** 2
    expected = (np.log(_kaldi_mel_by_hand() @ power + 1e-5) + 4.5) / 5
    np.testing.assert_allclose(L[0, t], expected, rtol=1e-4, atol=2e-4)
    # the peak sits in the band whose centre is nearest 1 kHz (centre of band b = mel step b + 1)
    centres = 700 * np.expm1(np.linspace(0, 1127 * np.log1p(15000 / 700), 130)[1:-1] / 1127)
    assert int(np.argmax(L[0, t])) == int(np.argmin(np.abs(centres - 1000.0))) == 36  # centre 1003 Hz


def test_fixed_normalisation_of_silence():
    # all-zero audio: mel power 0 everywhere, so every value is (ln(1e-5) + 4.5) / 5 = -1.40259
    L = mn04_logmel(np.zeros(32000, np.float32), 32000)
    np.testing.assert_allclose(L, (math.log(1e-5) + 4.5) / 5, rtol=1e-6)
    assert abs(float(L[0, 0, 0]) - (-1.402585)) < 1e-5


def test_gain_is_an_offset_of_the_normalised_input():
    # the map is fixed, not a per-clip statistic: a gain g moves loud bins by 2 ln(g) / 5
    x = _tone(440.0, 32000, 0.5) + 0.05 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    a, b = mn04_logmel(x, 32000), mn04_logmel(2 * x, 32000)
    loud = a > 0
    np.testing.assert_allclose((b - a)[loud], 2 * math.log(2) / 5, atol=1e-3)


def test_16_khz_esc50_clip_becomes_500_frames_and_the_bands_above_8_khz_are_empty():
    x = np.random.default_rng(1).standard_normal(5 * 16000).astype(np.float32) * 0.1  # white at 16 kHz
    L = mn04_logmel(x, 16000)
    assert L.shape == (1, 500, 128)
    above = mel_bands_above(8000.0)
    assert above.tolist() == list(range(105, 128))  # the top 23 bands
    power = (np.exp(L[0] * 5 - 4.5) - 1e-5).mean(axis=0)
    db = 10 * np.log10(power / power[80:104].mean())  # relative to the pass band 4.5-7.9 kHz
    # white noise fills every band below 8 kHz (within +-3 dB: Kaldi bands are peak-, not area-normalised, so
    # the wider ones higher up collect more)
    assert np.abs(db[80:104]).max() < 3.5
    # above it only the resampler's leakage: falling through the filter's transition band, then far down
    assert np.all(np.diff(db[104:113]) < 0) and -6 < db[105] < -3
    assert db[112:].max() < -30


def test_front_end_rejects_bad_input():
    with pytest.raises(ValueError, match="samples"):
        mn04_logmel(np.zeros((2, 3, 4), np.float32), 32000)
    with pytest.raises(ValueError, match="f_max"):
        mn04_logmel(np.zeros(1000, np.float32), 32000, Mn04FrontEnd(f_max=20000.0))


# --- the network --------------------------------------------------------------------------------------

#: (C, F, T) after each `features` stage for a (1, 1, 128, 500) input: ARCHITECTURE.md section 3.
STAGES = [
    (8, 64, 250),
    (8, 64, 250),
    (16, 32, 125),
    (16, 32, 125),
    (16, 16, 63),
    (16, 16, 63),
    (16, 16, 63),
    (32, 8, 32),
    (32, 8, 32),
    (32, 8, 32),
    (32, 8, 32),
    (48, 8, 32),
    (48, 8, 32),
    (64, 4, 16),
    (64, 4, 16),
    (64, 4, 16),
    (384, 4, 16),
]


def test_channel_rounding_examples():
    got = {b: divisible8(0.4 * b) for b in (16, 24, 40, 72, 120, 240, 80, 200, 184, 480, 112, 672, 160, 960, 1280)}
    assert got == {
        16: 8,
        24: 16,
        40: 16,
        72: 32,
        120: 48,
        240: 96,
        80: 32,
        200: 80,
        184: 72,
        480: 192,
        112: 48,
        672: 272,
        160: 64,
        960: 384,
        1280: 512,
    }
    # SE bottlenecks C // 4 rounded the same way
    assert {c: divisible8(c // 4) for c in (32, 48, 192, 272, 384)} == {32: 8, 48: 16, 192: 48, 272: 72, 384: 96}


def test_every_stage_shape_on_a_5_s_clip():
    model = random_mn04(0).eval()
    logmel = torch.from_numpy(mn04_logmel(np.zeros(5 * 16000, np.float32), 16000))  # 500 frames
    with torch.no_grad():
        outs = model.stages(logmel)
        x_a, p = model.embed_and_clip_probs(logmel)
    assert [tuple(o.shape[1:]) for o in outs] == STAGES
    assert x_a.shape == (1, 512) and p.shape == (1, 527)
    assert sum(v.numel() for v in model.parameters()) == 983_599
    assert len(model.state_dict()) == N_STATE_ENTRIES
    # where the identity shortcut is (section 3): stride 1 and equal widths
    assert [i for i, m in enumerate(model.features) if getattr(m, "residual", False)] == [
        1,
        3,
        5,
        6,
        8,
        9,
        10,
        12,
        14,
        15,
    ]


def test_x_a_is_the_input_of_the_last_classifier_layer():
    model = random_mn04(3, n_labels=7).eval()
    logmel = torch.randn(2, 60, 128)
    with torch.no_grad():
        x_a = model(logmel)
        pooled = model.features(logmel.transpose(1, 2).unsqueeze(1)).mean(dim=(2, 3))
        np.testing.assert_allclose(x_a, F.hardswish(model.classifier[2](pooled)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.classify(logmel), model.classifier[5](x_a), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.clip_probs(logmel), torch.sigmoid(model.classify(logmel)), rtol=1e-6)


def test_random_init_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = random_mn04(0), random_mn04(0), random_mn04(1)
    assert torch.equal(torch.rand(1), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.0.0.weight"], sc["features.0.0.weight"])


def test_tiny_end_to_end_with_a_random_mn04():
    cfg = make_config()
    s = spec("mn04")
    model = s.random_init(cfg, 5, 0)
    assert model.state_dict()[s.head_key].shape == (5, 512)
    # one training step on 8 clips of 1 s (100 frames), with SpecAugment, then x_a in eval mode
    x = torch.from_numpy(
        mn04_logmel(np.random.default_rng(0).standard_normal((8, 16000)).astype(np.float32) * 0.1, 16000)
    )
    y = torch.arange(8) % 5
    model.train()
    model.spec_augment = True
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss = F.cross_entropy(model.classify(x, torch.Generator().manual_seed(0)), y)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    opt.step()
    model.eval()
    with torch.no_grad():
        x_a = model(x)
    assert x_a.shape == (8, 512) and torch.isfinite(x_a).all()
    # a saved state rebuilds the same network; a new head keeps the features
    again = s.from_state(cfg, model.state_dict()).eval()
    with torch.no_grad():
        assert torch.equal(again(x), x_a)
    other = s.with_head(model, 3, 0).eval()
    assert other.n_labels == 3
    with torch.no_grad():
        assert torch.equal(other(x), x_a)


# --- published weights ----------------------------------------------------------------------------------


def test_strict_loading_of_the_published_file():
    d = _shared_file()
    model = load_mn04("mn04_as")
    assert not model.training and model.n_labels == 527
    state = torch.load(d / "mn04_as.pt", map_location="cpu", weights_only=True)
    assert len(state) == N_STATE_ENTRIES
    mine = model.state_dict()
    assert list(mine) == list(state) and all(torch.equal(mine[k], state[k]) for k in state)
    info = spec("mn04").weights_info("mn04_as")
    assert info["file"] == "mn04_as.pt" and "mAP 0.432" in info["trained on"]


def test_published_head_hears_a_real_dog(tmp_path):
    d = _shared_file()
    esc = shared_data_dir() / "esc50" / "audio" / "1-100032-A-0.flac"  # fold 1, class dog
    if not esc.is_file():
        pytest.skip(f"{esc} not found")
    from clap_lib.data.audio import read_mono

    x, sr = read_mono(esc)
    labels = read_mn04_labels(d / "class_labels_indices.csv", 527)
    with torch.no_grad():
        p = load_mn04("mn04_as").clip_probs(torch.from_numpy(mn04_logmel(x, sr)))[0]
    top = [labels[i] for i in torch.argsort(p, descending=True)[:3]]
    assert "Dog" in top, top


def test_truncated_or_wrong_file_fails_naming_it(tmp_path):
    d = _shared_file()
    raw = (d / "mn04_as.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=f"{cut}.*not a readable torch state dict"):
        load_mn04(cut)
    # under the published name the checksum catches it first
    named = tmp_path / "mn04_as.pt"
    named.write_bytes(raw[:-1000])
    with pytest.raises(ValueError, match=f"{named}: SHA-256 .* not the published mn04_as.pt"):
        load_mn04(named)


def test_wrong_state_dicts_fail_naming_the_file(tmp_path):
    crnn = tmp_path / "crnn.pth"
    torch.save(random_crnn(0).state_dict(), crnn)
    with pytest.raises(ValueError, match=f"{crnn} is not an EfficientAT mn04 state dict"):
        load_mn04(crnn)
    state = random_mn04(0).state_dict()
    del state["features.4.block.2.conc_se_layers.0.fc1.bias"]
    short = tmp_path / "short.pt"
    torch.save(state, short)
    with pytest.raises(ValueError, match=f"{short} does not match EfficientAT mn04.*fc1.bias"):
        load_mn04(short)
    wide = tmp_path / "wide.pt"
    torch.save(_widened(), wide)
    with pytest.raises(ValueError, match=f"{wide} does not match EfficientAT mn04.*size mismatch"):
        load_mn04(wide)
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        load_mn04(tmp_path / "absent.pt")


def _widened() -> dict:
    """Every key present, one shape wrong."""
    state = random_mn04(0).state_dict()
    state["classifier.2.weight"] = torch.zeros(512, 385)
    return state


def test_label_csv_matches_the_heads_527_outputs(tmp_path):
    d = _shared_file()
    labels = read_mn04_labels(d / MN04_FILES["mn04_as"].labels, n_labels=load_mn04("mn04_as").n_labels)
    assert len(labels) == 527 and labels[0] == "Speech" and labels[137] == "Music"
    assert spec("mn04").head_labels("mn04_as") == labels
    bad = tmp_path / "labels.csv"
    bad.write_text("index,mid,display_name\n0,/m/09x0r,Speech\n")
    with pytest.raises(ValueError, match=f"{bad} lists 1 labels but the network has 527 outputs"):
        read_mn04_labels(bad, 527)


def test_weights_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAP_EFFICIENTAT", str(tmp_path))
    monkeypatch.setenv("CLAP_DATA", str(tmp_path / "nowhere"))
    assert efficientat_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'mn04_as.pt'}"):
        spec("mn04").weights_file("mn04_as")


@pytest.mark.slow
def test_shortcut_of_the_published_head_on_t_fold_5():
    """The published head as a classifier of the default run's target classes on ESC-50 fold 5 (clap_lib.shortcut
    through the ontology mapping). Measured: 156 / 184 = 0.848 on the 23 mapped classes of T."""
    _shared_file()
    from clap_lib.analysis.backbone_analysis import shortcut_result
    from clap_lib.config.experiment import AudioConfig
    from clap_lib.data.audio import load_clips
    from clap_lib.data.esc50 import EVAL_FOLD, locate_esc50, read_esc50_meta
    from clap_lib.data.ontology import esc50_audioset_names

    try:
        meta = read_esc50_meta(locate_esc50(None))
    except FileNotFoundError as e:
        pytest.skip(str(e))
    T = make_config().split.target
    meta = meta[(meta["fold"] == EVAL_FOLD) & meta["category"].isin(T)].reset_index(drop=True)
    clips = load_clips(meta, AudioConfig(sample_rate=16000, waveform_norm="none"), progress=False)
    model = load_mn04("mn04_as")
    with torch.no_grad():
        probs = model.clip_probs(torch.from_numpy(mn04_logmel(clips.waves, 16000))).numpy()
    r = shortcut_result(probs, spec("mn04").head_labels("mn04_as"), meta, clips.ok, T, esc50_audioset_names())
    assert r["n_clips"] == 184 and r["unmatched"] == ["drinking_sipping", "washing_machine"]
    assert abs(round(r["accuracy"] * 184) - 156) <= 3, r["accuracy"]
