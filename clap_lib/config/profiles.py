"""The profiles (gpvad: the default run, lab, paper), a profile with `--set` overrides (`make_config`), the config a
notebook's papermill parameters describe and the overrides that rebuild a config from its profile."""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any
from clap_lib.config.experiment import (
    AudioConfig, ClapTrainConfig, DEFAULT_PROFILE, ExperimentConfig, GPVAD_AUDIO, PROFILES, PretrainConfig,
    WeightsConfig, _one_of,
)
from clap_lib.config.parse import apply_overrides, format_value, parse_bool, parse_sets


def lab_profile() -> ExperimentConfig:
    """CNN14 at 1/8 width, pretrained here on ESC-50 folds 1-4 (dirty: all classes, clean: background only)."""
    return ExperimentConfig()


def gpvad_profile() -> ExperimentConfig:
    """The default run: published AudioSet-trained CRNNs (GPV-F dirty, GPV-B clean, random none), real captions.

    The backbone is small (~1 M parameters, about 15 ms per clip on one core), so the recipe keeps the lab's
    scale-downs of CLAP training (frozen epochs on cached x_a, two short unfrozen epochs)."""
    return replace(ExperimentConfig(), profile="gpvad", backbone="crnn", audio=GPVAD_AUDIO,
                   weights=WeightsConfig(dirty="file:gpv_f", clean="file:gpv_b", none="random"),
                   # audit references: VAD-C (clean speech), and the stronger clean level GPV-B trained further on
                   # the background classes B (folds 1-4; GPV-B alone measures at random on the separability table)
                   reference_weights=("file:vad_c", "file:gpv_b+train:background"),
                   # only the reference above is trained here: 3 epochs (the lab trains 10 from scratch); at 1e-4 the
                   # new 25-class head stayed near chance (val acc 0.075), so the lab's 1e-3
                   pretrain=replace(ExperimentConfig().pretrain, epochs=3),
                   captions="real", captions_per_clip=4, bn_calibration_clips=512,
                   # 10 frozen epochs on the cached x_a and one short unfrozen epoch: the CRNN's forward and backward
                   # cost ~50 ms a clip on this CPU, and the grid must fit 15 minutes on 2 cores
                   clap=replace(ExperimentConfig().clap, frozen_epochs=10, max_unfrozen_epochs=1,
                                unfrozen_pair_fraction=1 / 12))


def paper_profile() -> ExperimentConfig:
    """The paper's recipe at full scale (44.1 kHz CNN14 front end, full width, bert-base-uncased)."""
    return replace(
        ExperimentConfig(), profile="paper", audio=AudioConfig(44100, 5.0, 1024, 320, 64, 50.0, 14000.0), width=1.0,
        cnn_dropout=0.2, cnn_fc_dropout=0.5, text_model="bert-base-uncased",
        weights=WeightsConfig(dirty="file:panns", clean="train:audioset_clean", none="random"),
        # AudioSet pretraining: PANNs trained ~600k steps of 32 clips, about 10 passes over ~2M segments
        pretrain=PretrainConfig(epochs=10, batch_size=32, lr=1e-3, spec_augment=True),
        # "until validation loss stops improving": patience above the plateau scheduler's 10, so the learning
        # rate is reduced (x0.1) before training stops (the paper states neither number)
        clap=ClapTrainConfig(frozen_epochs=5, max_unfrozen_epochs=100, early_stop_patience=20))


_PROFILE_BUILDERS = {"lab": lab_profile, "gpvad": gpvad_profile, "paper": paper_profile}


def make_config(profile: str = DEFAULT_PROFILE, sets: dict[str, str] | None = None) -> ExperimentConfig:
    """The profile with `--set` style overrides applied, validated."""
    _one_of("profile", profile, PROFILES)
    return apply_overrides(_PROFILE_BUILDERS[profile](), sets or {})


def config_from_params(profile: str = DEFAULT_PROFILE, seed: Any = 0, split_seed: Any = 0, target_classes: str = "",
                       swap_split: Any = False, width: Any = None, overrides: str = "") -> ExperimentConfig:
    """The config a notebook's papermill parameters describe; bad values raise before any work.

    `target_classes` is comma-separated ("" = the seeded split); `overrides` is "key=value; key=value" in the
    `--set` syntax (e.g. "clap.frozen_epochs=10; pretrain.epochs=4")."""
    sets: dict[str, Any] = {"seed": seed, "split_seed": split_seed, "swap_split": parse_bool(swap_split, "swap_split")}
    if target_classes:
        sets["target_classes"] = target_classes
    if width is not None and str(width).strip().lower() not in ("", "none"):
        sets["width"] = width
    sets.update(parse_sets([s for s in str(overrides).replace("\n", ";").split(";") if s.strip()]))
    return make_config(profile, sets)


def params_from_config(cfg: ExperimentConfig, base_profile: str | None = None) -> dict[str, str]:
    """The `--set` overrides that turn the profile's defaults into `cfg` (so notebooks rebuild the same config)."""
    base = _PROFILE_BUILDERS[base_profile or cfg.profile]()
    out: dict[str, str] = {}

    def walk(a, b, prefix: str) -> None:
        for f in dataclasses.fields(a):
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if dataclasses.is_dataclass(va):
                walk(va, vb, f"{prefix}{f.name}.")
            elif va != vb:
                out[prefix + f.name] = format_value(va)
    walk(cfg, base, "")
    return out
