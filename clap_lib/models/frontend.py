"""The log-mel front ends: the GPVAD CRNN's (:class:`CrnnFrontEnd`, :func:`crnn_logmel`: 22.05 kHz, natural-log
Slaney mels, the band edges the band control reads) and, by the profile's `AudioConfig.front_end`, the log-mels of a
stack of clips (:func:`compute_logmels`; the PANNs front end is :mod:`clap_lib.data.audio`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from clap_lib.config.experiment import AudioConfig
from clap_lib.data.audio import compute_logmels as panns_logmels

#: log(mel + EPS). The published networks were trained on librosa features of float32 audio: numpy kept the
#: float32 dtype and added np.spacing(1) = 2.2e-16 (the float64 spacing at 1) as a float32 constant. We do the
#: same. It only matters where the mel power is ~0 (digital silence, zero padding): log(2.2e-16) = -36.0, where
#: np.spacing(np.float32(1)) = 1.2e-7 would floor at -15.9, a value the network never saw.
EPS = float(np.spacing(1))


@dataclass(frozen=True)
class CrnnFrontEnd:
    """The GPVAD log-mel: 40 ms Hann window in a 2048-point FFT, 20 ms hop, 64 Slaney mels, 0 Hz to Nyquist."""

    sample_rate: int = 22050
    n_fft: int = 2048
    win_length: int = 882
    hop_length: int = 441
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None  # None = sample_rate / 2

    @property
    def top(self) -> float:
        return self.sample_rate / 2 if self.f_max is None else self.f_max

    def n_frames(self, n_samples: int) -> int:
        """Frames of a clip of `n_samples` at `sample_rate` (centred STFT: one per hop plus the frame at 0)."""
        return n_samples // self.hop_length + 1

    def validate(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"CrnnFrontEnd.{name} must be > 0, got {getattr(self, name)!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"CrnnFrontEnd.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.top <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}"
            )


def _mel_transform(fe: CrnnFrontEnd):
    import torchaudio

    # librosa.feature.melspectrogram's defaults of the GPVAD era: periodic Hann, centred, reflect padding,
    # power 2, Slaney mel scale and area normalisation
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=fe.sample_rate,
        n_fft=fe.n_fft,
        win_length=fe.win_length,
        hop_length=fe.hop_length,
        f_min=fe.f_min,
        f_max=fe.f_max,
        n_mels=fe.n_mels,
        window_fn=torch.hann_window,
        power=2.0,
        center=True,
        pad_mode="reflect",
        norm="slaney",
        mel_scale="slaney",
    )


def _as_batch(waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(waves) if not isinstance(waves, torch.Tensor) else waves)
    x = x.detach().to(torch.float32, copy=False).cpu()
    if x.ndim == 1:
        x = x[None]
    elif x.ndim == 3:  # (batch, channels, samples): mix down
        x = x.mean(dim=1)
    elif x.ndim != 2:
        raise ValueError(
            f"waves must be (samples,), (batch, samples) or (batch, channels, samples); got {tuple(x.shape)}"
        )
    if x.shape[1] == 0:
        raise ValueError("waves have no samples")
    return x


def crnn_logmel(
    waves: np.ndarray | torch.Tensor, sample_rate: int, fe: CrnnFrontEnd = CrnnFrontEnd(), batch_size: int = 32
) -> np.ndarray:
    """log(mel + EPS) of each clip as (batch, frames, n_mels) float32, computed `batch_size` clips at a time.

    Clips are resampled to `fe.sample_rate` with torchaudio's windowed-sinc resampler (its defaults). 2000
    five-second clips give a 2000 x 251 x 64 array (128 MB); a batch of 32 needs about 70 MB of scratch.
    """
    fe.validate()
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    mel = _mel_transform(fe)
    return resampled_in_batches(
        _as_batch(waves),
        sample_rate,
        fe.sample_rate,
        fe.n_frames,
        fe.n_mels,
        batch_size,
        lambda b: torch.log(mel(b) + EPS).transpose(1, 2),
    )


def resampled_in_batches(
    x: torch.Tensor, sample_rate: int, target_rate: int, n_frames, n_mels: int, batch_size: int, features
) -> np.ndarray:
    """`features(clips at target_rate)` -> (batch, frames, n_mels), for `batch_size` clips at a time (the scratch of
    one batch, not of every clip); `n_frames(samples)` sizes the output. Resampling: torchaudio's windowed sinc."""
    import torchaudio.functional as AF

    n_out = math.ceil(x.shape[1] * target_rate / sample_rate)  # torchaudio's resampled length
    out = np.empty((len(x), n_frames(n_out), n_mels), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            b = x[i : i + batch_size]
            if sample_rate != target_rate:
                b = AF.resample(b, sample_rate, target_rate)
            out[i : i + len(b)] = features(b).numpy()
    return out


def mel_band_edges(fe: CrnnFrontEnd = CrnnFrontEnd()) -> np.ndarray:
    """(n_mels, 3) [lower edge, centre, upper edge] in Hz of each triangular band (Slaney scale), as in
    torchaudio's `melscale_fbanks`: band m rises from point m to point m+1 and falls to point m+2."""
    from clap_lib.data.audio import hz_to_mel, mel_to_hz

    pts = mel_to_hz(np.linspace(hz_to_mel(fe.f_min), hz_to_mel(fe.top), fe.n_mels + 2))
    return np.stack([pts[:-2], pts[1:-1], pts[2:]], axis=1)


def mel_bands_above(cutoff_hz: float, fe: CrnnFrontEnd = CrnnFrontEnd()) -> np.ndarray:
    """Indices of the mel bands whose whole support lies at or above `cutoff_hz` (lower edge >= cut-off).

    For audio band-limited to `cutoff_hz` (our 16 kHz ESC-50 copy: 8 kHz) these bands hold only resampler
    leakage; the band straddling the cut-off is partly signal and is not included.
    """
    if not 0 <= cutoff_hz <= fe.sample_rate / 2:
        raise ValueError(f"cutoff_hz must be in [0, {fe.sample_rate / 2}], got {cutoff_hz}")
    return np.flatnonzero(mel_band_edges(fe)[:, 0] >= cutoff_hz)


def crnn_front_end(cfg: AudioConfig):
    """The GPVAD front end of an audio config."""
    return CrnnFrontEnd(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length or cfg.n_fft,
        hop_length=cfg.hop,
        n_mels=cfg.n_mels,
        f_min=cfg.fmin,
        f_max=cfg.fmax,
    )


def compute_logmels(waves: np.ndarray, cfg: AudioConfig, batch_size: int = 64) -> np.ndarray:
    """(N, T) waveforms at cfg.sample_rate -> (N, frames, n_mels) float32."""
    if cfg.front_end == "gpvad":
        return crnn_logmel(waves, cfg.sample_rate, crnn_front_end(cfg), batch_size)
    return panns_logmels(waves, cfg, batch_size)
