"""The paper profile: the 2 x 3 grid on the paper's real training data, at the paper's scale.

What differs from the ESC-50-sized profiles (pipeline.py), all from the paper / public CLAP recipe:

* CLAP training data = the union of the Clotho, AudioCaps, FSD50K and MACS training splits
  (:func:`clap_lib.paper.datasets.paper_training_set`); 20 % of the audio files (seeded, all captions of a file on
  one side) are the validation pairs. "clean" = the pairs whose caption names no word of any of the 50 ESC-50
  class names (:func:`clap_lib.paper.datasets.clean_pairs`), applied to training and validation pairs alike. "dedup"
  (beyond the paper) = clean minus every pair whose audio is a Freesound recording an ESC-50 clip was cut from
  (FSD50K ``fname``, Clotho metadata ``sound_id``; as WavCaps de-duplicated; :mod:`clap_lib.paper.pairs`).
* Audio is streamed from the files: per (seed, epoch, pair) a seeded random `clip_seconds` (5 s) segment,
  resampled to `cfg.audio.sample_rate` (44.1 kHz), zero-padded, zero mean / unit variance; the log-mel is
  computed on the training device. A resumed run draws exactly the segments and batches of an uninterrupted one.
* Audio pretraining: dirty = the official PANNs CNN14 checkpoint (AudioSet, every class); clean = supervised
  CNN14 pretraining (multi-label BCE, as PANNs) on the AudioSet segments left after dropping every segment
  with a label whose name the leakage filter removes (:func:`clap_lib.paper.datasets.audioset_classes_removed`);
  the head covers the kept classes only; none = random init.
* Evaluation: zero-shot on ESC-50 with all 50 classes as candidates (no ESC-50 audio or label is trained on),
  on the clips of `PaperSettings.eval_folds` (default: all 2000 clips, as public CLAP).
* Training runs on `device` ("cpu", "cuda", "cuda:0", "auto"), with mixed precision on CUDA (bf16, or fp16
  with loss scaling), and data-parallel under `torchrun` (:mod:`clap_lib.training.distributed`). The loops are the
  lab's (:func:`clap_lib.training.trainer.train_clap`, :func:`clap_lib.training.pretrain.pretrain_backbone`); this module only
  builds their streamed sources (:mod:`clap_lib.training.pair_sources`).

This module only reads and checks those inputs (:class:`PaperInputs`); the stages are pipeline.py's, the same
as every profile's (features, backbone, clap, grid; `python -m clap_lib run --profile paper`, or
`pipeline.run_grid`). Their cache keys: backbone (a file: its digest; clean: the AudioSet fingerprint), clap
(pairs fingerprint = hash of the pairs table + every audio file's size and mtime). The outputs have the lab
layout (metrics.json, embeddings.npz, tsne.npz, history.json, results.csv, ...) so clap_lib.report reads them.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.config.experiment import AUDIOSET_PRETRAIN_SPLITS as PRETRAIN_SPLITS
from clap_lib.config.experiment import AudioConfig, ExperimentConfig, PaperSettings, RunOptions, config_payload
from clap_lib.config.levels import PAPER_PROFILE_TRAININGS
from clap_lib.data.audio import LogMel
from clap_lib.data.esc50 import (
    ESC50_CLASSES,
    ClassSplit,
    data_fingerprint,
    locate_esc50,
    read_esc50_meta,
    split_validation,
)
from clap_lib.models.backbones import spec as backbone_spec
from clap_lib.models.backbones.cnn14 import require_panns_checkpoint
from clap_lib.paper.datasets import (
    AUDIOSET_SPLITS,
    LANDING_PAGES,
    audioset_classes_removed,
    clean_audioset_segments,
    default_roots,
    read_audioset_class_labels,
    read_audioset_segments,
)
from clap_lib.paper.pairs import PairSet, _with_missing_hint, pairs_for_training, read_pairs, table_fingerprint
from clap_lib.pipeline.evaluation import STATS_VERSION
from clap_lib.pipeline.stage_inputs import BackboneInput, Pretraining, TrainingPairs
from clap_lib.training.common import autocast, resolve_precision
from clap_lib.training.distributed import World
from clap_lib.training.pair_sources import ClipDataset, StreamedClips, StreamedPairs, random_segment

__all__ = ["PaperSettings", "RunOptions", "PaperInputs", "PairSet", "AudioSetData", "ClipDataset", "read_pairs",
           "pairs_for_training", "read_clean_audioset", "streamed_pairs", "streamed_audioset", "audioset_pretraining",
           "random_segment", "autocast", "resolve_precision", "paper_split", "require_panns_checkpoint"]

# salts keep the random streams of the different loops independent (see distributed.seed_torch)
SALT_CLAP, SALT_CLAP_VAL, SALT_PRE, SALT_PRE_VAL = 11, 12, 13, 14


def paper_split() -> ClassSplit:
    """The paper's zero-shot task: every ESC-50 class is a target class; there are no background classes."""
    return ClassSplit(tuple(ESC50_CLASSES), ())


def paper_payload(cfg: ExperimentConfig) -> dict:
    """What one combination depends on: the config minus which combinations run, the statistics computed
    afterwards, the lab's class-split fields and how it runs."""
    d = config_payload(cfg)
    for k in ("pretrainings", "trainings", "n_boot", "n_perm", "ci_level", "split_seed", "per_category",
              "target_classes", "swap_split"):
        d.pop(k, None)
    return d


# --- inputs and their fingerprints ---------------------------------------------------------------


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class AudioSetData:
    """The clean AudioSet pretraining set: segments with audio and no removed label, and the kept classes."""

    segments: pd.DataFrame
    classes: pd.DataFrame  # index, mid, display_name of the kept classes (the head's outputs, in order)
    removed: pd.DataFrame  # mid, name, matched_words of the classes the leakage filter removes
    fingerprint: str
    n_segments: int  # before cleaning (with audio)
    n_missing_audio: int


def read_clean_audioset(root: str | Path | None, settings: PaperSettings) -> AudioSetData:
    """AudioSet segments of the training splits minus every segment that has a removed (ESC-50-named) label."""
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(f"AudioSet root {root} not found: audio pretraining 'clean' trains on AudioSet "
                                f"({LANDING_PAGES['audioset']}); give `--data-root DIR` with DIR/audioset, or set "
                                "$CLAP_AUDIOSET, or leave 'clean' out (`--set pretrainings=dirty,none`).")
    root = Path(root)
    labels = read_audioset_class_labels(root)
    removed = audioset_classes_removed(labels, ESC50_CLASSES)
    splits = settings.audioset_splits or [s for s in PRETRAIN_SPLITS if (root / AUDIOSET_SPLITS[s]).is_file()]
    if not splits:
        lists = ", ".join(AUDIOSET_SPLITS[s] for s in PRETRAIN_SPLITS)
        raise FileNotFoundError(f"no AudioSet training segment list ({lists}) in {root}")
    try:
        seg = read_audioset_segments(root, splits, require_audio=not settings.allow_missing_audio)
    except FileNotFoundError as e:
        raise _with_missing_hint(e) from e
    present = seg[seg["audio_exists"].to_numpy(bool)].reset_index(drop=True)
    clean = clean_audioset_segments(present, removed["mid"])
    kept = labels[~labels["mid"].isin(set(removed["mid"]))].reset_index(drop=True)
    known = set(kept["mid"])
    clean = clean[[any(m in known for m in labels_) for labels_ in clean["labels"]]].reset_index(drop=True)
    if clean.empty:
        raise ValueError(f"no AudioSet segment is left for clean pretraining in {root} ({len(present)} with audio)")
    fp = table_fingerprint(clean.assign(labels=clean["labels"].map(",".join)),
                           ["split", "audio_id", "audio_path", "start_seconds", "end_seconds", "labels"])
    fp = hashlib.blake2b((fp + kept.to_csv(index=False)).encode(), digest_size=16).hexdigest()
    return AudioSetData(clean, kept, removed, fp, len(present), int(len(seg) - len(present)))


# --- streamed sources ----------------------------------------------------------------------------


def streamed_pairs(train: pd.DataFrame, val: pd.DataFrame, audio: AudioConfig, seed: int, front: LogMel,
                   num_workers: int = 0) -> StreamedPairs:
    """The (audio_path, caption) tables as a pair source for training.train_clap: per (seed, epoch, pair) a
    seeded random `audio.clip_seconds` segment; validation segments fixed (salted apart from training's)."""
    return StreamedPairs.from_paths((train["audio_path"], train["caption"]), (val["audio_path"], val["caption"]),
                                    audio, seed, front, (SALT_CLAP, SALT_CLAP_VAL), num_workers)


def streamed_audioset(segments: pd.DataFrame, audio: AudioConfig, seed: int, front: LogMel,
                      num_workers: int = 0) -> StreamedClips:
    """AudioSet segments as a clip source for training.pretrain_backbone (item i = segment i's file)."""
    paths = segments["audio_path"]
    return StreamedClips(ClipDataset(paths, audio, seed, SALT_PRE), ClipDataset(paths, audio, seed, SALT_PRE_VAL),
                         front, num_workers)


def multi_hot(segments: pd.DataFrame, classes: pd.DataFrame) -> np.ndarray:
    col = {m: j for j, m in enumerate(classes["mid"])}
    y = np.zeros((len(segments), len(col)), dtype=np.float32)
    for i, labels in enumerate(segments["labels"]):
        y[i, [col[m] for m in labels if m in col]] = 1.0
    return y


# --- the inputs of the shared stages --------------------------------------------------------------


def audioset_pretraining(cfg: ExperimentConfig, data: AudioSetData) -> Pretraining:
    """Supervised CNN14 pretraining (multi-label BCE, as PANNs) on the clean AudioSet segments, streamed; the
    validation segments are a seeded share of them, capped at `paper.pretrain_max_val`."""
    seg, settings = data.segments, cfg.paper
    tr, va = split_validation(len(seg), cfg.pretrain.val_fraction, cfg.seed)
    if settings.pretrain_max_val is not None and len(va) > settings.pretrain_max_val:
        va = np.sort(np.random.default_rng([cfg.seed, 98]).choice(va, settings.pretrain_max_val, replace=False))
    dropped = data.n_segments - len(seg)

    def evidence(out: Path) -> dict:
        part = np.full(len(seg), "unused", dtype=object)
        part[tr], part[va] = "train", "val"
        seg.assign(part=part, labels=seg["labels"].map(",".join)).drop(columns=["audio_exists"]) \
            .to_csv(out / "segments.csv", index=False)  # evidence: exactly what the network saw
        data.classes.to_csv(out / "classes.csv", index=False)
        data.removed.assign(matched_words=data.removed["matched_words"].map(",".join)) \
            .to_csv(out / "removed_classes.csv", index=False)
        return {"n_segments": int(len(tr)), "n_val_segments": int(len(va)), "n_removed_classes": len(data.removed),
                "n_segments_dropped": dropped, "n_missing_audio": data.n_missing_audio}

    return Pretraining(
        len(data.classes),
        lambda world: streamed_audioset(seg, cfg.audio, cfg.seed, LogMel(cfg.audio).to(world.device),
                                        cfg.run.num_workers),
        multi_hot(seg, data.classes), tr, va, "bce",
        trained_on=f"AudioSet, {len(data.classes)} classes (every class an ESC-50 class name reaches removed), here",
        describe=lambda history: (f"supervised on {len(tr)} AudioSet segments ({dropped} with a removed label "
                                  f"dropped), {len(data.classes)} classes, best val loss "
                                  f"{min(h['val_loss'] for h in history):.4f}"),
        evidence=evidence)


@dataclass(frozen=True)
class PaperInputs:
    """The paper profile's inputs of pipeline.py's stages: ESC-50 for the features and the zero-shot evaluation
    (all 50 classes, `paper.eval_folds`), the backbones' sources (a weights file such as the PANNs checkpoint;
    train:audioset_clean = AudioSet pretraining; random), the streamed caption pairs. No ESC-50 audio or label
    is trained on: BatchNorm statistics are never re-estimated on ESC-50 clips."""

    cfg: ExperimentConfig
    meta: pd.DataFrame
    fingerprint: str
    precision: str
    pair_set: PairSet | None  # None: the step stops before the CLAP runs
    audioset: AudioSetData | None  # None: no level trains here

    split = paper_split()

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """Config checks that need no data, before anything is written."""
        unknown = [t for t in cfg.trainings if t not in PAPER_PROFILE_TRAININGS]
        if unknown:
            raise ValueError(f"trainings {unknown} are not defined for the paper profile; allowed: "
                             f"{', '.join(PAPER_PROFILE_TRAININGS)}")
        if cfg.reference_weights:
            raise ValueError(f"reference_weights {list(cfg.reference_weights)}: audit references are trained on "
                             "ESC-50 (the ESC-50-sized profiles); the paper profile trains on no ESC-50 audio")

    @staticmethod
    def device(cfg: ExperimentConfig) -> str:
        return cfg.run.device

    @classmethod
    def read(cls, cfg: ExperimentConfig, esc50_root, data_root, roots: Mapping | None, world: World, log,
             with_pairs: bool = True) -> PaperInputs:
        """Every input the requested stages need, checked before any training starts (missing -> clear error).

        roots: data set name -> folder (clotho, audiocaps, fsd50k, macs, esc50, audioset), default
        datasets.default_roots(data_root); `esc50_root` overrides roots["esc50"]."""
        roots = dict(default_roots(data_root) if roots is None else roots)
        if esc50_root is not None:
            roots["esc50"] = esc50_root
        spec = backbone_spec(cfg.backbone)
        sources = [cfg.weights.source(p) for p in cfg.pretrainings]
        for src in sources:
            if src.file is not None:
                spec.weights_file(src.file)  # the PANNs checkpoint (or another file) must be there
        meta = read_esc50_meta(locate_esc50(roots.get("esc50")))
        audioset = read_clean_audioset(roots.get("audioset"), cfg.paper) \
            if any(s.train is not None for s in sources) else None
        pair_set = read_pairs(roots, cfg.paper, cfg.seed, cfg.clap.val_fraction) if with_pairs else None
        precision = resolve_precision(cfg.run.precision, world.device)
        log(f"paper inputs: precision={precision}, ESC-50 folds {list(cfg.paper.eval_folds)} scored")
        if audioset is not None:
            log(f"AudioSet: {len(audioset.segments)} clean segments of {audioset.n_segments}, "
                f"{len(audioset.removed)} classes removed, {audioset.n_missing_audio} without audio")
        if pair_set is not None:
            log(f"training pairs: {len(pair_set.train)} + {len(pair_set.val)} validation "
                f"({pair_set.n_missing_audio} dropped for missing audio)")
        return cls(cfg, meta, log.timed("fingerprint", lambda: data_fingerprint(meta)), precision, pair_set, audioset)

    @property
    def eval_folds(self) -> tuple[int, ...]:
        return tuple(self.cfg.paper.eval_folds)

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.cfg.pretrainings)

    def backbone(self, level: str, features, ok: np.ndarray) -> BackboneInput:
        cfg = self.cfg
        text, src = getattr(cfg.weights, level), cfg.weights.source(level)
        payload = {"level": level, "source": text, "features": features.key, "backbone": cfg.backbone,
                   "width": cfg.width, "n_mels": cfg.audio.n_mels}
        if src.file is not None:
            path = backbone_spec(cfg.backbone).weights_file(src.file)
            payload["checkpoint"] = {"name": path.name, "blake2b": _file_digest(path)}
        if src.file is None or src.train is not None:
            payload["seed"] = cfg.seed  # random init and training here are seeded
        pretraining = None
        if src.train is not None:
            data = self.audioset
            payload |= {"audioset": data.fingerprint, "removed_mids": sorted(data.removed["mid"]),
                        "classes": list(data.classes["mid"]), "audio": asdict(cfg.audio),
                        "dropout": [cfg.cnn_dropout, cfg.cnn_fc_dropout], "pretrain": asdict(cfg.pretrain),
                        "max_val": cfg.paper.pretrain_max_val, "precision": self.precision}
            pretraining = audioset_pretraining(cfg, data)
        batchnorm = ("as trained on AudioSet" if src.train is not None else
                     "published statistics" if src.file is not None else "initial (random init)")
        return BackboneInput(level, text, src, payload, pretraining, np.zeros(0, dtype=int), batchnorm)

    def pairs(self, training: str, features, ok: np.ndarray) -> TrainingPairs:
        cfg = self.cfg
        train_df, val_df, info = pairs_for_training(self.pair_set, training, set(self.meta["src_file"].astype(str)))

        def evidence(out: Path) -> None:  # exactly which captions were trained on
            train_df.to_csv(out / "pairs_train.csv", index=False)
            val_df.to_csv(out / "pairs_val.csv", index=False)
        return TrainingPairs(
            self.pair_set.fingerprint, info, {"n_missing_audio": self.pair_set.n_missing_audio},
            lambda world, bb, text: streamed_pairs(train_df, val_df, cfg.audio, cfg.seed,
                                                   LogMel(cfg.audio).to(world.device), cfg.run.num_workers),
            evidence=evidence)

    def text_captions(self, pairs, ok: np.ndarray) -> None:
        return None  # streamed pairs: the text backbone encodes each batch's captions (no text stage)

    def clap_payload(self, pretraining: str, training: str, features, backbone, pairs: TrainingPairs) -> dict:
        return {"features": features.key, "backbone": backbone.key, "pretraining": pretraining,
                "training": training, "config": paper_payload(self.cfg), "pairs": pairs.fingerprint,
                "eval_folds": list(self.eval_folds), "precision": self.precision}

    def grid_payload(self, runs: dict[str, str], backbones: dict[str, str]) -> dict:
        return {"config": config_payload(self.cfg), "target": "all 50 classes", "runs": runs,
                "backbones": backbones, "stats": STATS_VERSION}
