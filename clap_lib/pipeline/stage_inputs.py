"""What a profile hands the shared stages of clap_lib.pipeline.stages: its data, read and checked before the first stage.

Every profile runs the same stages (features, backbone, text, clap, grid). What differs is only where their inputs
come from: the ESC-50-sized profiles pair ESC-50 clips with captions and train backbones on ESC-50 folds 1-4
(:class:`clap_lib.pipeline.esc50_inputs.Esc50Inputs`); the paper profile streams the paper's caption data sets and pretrains
on AudioSet (:class:`clap_lib.paper.inputs.PaperInputs`). Both describe them with the types below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from clap_lib.config.experiment import WeightSource
from clap_lib.data.esc50 import ClassSplit

if TYPE_CHECKING:  # annotations only: this module stays free of torch
    from clap_lib.pipeline.cache import Stage
    from clap_lib.training.distributed import World
    from clap_lib.training.pair_sources import ClipSource, PairSource

__all__ = ["Pretraining", "BackboneInput", "TrainingPairs", "GridInputs", "no_evidence"]


def no_evidence(out: Path) -> dict:
    return {}


@dataclass(frozen=True)
class Pretraining:
    """Supervised training of a backbone here (a "train:..." weight source): items, labels and what they are."""

    n_classes: int
    # the training items: cached log-mels (n, frames, mels) or a clip source streaming to the device of `World`
    data: Callable[[World], np.ndarray | ClipSource]
    labels: np.ndarray  # class index per item (loss "ce") or multi-hot rows (loss "bce")
    train_idx: np.ndarray
    val_idx: np.ndarray
    loss: str
    trained_on: str  # provenance of a backbone trained from random init: what it learned is this training
    describe: Callable[[list[dict]], str]  # provenance line "trained here", from the training history
    evidence: Callable[[Path], dict] = no_evidence  # writes what the network saw into the stage folder


@dataclass(frozen=True)
class BackboneInput:
    """One backbone stage: where the weights come from, its cache payload, and how its BatchNorm is set."""

    level: str  # a pretraining level, or "reference/<name>"
    source_text: str  # the weight source as configured ("file:gpv_f", "train:audioset_clean", ...)
    src: WeightSource
    payload: dict
    pretraining: Pretraining | None  # None: no training here
    calibration: np.ndarray  # rows of the ESC-50 features whose statistics re-estimate BatchNorm (empty: kept)
    batchnorm: str  # provenance: what the BatchNorm statistics are


@dataclass(frozen=True)
class TrainingPairs:
    """One training level's CLAP pairs: their fingerprint and counts, and the pair source the trainer reads."""

    fingerprint: str
    info: dict  # counts recorded in every run's metrics.json and in the grid's pairs.json
    extra: dict  # counts recorded in metrics.json only
    # (world, backbone stage, text stage or None) -> the pair source: cached log-mels (PairData) or streamed audio
    source: Callable[[World, Stage, Stage | None], PairSource]
    captions: Sequence[str] | None = None  # captions whose x_t the text stage computes once (cached sources only)
    evidence: Callable[[Path], Any] = no_evidence  # writes exactly which pairs were trained on


class GridInputs(Protocol):
    """One profile's inputs of the grid (built by its `read`, after every input was checked)."""

    meta: pd.DataFrame  # ESC-50 (features and evaluation)
    fingerprint: str  # of the ESC-50 clips
    split: ClassSplit  # target classes T (the zero-shot task) and background classes B
    eval_folds: tuple[int, ...]  # ESC-50 folds scored zero-shot
    precision: str  # resolved training precision (fp32 on CPU)
    levels: tuple[str, ...]  # backbone stages: the pretraining levels, then audit references

    def backbone(self, level: str, features: Stage, ok: np.ndarray) -> BackboneInput: ...

    def pairs(self, training: str, features: Stage, ok: np.ndarray) -> TrainingPairs: ...

    def text_captions(self, pairs: Mapping[str, TrainingPairs], ok: np.ndarray) -> Sequence[str] | None: ...

    def clap_payload(
        self, pretraining: str, training: str, features: Stage, backbone: Stage, pairs: TrainingPairs
    ) -> dict: ...

    def grid_payload(self, runs: dict[str, str], backbones: dict[str, str]) -> dict: ...
