"""EfficientAT mn04's front end (section 1 of ``<shared data>/efficientat/ARCHITECTURE.md``): pre-emphasis, STFT,
128 Kaldi mel bands 0-15 kHz at 32 kHz, log, fixed normalisation.

Our ESC-50 copy is 16 kHz: :func:`mn04_logmel` resamples it to 32 kHz, and the mel bands above 8 kHz (the top 23
of the 128, :func:`mel_bands_above`) hold no signal, only the resampler's leakage (see :mod:`.backbones.mn04`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from clap_lib.models.frontend import resampled_in_batches

# --- front end (section 1) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mn04FrontEnd:
    """EfficientAT's eval-mode front end: pre-emphasis, 25 ms symmetric Hann in a 1024-point FFT, 10 ms hop,
    power, 128 Kaldi mel bands 0-15 kHz, log(mel + 1e-5), then the fixed map (x + 4.5) / 5."""

    sample_rate: int = 32000
    n_fft: int = 1024
    win_length: int = 800
    hop_length: int = 320
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 15000.0  # the model's fmax=None -> sr/2 - 1000; sr/2 changes its logits by up to ~4
    preemphasis: float = 0.97
    log_offset: float = 1e-5
    shift: float = 4.5
    scale: float = 5.0

    def n_frames(self, n_samples: int) -> int:
        """Frames of a clip of `n_samples` at `sample_rate`: pre-emphasis drops one sample, the STFT is centred."""
        return 1 + (n_samples - 1) // self.hop_length

    def validate(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Mn04FrontEnd.{name} must be > 0, got {getattr(self, name)!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"Mn04FrontEnd.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}"
            )


def mel_matrix(fe: Mn04FrontEnd = Mn04FrontEnd()) -> torch.Tensor:
    """(n_mels, n_fft/2 + 1) Kaldi triangular filters (peak 1, no area normalisation, VTLN off) with a zero
    column appended for the Nyquist bin, which Kaldi's banks do not cover."""
    from torchaudio.compliance.kaldi import get_mel_banks

    # vtln_low / vtln_high are unused at warp factor 1 (Kaldi's defaults 100 / -500)
    banks, _ = get_mel_banks(fe.n_mels, fe.n_fft, float(fe.sample_rate), fe.f_min, fe.f_max, 100.0, -500.0, 1.0)
    return torch.nn.functional.pad(banks, (0, 1))


def mel_bands_above(cutoff_hz: float, fe: Mn04FrontEnd = Mn04FrontEnd()) -> np.ndarray:
    """Indices of the bands whose whole support lies at or above `cutoff_hz` (left edge >= cut-off): for our
    16 kHz ESC-50 upsampled to 32 kHz (cut-off 8 kHz) they hold only resampler leakage."""
    if not 0 <= cutoff_hz <= fe.sample_rate / 2:
        raise ValueError(f"cutoff_hz must be in [0, {fe.sample_rate / 2}], got {cutoff_hz}")
    mel = lambda f: 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)
    step = (mel(fe.f_max) - mel(fe.f_min)) / (fe.n_mels + 1)
    left_edges = mel(fe.f_min) + step * np.arange(fe.n_mels)  # band b rises from step b
    return np.flatnonzero(left_edges >= mel(cutoff_hz))


def _as_batch(waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(waves) if not isinstance(waves, torch.Tensor) else waves)
    x = x.detach().to(torch.float32).cpu()
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"waves must be (samples,) or (batch, samples); got {tuple(x.shape)}")
    if x.shape[1] < 2:
        raise ValueError(f"waves need >= 2 samples (pre-emphasis), got {x.shape[1]}")
    return x


def mn04_features(x: torch.Tensor, fe: Mn04FrontEnd = Mn04FrontEnd(), mel: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N) waveforms at `fe.sample_rate` -> (B, frames, n_mels) normalised log-mel, float32."""
    x = x[:, 1:] - fe.preemphasis * x[:, :-1]
    window = torch.hann_window(fe.win_length, periodic=False, dtype=x.dtype)  # symmetric: both ends 0
    spec = torch.stft(
        x,
        fe.n_fft,
        hop_length=fe.hop_length,
        win_length=fe.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    power = spec.real**2 + spec.imag**2  # (B, n_fft/2 + 1, frames)
    m = mel_matrix(fe) if mel is None else mel
    logmel = torch.log(torch.matmul(m, power) + fe.log_offset)
    return ((logmel + fe.shift) / fe.scale).transpose(1, 2).contiguous()


def mn04_logmel(
    waves: np.ndarray | torch.Tensor, sample_rate: int, fe: Mn04FrontEnd = Mn04FrontEnd(), batch_size: int = 32
) -> np.ndarray:
    """The network's input for each clip, (batch, frames, 128) float32, `batch_size` clips at a time.

    Clips are resampled to `fe.sample_rate` with torchaudio's windowed-sinc resampler (its defaults): a 16 kHz
    ESC-50 clip becomes 32 kHz audio with nothing above 8 kHz but resampler leakage (see the module docstring).
    5 s gives 500 frames.
    """
    fe.validate()
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    mel = mel_matrix(fe)
    return resampled_in_batches(
        _as_batch(waves),
        sample_rate,
        fe.sample_rate,
        fe.n_frames,
        fe.n_mels,
        batch_size,
        lambda b: mn04_features(b, fe, mel),
    )
