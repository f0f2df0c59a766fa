import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as TAF

from clap_lib.data.audio import (
    AudioConfig,
    AudioError,
    LogMel,
    compute_logmels,
    fix_length,
    hz_to_mel,
    load_audio,
    mel_filterbank,
    mel_to_hz,
    normalise,
    power_spectrogram,
)


@pytest.mark.parametrize("sr,n_fft,fmax", [(16000, 512, 8000.0), (32000, 1024, 14000.0), (44100, 1024, 14000.0)])
def test_mel_filterbank_equals_torchaudio_slaney(sr, n_fft, fmax):
    # torchaudio's slaney/slaney filters are librosa's (an independent implementation of the same formula)
    ours = mel_filterbank(sr, n_fft, 64, 50.0, fmax)
    ref = TAF.melscale_fbanks(n_fft // 2 + 1, 50.0, fmax, 64, sr, norm="slaney", mel_scale="slaney").numpy()
    assert ours.shape == (n_fft // 2 + 1, 64)
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=1e-4)


def test_slaney_mel_scale_known_points():
    # linear part: 1000 Hz is mel 15; above it, 6.4x in Hz adds 27 mels
    np.testing.assert_allclose(hz_to_mel([0.0, 1000.0, 6400.0]), [0.0, 15.0, 42.0], atol=1e-9)
    np.testing.assert_allclose(mel_to_hz(hz_to_mel([123.0, 4567.0])), [123.0, 4567.0], rtol=1e-12)


def test_power_spectrogram_of_bin_centred_sine_is_analytic():
    # A sine of amplitude A at an exact bin frequency with a periodic Hann window (sum w = N/2)
    # has |X[k]| = A * N / 4 in that bin, so the power is (A N / 4)^2.
    n_fft, hop, sr, k0, A = 512, 160, 16000, 40, 0.5
    t = np.arange(sr) / sr
    x = A * np.sin(2 * np.pi * (k0 * sr / n_fft) * t)
    P = power_spectrogram(
        torch.tensor(x[None]), n_fft, hop, torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    )
    mid = P[0, 10:-10]  # frames away from the reflect-padded edges
    np.testing.assert_allclose(mid[:, k0].numpy(), (A * n_fft / 4) ** 2, rtol=1e-6)
    assert (mid.argmax(dim=1) == k0).all()
    assert P.shape == (1, len(x) // hop + 1, n_fft // 2 + 1)


def test_logmel_equals_independent_numpy_computation():
    cfg = AudioConfig()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(cfg.n_samples).astype(np.float32)
    ours = LogMel(cfg)(torch.from_numpy(x[None]))[0].numpy()
    # numpy: reflect-pad n_fft/2, frame, periodic Hann, rfft, power, slaney mel (torchaudio), 10 log10
    pad = np.pad(x.astype(np.float64), cfg.n_fft // 2, mode="reflect")
    n_frames = 1 + (len(pad) - cfg.n_fft) // cfg.hop
    frames = np.stack([pad[i * cfg.hop : i * cfg.hop + cfg.n_fft] for i in range(n_frames)])
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.n_fft) / cfg.n_fft)
    power = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2
    melW = (
        TAF.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.fmin, cfg.fmax, cfg.n_mels, cfg.sample_rate, norm="slaney", mel_scale="slaney"
        )
        .numpy()
        .astype(np.float64)
    )
    ref = 10 * np.log10(np.maximum(power @ melW, 1e-10))
    assert ours.shape == ref.shape == (cfg.n_frames, cfg.n_mels)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_logmel_floor_for_silence():
    cfg = AudioConfig()
    out = compute_logmels(np.zeros((2, cfg.n_samples), np.float32), cfg)
    np.testing.assert_array_equal(out, -100.0)  # 10 log10(1e-10)


def _sine(sr, seconds, freq, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("sr_in", [8000, 16000, 44100])
def test_load_audio_resamples_and_keeps_frequency(tmp_path, sr_in):
    p = tmp_path / "a.wav"
    sf.write(p, _sine(sr_in, 1.0, 1000.0), sr_in)
    y = load_audio(p, 16000)
    assert abs(len(y) - 16000) <= 1
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spec) * 16000 / len(y) - 1000.0) < 2.0


def test_load_audio_mixes_stereo_down(tmp_path):
    p = tmp_path / "s.flac"
    left = _sine(16000, 0.5, 440.0)
    sf.write(p, np.stack([left, np.zeros_like(left)], axis=1), 16000)
    np.testing.assert_allclose(load_audio(p, 16000), left / 2, atol=1e-4)  # 16-bit FLAC quantisation


def test_load_audio_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00not really audio")
    nan = tmp_path / "nan.wav"
    x = _sine(16000, 0.2, 300.0).astype(np.float32)
    x[5] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    for p, msg in (
        (empty, "no samples"),
        (corrupt, "cannot read"),
        (nan, "NaN"),
        (tmp_path / "missing.wav", "cannot read"),
    ):
        with pytest.raises(AudioError, match=msg):
            load_audio(p, 16000)


def test_fix_length_pads_and_crops():
    np.testing.assert_array_equal(fix_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(10), 4, offset=3), [3, 4, 5, 6])


def test_normalise_zero_mean_unit_variance_and_silence():
    x = normalise(np.random.default_rng(1).normal(3.0, 2.0, 1000))
    assert abs(x.mean()) < 1e-6 and abs(x.std() - 1) < 1e-5
    z = normalise(np.zeros(100))
    assert np.isfinite(z).all() and (z == 0).all()


def test_audio_config_validation():
    with pytest.raises(ValueError, match="fmax"):
        AudioConfig(fmax=9000.0).validate()
    with pytest.raises(ValueError, match="hop"):
        AudioConfig(hop=0).validate()
    assert AudioConfig().n_frames == 501
