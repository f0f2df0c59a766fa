"""Audio I/O and the log-mel front ends.

Reading goes through `soundfile` (torchaudio.load needs torchcodec, which is not usable on CPU-only
machines here); resampling through torchaudio's windowed-sinc resampler. Front ends (`AudioConfig.front_end`):
`panns` is numerically PANNs' (torchlibrosa) front end: Hann-windowed, centred, reflect-padded STFT -> power
spectrogram -> librosa "slaney" mel filters -> 10*log10(max(x, 1e-10)); `gpvad` is the GPVAD CRNN's
log(mel + eps) (clap_lib.models.frontend.crnn_logmel).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch import nn
from tqdm.auto import tqdm

from clap_lib.config.experiment import AudioConfig


class AudioError(ValueError):
    """An audio file that cannot be used (unreadable, empty, non-finite samples)."""


# --- reading -----------------------------------------------------------------------------------


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """torchaudio's band-limited (windowed-sinc, exact rational ratio) resampling of a mono signal."""
    if sr_in == sr_out:
        return x
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), sr_in, sr_out).numpy()


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read any soundfile-readable file as mono float32 at `sample_rate`.

    Stereo is mixed down by averaging channels. Raises AudioError for unreadable or empty files and
    for files with NaN/inf samples (a decoder fault we refuse to paper over).
    """
    x, sr = read_mono(path)
    return resample(x, sr, sample_rate)


def read_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples, native sample rate); AudioError as `load_audio`."""
    path = Path(path)
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError, ...)
        raise AudioError(f"cannot read audio file {path}: {e}") from e
    if x.shape[0] == 0:
        raise AudioError(f"audio file {path} has no samples")
    if not np.isfinite(x).all():
        raise AudioError(f"audio file {path} has NaN/inf samples")
    return x.mean(axis=1), int(sr)


def fix_length(x: np.ndarray, n: int, offset: int = 0) -> np.ndarray:
    """Crop `n` samples starting at `offset`, zero-padding at the end when the clip is short."""
    x = x[offset : offset + n]
    if len(x) < n:
        x = np.pad(x, (0, n - len(x)))
    return x


def normalise(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Zero mean, unit variance (recipe item (i)). A (near-)silent clip, std <= eps, is only centred: dividing
    by ~0 would turn rounding noise into full-scale signal."""
    x = x - x.mean()
    std = x.std()
    return (x / std).astype(np.float32) if std > eps else x.astype(np.float32)


# --- log-mel front end -------------------------------------------------------------------------


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, mels)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_fft//2 + 1, n_mels) triangular filters with Slaney area normalisation, as librosa.filters.mel."""
    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_pts[2:] - mel_pts[:-2]))[:, None]
    return weights.T.astype(np.float32)


class LogMel(nn.Module):
    """waveform (B, T) -> log-mel (B, frames, n_mels), PANNs/torchlibrosa conventions."""

    def __init__(self, cfg: AudioConfig):
        super().__init__()
        self.n_fft, self.hop = cfg.n_fft, cfg.hop
        self.register_buffer("window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False)
        melW = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)
        self.register_buffer("melW", torch.from_numpy(melW), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mel = power_spectrogram(wave, self.n_fft, self.hop, self.window) @ self.melW  # (B, frames, n_mels)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


def power_spectrogram(wave: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    """|STFT|^2 as (B, frames, n_fft//2 + 1): centred frames, reflect padding (torchlibrosa's defaults)."""
    spec = torch.stft(wave, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    return (spec.real**2 + spec.imag**2).transpose(1, 2)


def compute_logmels(waves: np.ndarray, cfg: AudioConfig, batch_size: int = 64) -> np.ndarray:
    """PANNs log-mels for a stack of equal-length waveforms (N, T) -> (N, frames, n_mels) float32 (every front
    end: clap_lib.models.frontend.compute_logmels)."""
    front = LogMel(cfg)
    out = np.empty((len(waves), cfg.n_frames, cfg.n_mels), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(waves), batch_size):
            out[i : i + batch_size] = front(torch.from_numpy(waves[i : i + batch_size])).numpy()
    return out


# --- a metadata table's clips ------------------------------------------------------------------


@dataclass(frozen=True)
class ClipAudio:
    waves: np.ndarray  # (N, n_samples) float32, normalised
    ok: np.ndarray  # (N,) bool: False where the file was skipped
    skipped: tuple[tuple[str, str], ...]  # (file name, reason)


def load_clips(meta: pd.DataFrame, cfg: AudioConfig, progress: bool = True) -> ClipAudio:
    """Every clip as a fixed-length waveform at cfg.sample_rate, zero-mean unit-variance unless
    cfg.waveform_norm is "none"; unusable files are skipped with a warning."""
    import torchaudio.transforms as AT

    waves = np.zeros((len(meta), cfg.n_samples), dtype=np.float32)
    ok = np.ones(len(meta), dtype=bool)
    skipped = []
    native: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}  # (rate, length) -> (row, samples)
    for i, p in enumerate(tqdm(meta["path"], desc="reading audio", disable=not progress, leave=False)):
        try:
            x, sr = read_mono(p)
        except AudioError as e:
            why = str(e).replace(str(p), Path(p).name)  # stored with the results: no path of this machine
            warnings.warn(f"skipping {Path(p).name}: {why}", stacklevel=2)
            ok[i] = False
            skipped.append((Path(p).name, why))
            continue
        # crop (never pad) at the native rate, resample, then zero-pad: the padding stays exactly zero
        x = x[: int(round(sr * cfg.clip_seconds))]
        native.setdefault((sr, len(x)), []).append((i, x))
    for (sr, _), items in native.items():
        # one Resample transform per rate: its windowed-sinc kernel is built once, not per clip
        rs = None if sr == cfg.sample_rate else AT.Resample(sr, cfg.sample_rate)
        for j in range(0, len(items), 64):
            chunk = items[j : j + 64]
            batch = np.stack([x for _, x in chunk])
            if rs is not None:
                with torch.no_grad():
                    batch = rs(torch.from_numpy(batch)).numpy()
            for (i, _), x in zip(chunk, batch):
                x = fix_length(x, cfg.n_samples)
                waves[i] = normalise(x) if cfg.waveform_norm == "standardise" else x
    return ClipAudio(waves, ok, tuple(skipped))
