"""The range of every numeric setting, checked by `ExperimentConfig.validate` beside its finer checks (a test keeps
it complete). Bounds are generous: what lies outside is a typo or would not fit any machine."""

from __future__ import annotations

import dataclasses
import math

RANGES: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),
    "split_seed": (0, 2**32 - 1),
    "per_category": (1, 9),
    "width": (1e-3, 4),
    "cnn_dropout": (0, 1),
    "cnn_fc_dropout": (0, 1),
    "bn_calibration_clips": (2, 10**7),
    "d_embed": (1, 8192),
    "text_max_tokens": (1, 512),
    "expected_vocab_size": (1, 10**7),
    "captions_per_clip": (1, 1000),
    "topo_k_min": (2, 10**6),
    "topo_k_max": (2, 10**6),
    "topo_n_perm": (1, 10**6),
    "n_boot": (1, 10**6),
    "n_perm": (1, 10**7),
    "ci_level": (0, 1),
    "audio.sample_rate": (1000, 192000),
    "audio.clip_seconds": (0.01, 600),
    "audio.n_fft": (16, 65536),
    "audio.hop": (1, 65536),
    "audio.n_mels": (1, 1024),
    "audio.fmin": (0, 96000),
    "audio.fmax": (0, 96000),
    "audio.win_length": (1, 65536),
    "pretrain.epochs": (1, 10**4),
    "pretrain.batch_size": (1, 65536),
    "pretrain.lr": (1e-10, 10),
    "pretrain.val_fraction": (0, 1),
    "clap.frozen_epochs": (0, 10**4),
    "clap.frozen_lr": (1e-10, 10),
    "clap.unfrozen_lr": (1e-10, 10),
    "clap.max_unfrozen_epochs": (0, 10**4),
    "clap.early_stop_patience": (1, 10**4),
    "clap.unfrozen_pair_fraction": (0, 1),
    "clap.max_val_pairs": (1, 10**8),
    "clap.batch_size": (2, 65536),
    "clap.grad_clip": (1e-6, 1e6),
    "clap.logit_clamp": (1e-3, 1e3),
    "clap.plateau_factor": (0, 1),
    "clap.plateau_patience": (1, 10**4),
    "clap.val_fraction": (0, 1),
    "paper.pretrain_max_val": (1, 10**8),
    "run.num_workers": (0, 1024),
    "run.num_threads": (1, 4096),
    "controlled.d_embed": (1, 8192),
    "controlled.lr": (1e-10, 10),
    "controlled.patience": (1, 10**4),
    "controlled.max_quarters": (1, 10**6),
    "controlled.val_fraction": (0, 1),
    "controlled.gru_lr": (1e-10, 10),
    "controlled.gru_patience": (1, 10**4),
    "controlled.gru_max_quarters": (1, 10**6),
    "controlled.gru_crop": (1, 10**5),
    "controlled.workers": (1, 256),
}


def check_ranges(cfg) -> None:
    """Absurd sizes and counts stop here, naming the setting, not as a MemoryError later."""
    for name, (lo, hi) in RANGES.items():
        v = cfg
        for part in name.split("."):
            v = getattr(v, part)
        if v is not None and not lo <= v <= hi:
            raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {v!r}")


def _validate_section(name: str, section, nonneg: tuple[str, ...]) -> None:
    for f in dataclasses.fields(section):
        v = getattr(section, f.name)
        if isinstance(v, bool) or v is None or not isinstance(v, (int, float)):
            continue
        if not math.isfinite(v):
            raise ValueError(f"{name}.{f.name} must be finite, got {v!r}")
        if f.name in nonneg:
            if v < 0:
                raise ValueError(f"{name}.{f.name} must be >= 0, got {v!r}")
        elif v <= 0:
            raise ValueError(f"{name}.{f.name} must be > 0, got {v!r}")


def _positive_finite(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
