"""The profiles (gpvad: the default run, lab, paper), a profile with `--set` overrides (`make_config`), the config a
notebook's papermill parameters describe and the overrides that rebuild a config from its profile."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clap_lib.config.controlled import ControlledConfig
from clap_lib.config.experiment import (
    DEFAULT_PROFILE,
    PROFILES,
    AudioConfig,
    ClapTrainConfig,
    ExperimentConfig,
    PretrainConfig,
    RunOptions,
    WeightsConfig,
    _one_of,
)
from clap_lib.config.parse import _hints, apply_overrides, parse_bool, parse_sets, parse_value


def gpvad_profile() -> ExperimentConfig:
    """The default run: published AudioSet-trained CRNNs (GPV-F dirty, GPV-B clean, random none), real captions.
    Its values are `ExperimentConfig`'s defaults (commented there)."""
    return ExperimentConfig()


def lab_profile() -> ExperimentConfig:
    """CNN14 at 1/8 width, pretrained here on ESC-50 folds 1-4 (dirty: all classes, clean: background only), the
    hand-written caption bank; the default run's CLAP recipe with more frozen epochs (30) and two unfrozen ones."""
    return replace(
        ExperimentConfig(),
        profile="lab",
        backbone="cnn14",
        # PANNs' 16 kHz front end with a 20 ms hop (251 frames per 5 s clip, half the CNN cost)
        audio=AudioConfig(hop=320),
        weights=WeightsConfig(dirty="train:all", clean="train:background", none="random"),
        bn_calibration_clips=None,
        reference_weights=(),
        captions="bank",
        captions_per_clip=6,
        run=RunOptions(paper_strength=None),
        controlled=ControlledConfig(enabled=False),
        pretrain=replace(ExperimentConfig().pretrain, epochs=10),
        clap=replace(ExperimentConfig().clap, frozen_epochs=30, max_unfrozen_epochs=2, unfrozen_pair_fraction=1 / 6),
    )


def paper_profile() -> ExperimentConfig:
    """The paper's recipe at full scale (44.1 kHz CNN14 front end, full width, bert-base-uncased)."""
    return replace(
        ExperimentConfig(),
        profile="paper",
        backbone="cnn14",
        audio=AudioConfig(44100, 5.0, 1024, 320, 64, 50.0, 14000.0),
        width=1.0,
        cnn_dropout=0.2,
        cnn_fc_dropout=0.5,
        text_model="bert-base-uncased",
        weights=WeightsConfig(dirty="file:panns", clean="train:audioset_clean", none="random"),
        bn_calibration_clips=None,
        reference_weights=(),
        captions="bank",
        captions_per_clip=6,
        run=RunOptions(paper_strength=None),
        controlled=ControlledConfig(enabled=False),
        # AudioSet pretraining: PANNs trained ~600k steps of 32 clips, about 10 passes over ~2M segments
        pretrain=PretrainConfig(epochs=10, batch_size=32, lr=1e-3, spec_augment=True),
        # "until validation loss stops improving": patience above the plateau scheduler's 10, so the learning
        # rate is reduced (x0.1) before training stops (the paper states neither number)
        clap=ClapTrainConfig(frozen_epochs=5, max_unfrozen_epochs=100, early_stop_patience=20),
    )


_PROFILE_BUILDERS = {"gpvad": gpvad_profile, "lab": lab_profile, "paper": paper_profile}


#: What the book and the audit know about the backbones a profile names: the ESC-50 label information in each
#: network's training, most first (the audit must find this order without being told), and the name the book shows.
#: The pretraining levels, then the default run's audit references (`reference_weights`): VAD-C learned clean speech
#: only; GPV-B trained further on the 25 background classes B has ESC-50 labels, not the target ones.
LABEL_INFORMATION: dict[str, float] = {
    "dirty": 3,
    "reference/gpv_b+background": 2.5,
    "clean": 2,
    "reference/vad_c": 1,
    "none": 0,
}
BACKBONE_NAMES: dict[str, str] = {
    "reference/vad_c": "VAD-C (audit reference)",
    "reference/gpv_b+background": "GPV-B + B (stronger clean, audit reference)",
}
#: the default run's stronger clean level (an audit reference; `--set weights.clean=file:gpv_b+train:background`
#: makes it the clean level of the whole grid)
STRONGER_CLEAN = "reference/gpv_b+background"
#: the ladder of backbones (clap_lib.analysis.ladder, issue 21): the pretraining doses g of the T classes' clips,
#: each trained from random init and from GPV-B (a start a backbone does not know is skipped)
LADDER_DOSES: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
LADDER_DOSE_STARTS: tuple[str, ...] = ("random", "file:gpv_b")


#: Settings a profile does not read (a name covers its section's fields): a `--set` that changes one stops with a
#: message naming the setting and the profile, never silently ignored.
_NO_PAPER_STRENGTH = "the shortcut at paper strength is a stage of the default (gpvad) run only"
_NO_CONTROLLED = "the controlled experiment is a stage of the default (gpvad) run only (it needs real captions)"
UNREAD: dict[str, dict[str, str]] = {
    "gpvad": {
        "width": "a CNN14 setting; the CRNN has one size",
        "cnn_dropout": "a CNN14 setting",
        "cnn_fc_dropout": "a CNN14 setting",
        "paper": "the paper profile's settings",
        "run.device": "its results are CPU results",
    },
    "lab": {
        "paper": "the paper profile's settings",
        "run.device": "its results are CPU results",
        "run.paper_strength": _NO_PAPER_STRENGTH,
        "controlled": _NO_CONTROLLED,
    },
    "paper": {
        **{
            k: "the paper evaluates all 50 ESC-50 classes (no class split)"
            for k in ("split_seed", "per_category", "target_classes", "swap_split")
        },
        "run.paper_strength": _NO_PAPER_STRENGTH,
        "controlled": _NO_CONTROLLED,
    },
}


def _value(cfg: ExperimentConfig, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def make_config(profile: str = DEFAULT_PROFILE, sets: dict[str, str] | None = None) -> ExperimentConfig:
    """The profile with `--set` style overrides applied, validated."""
    _one_of("profile", profile, PROFILES)
    return apply_overrides(_PROFILE_BUILDERS[profile](), sets or {})


def config_from_sets(profile: str = DEFAULT_PROFILE, sets: dict[str, str] | None = None) -> ExperimentConfig:
    """The config a user's `--set` values (command line, papermill) describe: `make_config`, and a changed setting
    the profile does not read (`UNREAD`) is an error naming it."""
    cfg = make_config(profile, sets)
    base = _PROFILE_BUILDERS[profile]()
    for key in sets or {}:
        key = key.strip()
        for unread, why in UNREAD[profile].items():
            if (key == unread or key.startswith(unread + ".")) and _value(cfg, key) != _value(base, key):
                raise ValueError(
                    f"{key}: the {profile} profile does not read this setting ({why}); setting it would change nothing"
                )
    return cfg


def config_from_params(
    profile: str = DEFAULT_PROFILE,
    seed: Any = 0,
    split_seed: Any = 0,
    target_classes: str = "",
    swap_split: Any = False,
    width: Any = None,
    overrides: str = "",
) -> ExperimentConfig:
    """The config a notebook's papermill parameters describe; bad values raise before any work.

    `target_classes` is comma-separated ("" = the seeded split); `overrides` is "key=value; key=value" in the
    `--set` syntax (e.g. "clap.frozen_epochs=10; pretrain.epochs=4")."""
    sets: dict[str, Any] = {"seed": seed, "split_seed": split_seed, "swap_split": parse_bool(swap_split, "swap_split")}
    if target_classes:
        sets["target_classes"] = target_classes
    if width is not None and str(width).strip().lower() not in ("", "none"):
        sets["width"] = width
    extra = parse_sets([s for s in str(overrides).replace("\n", ";").split(";") if s.strip()])
    # a parameter of its own given (not at its default) and in `overrides` too: neither may silently win
    hints = _hints(ExperimentConfig())
    for k in set(extra) & {"seed", "split_seed", "swap_split", "target_classes", "width"}:
        own = parse_value(hints[k], sets[k], k) if k in sets else None
        if k in sets and own != _PARAM_DEFAULTS.get(k) and own != parse_value(hints[k], extra[k], k):
            raise ValueError(f"{k} is given twice: {k}={sets[k]!r} and overrides {k}={extra[k]!r}; give it once")
    sets.update(extra)
    return config_from_sets(profile, sets)


_PARAM_DEFAULTS = {"seed": 0, "split_seed": 0, "swap_split": False}  # a notebook's parameter defaults
