"""The inputs of the ESC-50-sized profiles (lab, gpvad) to the shared stages: ESC-50 clips and folds, the T/B split,
the training pairs of every training level and the backbone pretrainings (the paper profile's are
`clap_lib.paper.inputs.PaperInputs`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.config.experiment import KNOWN_WEIGHTS, ExperimentConfig
from clap_lib.config.levels import CAPTION_TRAININGS
from clap_lib.data.esc50 import (
    ESC50_CLASSES,
    EVAL_FOLD,
    ClassSplit,
    check_evaluation_clips,
    data_fingerprint,
    locate_esc50,
    read_esc50_meta,
    split_by_clip,
    train_eval_masks,
)
from clap_lib.data.pairs import CaptionSource, load_caption_source, training_pairs
from clap_lib.data.pretrain_dose import dose_classes, dose_clips
from clap_lib.models.backbones.mn04_files import MN04_FILES
from clap_lib.models.text import check_text_model
from clap_lib.pipeline.cache import Stage
from clap_lib.pipeline.evaluation import load_features
from clap_lib.pipeline.keys import (
    backbone_payload,
    clap_payload,
    grid_payload,
    level_source,
    reference_name,
    weights_fingerprint,
)
from clap_lib.pipeline.stage_inputs import BackboneInput, Pretraining, TrainingPairs
from clap_lib.training.distributed import World
from clap_lib.training.trainer import PairData


def check_paper_strength(cfg: ExperimentConfig) -> None:
    """`run.paper_strength` given as a path or an unregistered name must be a file (FileNotFoundError naming the
    setting, before any work). The registered name (the default, mn04_as) whose shared file is absent is not an
    error: `pipeline.paper_strength.paper_strength_step` skips that stage after the grid and says why."""
    name = cfg.run.paper_strength
    if name is None or name in MN04_FILES or Path(name).is_file():
        return
    known = "" if name.endswith((".pt", ".pth")) else f" (not a path, nor a registered name: {', '.join(MN04_FILES)})"
    raise FileNotFoundError(f"run.paper_strength={name!r}: weights file not found: {name}{known}")


@dataclass(frozen=True)
class Esc50Inputs:
    """The `lab` / `gpvad` profiles' inputs: ESC-50 clips paired with captions (bank or real), backbones published,
    random or trained here on ESC-50 folds 1-4, BatchNorm re-estimated on the training clips, fold 5 scored."""

    cfg: ExperimentConfig
    meta: pd.DataFrame
    fingerprint: str
    split: ClassSplit
    captions: CaptionSource
    eval_folds: tuple[int, ...] = (EVAL_FOLD,)
    precision: str = "fp32"

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """Config checks that need no data: the caption levels only (dedup needs Freesound IDs, the paper's data)."""
        unknown = [t for t in cfg.trainings if t not in CAPTION_TRAININGS]
        if unknown:
            raise ValueError(
                f"trainings {unknown} are defined for the paper profile only (they drop examples by "
                f"Freesound ID); allowed here: {', '.join(CAPTION_TRAININGS)}"
            )

    @staticmethod
    def device(cfg: ExperimentConfig) -> str:
        return "cpu"  # these profiles' results are CPU results (run.device is not read)

    @classmethod
    def read(
        cls, cfg: ExperimentConfig, esc50_root, data_root, roots, world: World, log, with_pairs: bool = True
    ) -> Esc50Inputs:
        """ESC-50, the caption source, the text model and every weights file, checked before the first stage."""
        check_paper_strength(cfg)
        meta = read_esc50_meta(locate_esc50(esc50_root))
        split = cfg.split
        check_evaluation_clips(meta, split.target)
        check_text_model(cfg.text_model, cfg.expected_vocab_size)
        levels = [*cfg.pretrainings, *(reference_name(r) for r in cfg.reference_weights)]
        for p in levels:
            text, src = level_source(cfg, p)
            try:
                weights_fingerprint(cfg, src)
            except FileNotFoundError as e:  # named by the setting that asked for it, not by another level
                setting = "reference_weights entry" if p.startswith("reference/") else f"weights.{p}"
                why = str(e) if src.file in KNOWN_WEIGHTS[cfg.backbone] else f"weights file not found: {src.file}"
                raise FileNotFoundError(f"{setting}={text!r}: {why}") from None
        source = log.timed("captions", lambda: load_caption_source(cfg, data_root))
        fingerprint = log.timed("fingerprint", lambda: data_fingerprint(meta))
        log(f"target classes T ({len(split.target)}): {', '.join(split.target)}")
        return cls(cfg, meta, fingerprint, split, source)

    @property
    def levels(self) -> tuple[str, ...]:
        return (*self.cfg.pretrainings, *(reference_name(r) for r in self.cfg.reference_weights))

    def backbone(self, level: str, features: Stage, ok: np.ndarray) -> BackboneInput:
        cfg, meta = self.cfg, self.meta
        text, src = level_source(cfg, level)
        train_mask, _ = train_eval_masks(meta)
        pretraining = (
            self._pretraining(src.train, features, ok, train_mask, src.t_fraction) if src.train is not None else None
        )
        clips = np.flatnonzero(train_mask & ok)
        if src.file is not None and src.train is None and cfg.keep_published_batchnorm:
            clips, batchnorm = clips[:0], "published statistics"  # the published statistics stay
        else:
            batchnorm = "re-estimated on the training clips (folds 1-4)"
        if cfg.bn_calibration_clips is not None and cfg.bn_calibration_clips < len(clips):
            # a fixed subset (not the training seed: published backbones stay shared across seeds); BatchNorm
            # statistics converge long before every clip is seen
            clips = np.sort(np.random.default_rng(7).choice(clips, cfg.bn_calibration_clips, replace=False))
        return BackboneInput(
            level, text, src, backbone_payload(cfg, level, features.key), pretraining, clips, batchnorm
        )

    def _pretraining(
        self, train: str, features: Stage, ok: np.ndarray, train_mask: np.ndarray, t_fraction: float | None = None
    ) -> Pretraining:
        """Supervised training on ESC-50 folds 1-4: every class ("all"), the background classes B, or B plus the
        dose `t_fraction` of the T classes' clips (clap_lib.data.pretrain_dose)."""
        cfg, meta = self.cfg, self.meta
        classes = ESC50_CLASSES if train == "all" else self.split.background
        if t_fraction is not None:
            classes = dose_classes(self.split, t_fraction)
            idx, tr, va = dose_clips(meta, train_mask & ok, self.split, t_fraction, cfg.pretrain.val_fraction, cfg.seed)
            train = f"background+T:{t_fraction:g}"
        else:
            idx = np.flatnonzero(train_mask & ok & meta["category"].isin(classes).to_numpy())
            tr, va = split_by_clip(idx, cfg.pretrain.val_fraction, cfg.seed)
        cls_index = {c: i for i, c in enumerate(classes)}
        assert (meta.loc[idx, "fold"] != EVAL_FOLD).all()
        labels = np.full(len(meta), -1)
        labels[idx] = meta.loc[idx, "category"].map(cls_index).to_numpy()

        def evidence(out: Path) -> dict:  # exactly which clips (and so which labels) the network saw
            part = np.full(len(idx), "train", dtype=object)
            part[va] = "val"
            meta.loc[idx, ["filename", "fold", "category"]].assign(part=part).to_csv(
                out / "pretraining_clips.csv", index=False
            )
            return {
                "n_pretraining_clips": int(len(idx)),
                "n_target_clips": int(meta.loc[idx, "category"].isin(self.split.target).sum()),
            }

        return Pretraining(
            len(classes),
            lambda world: np.asarray(load_features(features)[0]),
            labels,
            idx[tr],
            idx[va],
            "ce",
            trained_on=f"ESC-50 folds 1-4, {len(classes)} classes ({train}), here",
            describe=lambda history: (
                f"supervised on {len(classes)} ESC-50 classes ({train}), folds 1-4, "
                f"{len(idx)} clips, best val acc {max(h['val_acc'] for h in history):.3f}"
            ),
            evidence=evidence,
        )

    def pairs(self, training: str, features: Stage, ok: np.ndarray) -> TrainingPairs:
        cfg = self.cfg
        pairs, info, fp = training_pairs(cfg, self.meta, ok, self.split, training, self.captions)
        captions = sorted(pairs["caption"].unique())
        cap_index = {c: i for i, c in enumerate(captions)}
        rows = np.stack([pairs["clip"].to_numpy(), pairs["caption"].map(cap_index).to_numpy()], axis=1)
        tr, va = split_by_clip(rows[:, 0], cfg.clap.val_fraction, cfg.seed)  # a clip is in one side only

        def source(world: World, bb: Stage, text: Stage | None) -> PairData:
            x_a = np.load(bb.dir / "x_a.npy")  # the frozen backbone's x_a, computed once in the backbone stage
            x_t = None
            if text is not None:  # the frozen text backbone's x_t, computed once in the text stage
                row = {c: i for i, c in enumerate(json.loads((text.dir / "captions.json").read_text()))}
                x_t = np.load(text.dir / "x_t.npy")[[row[c] for c in captions]]
            return PairData(np.asarray(load_features(features)[0]), captions, rows[tr], rows[va], x_a, x_t)

        return TrainingPairs(
            fp,
            info,
            {"n_train_pairs": int(len(tr)), "n_val_pairs": int(len(va))},
            source,
            captions=list(pairs["caption"]),
        )

    def text_captions(self, pairs: Mapping[str, TrainingPairs], ok: np.ndarray) -> Sequence[str]:
        # the dirty level's captions hold every level's: one text stage, whichever levels this run trains
        if "dirty" in pairs:
            return pairs["dirty"].captions
        return list(training_pairs(self.cfg, self.meta, ok, self.split, "dirty", self.captions)[0]["caption"])

    def clap_payload(
        self, pretraining: str, training: str, features: Stage, backbone: Stage, pairs: TrainingPairs
    ) -> dict:
        return clap_payload(self.cfg, pretraining, training, features.key, backbone.key, pairs.fingerprint)

    def grid_payload(self, runs: dict[str, str], backbones_: dict[str, str]) -> dict:
        return grid_payload(self.cfg, runs, backbones_)
