"""The GPVAD CRNN backbone: front end against a hand computation, shapes, pooling, seeded init, strict loading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torchaudio.functional import melscale_fbanks

from clap_lib.data.paths import shared_data_dir
from clap_lib.models.backbones.cnn14 import Cnn14
from clap_lib.models.backbones.crnn import Crnn, linear_softmax_pool, random_crnn
from clap_lib.models.backbones.gpvad_files import GPVAD_ENV, GPVAD_FILES, gpvad_dir, load_gpvad, read_gpvad_labels
from clap_lib.models.frontend import EPS, CrnnFrontEnd, crnn_logmel, mel_band_edges, mel_bands_above

FE = CrnnFrontEnd()


def _shared_gpvad():
    d = shared_data_dir()
    if d is None or not all((d / "gpvad" / f.file).is_file() for f in GPVAD_FILES.values()):
        pytest.skip("the published GPVAD files are not in <shared data>/gpvad")
    return d / "gpvad"


def _tone(freq: float, sr: int, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


# --- front end --------------------------------------------------------------------------------------


def test_logmel_frame_equals_numpy_fft_and_torchaudio_filterbank():
    x = _tone(1000.0, FE.sample_rate) + 0.01 * np.random.default_rng(0).standard_normal(FE.sample_rate).astype(
        np.float32
    )
    L = crnn_logmel(x, FE.sample_rate)
    assert L.shape == (1, FE.sample_rate // FE.hop_length + 1, 64) and L.dtype == np.float32
    t = 20  # one interior frame, by hand: reflect-pad n_fft/2, a periodic Hann of 882 centred in 2048
    padded = np.pad(x.astype(np.float64), FE.n_fft // 2, mode="reflect")
    n = np.arange(FE.win_length)
    win = np.zeros(FE.n_fft)
    off = (FE.n_fft - FE.win_length) // 2
    win[off : off + FE.win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * n / FE.win_length)
    power = np.abs(np.fft.rfft(padded[t * FE.hop_length : t * FE.hop_length + FE.n_fft] * win)) ** 2
    fb = (
        melscale_fbanks(
            FE.n_fft // 2 + 1, 0.0, FE.sample_rate / 2, 64, FE.sample_rate, norm="slaney", mel_scale="slaney"
        )
        .double()
        .numpy()
    )
    expected = np.log(power @ fb + EPS)
    np.testing.assert_allclose(L[0, t], expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("freq, sr", [(440.0, 22050), (1000.0, 22050), (3000.0, 16000), (6500.0, 16000)])
def test_tone_peaks_in_the_mel_band_that_contains_it(freq, sr):
    L = crnn_logmel(_tone(freq, sr), sr)
    band = int(np.argmax(L[0, 10]))
    lo, _, hi = mel_band_edges(FE)[band]
    assert lo < freq < hi
    # of the two triangles holding `freq`, the peak is the one whose centre is nearer
    centres = mel_band_edges(FE)[:, 1]
    assert band == int(np.argmin(np.abs(centres - freq)))


def test_bands_above_cutoff_match_the_filterbank_support():
    fb = melscale_fbanks(
        FE.n_fft // 2 + 1, 0.0, FE.sample_rate / 2, 64, FE.sample_rate, norm="slaney", mel_scale="slaney"
    ).numpy()
    freqs = np.linspace(0, FE.sample_rate / 2, FE.n_fft // 2 + 1)
    # a band lies above the cut-off iff it gives no weight to any FFT bin below it
    expected = np.flatnonzero(~(fb[freqs < 8000] > 0).any(axis=0))
    np.testing.assert_array_equal(mel_bands_above(8000.0), expected)
    assert list(mel_bands_above(8000.0)) == [59, 60, 61, 62, 63]
    assert len(mel_bands_above(0.0)) == 64 and len(mel_bands_above(FE.sample_rate / 2)) == 0
    with pytest.raises(ValueError, match="cutoff_hz"):
        mel_bands_above(20000.0)


def test_16khz_audio_leaves_only_noise_above_8khz():
    L = crnn_logmel(np.random.default_rng(1).standard_normal((2, 16000)).astype(np.float32), 16000)
    above = mel_bands_above(8000.0)
    below = np.setdiff1d(np.arange(64), np.append(above, above[0] - 1))
    assert L[:, :, above].mean() < L[:, :, below].mean() - 5  # e^-5: > 100x less power than white noise below


@pytest.mark.parametrize("n_samples, sr", [(80000, 16000), (16001, 16000), (22050, 22050), (5000, 44100)])
def test_logmel_shapes_batching_and_channels(n_samples, sr):
    rng = np.random.default_rng(n_samples)
    waves = rng.standard_normal((3, n_samples)).astype(np.float32)
    L = crnn_logmel(waves, sr, batch_size=2)
    n_out = int(np.ceil(n_samples * FE.sample_rate / sr))
    assert L.shape == (3, n_out // FE.hop_length + 1, 64)
    np.testing.assert_allclose(crnn_logmel(waves, sr, batch_size=3), L, rtol=1e-5, atol=1e-4)
    stereo = np.stack([waves, waves], axis=1)  # (batch, channels, samples) is mixed down
    np.testing.assert_allclose(crnn_logmel(torch.from_numpy(stereo), sr), L, rtol=1e-5, atol=1e-4)


def test_digital_silence_floors_at_log_eps():
    L = crnn_logmel(np.zeros(22050, dtype=np.float32), 22050)
    np.testing.assert_allclose(L, np.log(np.float32(EPS)), rtol=1e-6)
    assert EPS == np.spacing(1.0)


def test_front_end_rejects_bad_input():
    with pytest.raises(ValueError, match="waves must be"):
        crnn_logmel(np.zeros((1, 1, 1, 10)), 16000)
    with pytest.raises(ValueError, match="win_length"):
        crnn_logmel(np.zeros(1000), 22050, CrnnFrontEnd(win_length=4096))
    with pytest.raises(ValueError, match="sample_rate"):
        crnn_logmel(np.zeros(1000), 0)


# --- network ------------------------------------------------------------------------------------------


def test_linear_softmax_pooling_hand_computed():
    p = torch.tensor([[[0.2, 0.5], [0.6, 0.5], [1.0, 0.5]]])  # (B=1, T=3, C=2)
    out = linear_softmax_pool(p, dim=1)
    # (0.04 + 0.36 + 1) / (0.2 + 0.6 + 1) = 1.4 / 1.8; a constant 0.5 pools to 0.5
    torch.testing.assert_close(out, torch.tensor([[1.4 / 1.8, 0.5]]))


@pytest.mark.parametrize("T", [4, 7, 100, 251])
def test_output_shapes(T):
    m = random_crnn(0, n_labels=5).eval()
    x = torch.randn(2, T, 64)
    with torch.no_grad():
        assert m(x).shape == (2, m.embed_dim) == (2, 256)
        fp, cp, lg = m.frame_probs(x), m.clip_probs(x), m.classify(x)
    assert fp.shape == (2, T, 5) and cp.shape == (2, 5) and lg.shape == (2, 5)
    assert ((fp >= 1e-7) & (fp <= 1)).all() and ((cp >= 1e-7) & (cp <= 1)).all()
    torch.testing.assert_close(lg, torch.log(cp))


def test_too_short_or_wrong_width_input_fails():
    m = random_crnn(0).eval()
    with pytest.raises(ValueError, match="needs >= 4 frames"):
        m(torch.randn(1, 3, 64))
    with pytest.raises(ValueError, match="64"):
        m(torch.randn(1, 10, 40))


def test_x_a_is_the_time_mean_of_the_gru_output():
    m = random_crnn(3).eval()
    seen = {}
    m.gru.register_forward_hook(lambda mod, inp, out: seen.__setitem__("h", out[0]))
    x = torch.randn(2, 101, 64)
    with torch.no_grad():
        x_a = m(x)
    assert seen["h"].shape == (2, 101 // 4, 256)
    torch.testing.assert_close(x_a, seen["h"].mean(dim=1))


def test_clip_probs_pool_the_native_frames():
    m = random_crnn(4, n_labels=3).eval()
    seen = {}
    m.outputlayer.register_forward_hook(lambda mod, inp, out: seen.__setitem__("z", out))
    x = torch.randn(1, 40, 64)
    with torch.no_grad():
        cp = m.clip_probs(x)
    p = torch.sigmoid(seen["z"]).clamp(1e-7, 1)
    torch.testing.assert_close(cp, (p**2).sum(1) / p.sum(1))
    with torch.no_grad():  # frame probabilities at full rate interpolate these 10 native frames
        fp = m.frame_probs(x)
    assert fp.shape[1] == 40 and fp.max() <= p.max() + 1e-6 and fp.min() >= p.min() - 1e-6


def test_random_crnn_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = random_crnn(7), random_crnn(7), random_crnn(8)
    assert torch.equal(torch.get_rng_state(), before)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["features.2.block.1.weight"], sc["features.2.block.1.weight"])
    assert torch.equal(sa["features.0.block.0.weight"], torch.ones(1))  # BN weight 1, bias 0
    assert torch.equal(sa["outputlayer.bias"], torch.zeros(527))
    k = 1 / np.sqrt(128)  # PyTorch's GRU default range
    assert all(sa[n].abs().max() <= k for n in sa if n.startswith("gru."))
    w = sa["features.3.block.1.weight"]  # Kaiming normal, leaky-relu(0.1) gain, fan_in = 128 * 9
    std = np.sqrt(2 / (1 + 0.1**2)) / np.sqrt(128 * 9)
    assert abs(w.std().item() / std - 1) < 0.02


def test_classify_trains_with_cross_entropy():
    m = random_crnn(0, n_labels=4).train()
    x, y = torch.randn(6, 20, 64), torch.tensor([0, 1, 2, 3, 0, 1])
    loss = F.cross_entropy(m.classify(x, torch.Generator().manual_seed(0)), y)
    loss.backward()
    assert torch.isfinite(loss) and m.outputlayer.weight.grad.abs().sum() > 0
    assert m.features[0].block[1].weight.grad.abs().sum() > 0


def test_spec_augment_masks_after_the_input_batchnorm():
    m = random_crnn(0).train()
    seen = {}
    m.features[0].block[1].register_forward_hook(lambda mod, inp, out: seen.__setitem__("x", inp[0]))
    x = torch.randn(2, 200, 64) - 5.0  # no exact zeros before the BatchNorm, nor after it without masks
    m.spec_augment = True
    m.classify(x, torch.Generator().manual_seed(1))
    z = seen["x"][:, 0] == 0
    assert z.all(dim=2).any() and z.all(dim=1).any()  # whole frames and whole bands at the BatchNorm's mean, 0
    m.spec_augment = False
    m(x)
    assert (seen["x"] != 0).all()


def test_activation_checkpointing_gives_the_same_gradients_and_batchnorm_statistics():
    """The checkpointed path recomputes conv/LeakyReLU/pool in backward; BatchNorm runs once per step, so its running
    statistics move once, as without checkpointing (a whole-block checkpoint would move them twice)."""
    results = []
    for checkpointed in (False, True):
        m = random_crnn(3).train()
        m.checkpoint_activations = checkpointed
        torch.manual_seed(0)  # the final Dropout(0.3) draws the same mask in both runs
        x = torch.randn(4, 24, 64, requires_grad=True)
        (m(x) ** 2).sum().backward()
        results.append(
            (
                {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None},
                x.grad.clone(),
                {n: b.clone() for n, b in m.named_buffers()},
            )
        )
    (g0, x0, b0), (g1, x1, b1) = results
    assert g0.keys() == g1.keys() and len(g0) > 10
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-5, atol=1e-6, msg=n)
    torch.testing.assert_close(x1, x0, rtol=1e-5, atol=1e-6)
    for n in b0:  # running mean / var / num_batches_tracked updated exactly once
        torch.testing.assert_close(b1[n], b0[n], msg=n)
    assert int(b1["features.0.block.0.num_batches_tracked"]) == 1
    # the flag does not change the forward result (eval mode, one clip batch)
    m.eval()
    x = torch.randn(2, 24, 64)
    m.checkpoint_activations = False
    plain = m(x).detach()
    m.checkpoint_activations = True
    torch.testing.assert_close(m(x).detach(), plain)


def test_with_head_copies_the_body_and_seeds_a_new_head():
    m = random_crnn(0)
    h1, h2 = m.with_head(10, seed=5), m.with_head(10, seed=5)
    assert h1.n_labels == 10 and m.n_labels == 527
    assert torch.equal(h1.outputlayer.weight, h2.outputlayer.weight)
    assert not torch.equal(h1.outputlayer.weight, m.with_head(10, seed=6).outputlayer.weight)
    torch.testing.assert_close(h1.gru.weight_hh_l0, m.gru.weight_hh_l0)
    h1.gru.weight_hh_l0.data.add_(1.0)  # a copy: the original is untouched
    assert not torch.equal(h1.gru.weight_hh_l0, m.gru.weight_hh_l0)


# --- published weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GPVAD_FILES))
def test_published_files_load_strictly(name):
    folder = _shared_gpvad()
    m = load_gpvad(folder / GPVAD_FILES[name].file)
    assert isinstance(m, Crnn) and not m.training
    state = torch.load(folder / GPVAD_FILES[name].file, map_location="cpu", weights_only=True)
    assert set(state) == set(m.state_dict()) and len(state) == 40
    assert all(torch.equal(state[k], v) for k, v in m.state_dict().items())
    labels = read_gpvad_labels(folder / GPVAD_FILES[name].labels, m.n_labels)
    assert len(labels) == {"gpv_f": 527, "gpv_b": 2, "vad_c": 2}[name]
    assert "Speech" in labels
    assert load_gpvad(name).n_labels == m.n_labels  # by registry name, through gpvad_dir()


def test_gpv_f_tags_real_dog_clips_as_dog():
    folder = _shared_gpvad()
    esc = shared_data_dir() / "esc50"
    if not (esc / "esc50.csv").is_file():
        pytest.skip("ESC-50 is not in <shared data>/esc50")
    meta = pd.read_csv(esc / "esc50.csv")
    files = meta[meta["category"] == "dog"]["filename"].head(8)
    waves = []
    for f in files:
        x, sr = sf.read(esc / "audio" / f.replace(".wav", ".flac"), dtype="float32")
        waves.append(x)
    m = load_gpvad(folder / "gpv_f.pth")
    labels = read_gpvad_labels(folder / "gpv_f_labels.csv", m.n_labels)
    with torch.no_grad():
        p = m.clip_probs(torch.from_numpy(crnn_logmel(np.stack(waves), sr))).numpy()
    top = np.argsort(-p, axis=1)[:, :3]
    dog_like = {labels.index(n) for n in ("Dog", "Bark", "Bow-wow", "Domestic_animals_pets", "Animal")}
    # a wrong front end (scale, log base, sample rate) turns the tagger into noise; the right one hears dogs
    assert np.mean([bool(set(row) & dog_like) for row in top]) >= 0.75


def test_wrong_file_fails_naming_it(tmp_path):
    cnn = tmp_path / "cnn14_like.pth"
    torch.save(Cnn14(width=1 / 16, n_classes=527).state_dict(), cnn)
    with pytest.raises(ValueError, match="cnn14_like.pth") as e:
        load_gpvad(cnn)
    assert "not a GPVAD CRNN state dict" in str(e.value)
    near = tmp_path / "near.pth"  # has a head, but a body of another shape
    state = random_crnn(0).state_dict()
    state["features.2.block.1.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(state, near)
    with pytest.raises(ValueError, match="near.pth.*does not match"):
        load_gpvad(near)
    extra = tmp_path / "extra.pth"
    torch.save(random_crnn(0).state_dict() | {"bn0.weight": torch.ones(64)}, extra)
    with pytest.raises(ValueError, match="extra.pth.*bn0.weight"):
        load_gpvad(extra)


def test_truncated_file_fails_naming_it(tmp_path):
    good = tmp_path / "mine.pth"
    torch.save(random_crnn(0).state_dict(), good)
    assert load_gpvad(good).n_labels == 527
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="cut.pth.*not a readable torch state dict"):
        load_gpvad(cut)
    fake = tmp_path / "gpv_f.pth"  # a registered name with other content fails the SHA-256 check
    fake.write_bytes(good.read_bytes())
    with pytest.raises(ValueError, match=r"gpv_f.pth: SHA-256 .* not the published gpv_f.pth \(871e9106"):
        load_gpvad(fake)
    assert load_gpvad(fake, verify=False).n_labels == 527


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/nothing.pth.*{GPVAD_ENV}.*gpvad"):
        load_gpvad(tmp_path / "nothing.pth")
    monkeypatch.setenv(GPVAD_ENV, str(tmp_path))
    assert gpvad_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="gpv_b.pth"):
        load_gpvad("gpv_b")
    with pytest.raises(FileNotFoundError, match="not_here.*parameter"):
        gpvad_dir(tmp_path / "not_here")


def test_label_file_checks(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("index,label\n0,Noise\n1,Speech\n")
    assert read_gpvad_labels(ok, 2) == ("Noise", "Speech")
    with pytest.raises(ValueError, match="2 labels but the network has 527"):
        read_gpvad_labels(ok, 527)
    bad = tmp_path / "bad.csv"
    bad.write_text("index,label\n1,Noise\n0,Speech\n")
    with pytest.raises(ValueError, match="bad.csv: index must run 0..1"):
        read_gpvad_labels(bad)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_gpvad_labels(tmp_path / "missing.csv")


def test_embed_and_clip_probs_is_one_pass_of_forward_and_clip_probs():
    m = random_crnn(2, n_labels=6).eval()
    x = torch.randn(3, 60, 64)
    with torch.no_grad():
        x_a, cp = m.embed_and_clip_probs(x)
        torch.testing.assert_close(x_a, m(x))
        torch.testing.assert_close(cp, m.clip_probs(x))
