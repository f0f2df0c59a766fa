"""Log-mels of a stack of clips by the profile's front end (config.AudioConfig.front_end)."""
from __future__ import annotations

import numpy as np

from clap_lib.config.experiment import AudioConfig


def crnn_front_end(cfg: AudioConfig):
    """The GPVAD front end (backbones.crnn.CrnnFrontEnd) of an audio config."""
    from clap_lib.models.backbones.crnn import CrnnFrontEnd

    return CrnnFrontEnd(sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length or cfg.n_fft,
                        hop_length=cfg.hop, n_mels=cfg.n_mels, f_min=cfg.fmin, f_max=cfg.fmax)


def compute_logmels(waves: np.ndarray, cfg: AudioConfig, batch_size: int = 64) -> np.ndarray:
    """(N, T) waveforms at cfg.sample_rate -> (N, frames, n_mels) float32."""
    if cfg.front_end == "gpvad":
        from clap_lib.models.backbones.crnn import crnn_logmel

        return crnn_logmel(waves, cfg.sample_rate, crnn_front_end(cfg), batch_size)
    from clap_lib.data.audio import compute_logmels as panns_logmels

    return panns_logmels(waves, cfg, batch_size)
