"""Audio backbones behind one small interface, registered by name.

A backbone is an `nn.Module` with `embed_dim`, `forward(logmel (B, frames, mels)) -> x_a (B, embed_dim)` and a
classifier head (`classify(logmel) -> logits`, used by supervised training here). For each registered name a
`BackboneSpec` says how to build one with random weights (seeded), how to load published weights strictly, how to
rebuild one from a saved state dict, and how to give it a new head. Profiles name their backbone and where each
pretraining level's weights come from (`config.WeightsConfig`); the pipeline only talks to this interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clap_lib.config.experiment import ExperimentConfig


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    random_init: Callable[[ExperimentConfig, int, int], nn.Module]  # (cfg, n_classes, seed)
    load_pretrained: Callable[[ExperimentConfig, str], nn.Module]  # (cfg, known name or path)
    head_key: str  # state-dict key of the classifier head's weight (its rows = number of classes)
    weights_info: Callable[[str], dict]  # provenance of published weights: file, what it was trained on
    weights_file: Callable[[str], Path]  # known name or path -> an existing file, else FileNotFoundError saying where
    head_labels: Callable[[str], tuple[str, ...] | None]  # output names of published weights' head, if known

    def from_state(self, cfg: ExperimentConfig, state: dict) -> nn.Module:
        model = self.random_init(cfg, int(state[self.head_key].shape[0]), 0)
        model.load_state_dict(state, strict=True)
        return model

    def with_head(self, model: nn.Module, n_classes: int, seed: int) -> nn.Module:
        return model.with_head(n_classes, seed)


# --- cnn14 ---------------------------------------------------------------------------------------


def _cnn14_random(cfg: ExperimentConfig, n_classes: int, seed: int) -> nn.Module:
    from clap_lib.models.backbones.cnn14 import Cnn14

    torch.manual_seed(seed)  # PANNs' init draws from the global generator
    return Cnn14(cfg.audio.n_mels, cfg.width, n_classes, p_block=cfg.cnn_dropout, p_fc=cfg.cnn_fc_dropout)


def _cnn14_load(cfg: ExperimentConfig, name_or_path: str) -> nn.Module:
    from clap_lib.models.backbones.cnn14 import load_panns_checkpoint, require_panns_checkpoint

    path = require_panns_checkpoint(None) if name_or_path == "panns" else Path(name_or_path)
    model = load_panns_checkpoint(path, width=cfg.width, n_mels=cfg.audio.n_mels)
    model.p_block, model.p_fc = cfg.cnn_dropout, cfg.cnn_fc_dropout  # dropout is the recipe's, not the file's
    return model


def _cnn14_resolve(name_or_path: str) -> Path:
    from clap_lib.models.backbones.cnn14 import require_panns_checkpoint

    return require_panns_checkpoint(None if name_or_path == "panns" else name_or_path)


def _cnn14_info(name: str) -> dict:
    return {"file": name, "trained on": "AudioSet, all 527 labels (PANNs)" if name == "panns" else "user file"}


# --- crnn (GPVAD) --------------------------------------------------------------------------------


def _crnn_random(cfg: ExperimentConfig, n_classes: int, seed: int) -> nn.Module:
    from clap_lib.models.backbones.crnn import random_crnn

    return random_crnn(seed, n_classes)


def _crnn_load(cfg: ExperimentConfig, name_or_path: str) -> nn.Module:
    from clap_lib.models.backbones.gpvad_files import load_gpvad

    return load_gpvad(_crnn_resolve(name_or_path))


def _crnn_resolve(name_or_path: str) -> Path:
    from clap_lib.models.backbones.gpvad_files import GPVAD_DD_ENV, GPVAD_ENV, PUBLISHED, resolve_gpvad

    path = resolve_gpvad(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"GPVAD weights not found: {path}. The crnn backbone's published weights are "
            f"{', '.join(f.file for f in PUBLISHED.values())} (RicherMans/GPV pretrained/, RicherMans/Datadriven-GPVAD "
            f"pretrained_models/): put them in a folder and set ${GPVAD_ENV}=FOLDER / ${GPVAD_DD_ENV}=FOLDER (or place "
            "them in <shared data>/gpvad and gpvad_dd), or pass a path: `--set weights.dirty=file:PATH.pth`."
        )
    return path


def _crnn_labels(name: str) -> tuple[str, ...] | None:
    from clap_lib.models.backbones.gpvad_files import published_labels

    return published_labels(name)


def _crnn_info(name: str) -> dict:
    from clap_lib.models.backbones.gpvad_files import PUBLISHED

    f = PUBLISHED.get(name)
    return (
        {"file": f.file, "trained on": f.trained_on, "labels": f.labels, "exposure": f.exposure}
        if f
        else {"file": name, "trained on": "user file"}
    )


# --- mn04 (EfficientAT mn04_as) ------------------------------------------------------------------


def _mn04_random(cfg: ExperimentConfig, n_classes: int, seed: int) -> nn.Module:
    from clap_lib.models.backbones.mn04 import random_mn04

    return random_mn04(seed, n_classes)


def _mn04_load(cfg: ExperimentConfig, name_or_path: str) -> nn.Module:
    from clap_lib.models.backbones.mn04_files import load_mn04

    return load_mn04(_mn04_resolve(name_or_path))


def _mn04_resolve(name_or_path: str) -> Path:
    from clap_lib.models.backbones.mn04_files import EFFICIENTAT_ENV, resolve_mn04

    path = resolve_mn04(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"EfficientAT weights not found: {path}. The published mn04_as.pt (EfficientAT release "
            f"mn04_as_mAP_432.pt): put it in a folder and set ${EFFICIENTAT_ENV}=FOLDER (or place it in "
            "<shared data>/efficientat), or pass a path: `--set weights.dirty=file:PATH.pt`."
        )
    return path


def _mn04_labels(name: str) -> tuple[str, ...] | None:
    from clap_lib.models.backbones.mn04_files import MN04_FILES, efficientat_dir, read_mn04_labels

    f = MN04_FILES.get(name)
    return read_mn04_labels(efficientat_dir() / f.labels, 527) if f else None


def _mn04_info(name: str) -> dict:
    from clap_lib.models.backbones.mn04_files import MN04_FILES

    f = MN04_FILES.get(name)
    if f is None:
        return {"file": name, "trained on": "user file"}
    return {
        "file": f.file,
        "trained on": f.trained_on,
        "labels": f.labels,
        "source": f.source,
        "exposure": "audioset_527",
    }


REGISTRY: dict[str, BackboneSpec] = {
    "cnn14": BackboneSpec(
        "cnn14", _cnn14_random, _cnn14_load, "fc_audioset.weight", _cnn14_info, _cnn14_resolve, lambda name: None
    ),
    "crnn": BackboneSpec(
        "crnn", _crnn_random, _crnn_load, "outputlayer.weight", _crnn_info, _crnn_resolve, _crnn_labels
    ),
    "mn04": BackboneSpec(
        "mn04", _mn04_random, _mn04_load, "classifier.5.weight", _mn04_info, _mn04_resolve, _mn04_labels
    ),
}


def spec(name: str) -> BackboneSpec:
    if name not in REGISTRY:
        raise ValueError(f"unknown backbone {name!r}; allowed: {', '.join(REGISTRY)}")
    return REGISTRY[name]
