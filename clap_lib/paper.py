"""The paper profile: the 2 x 3 grid on the paper's real training data, at the paper's scale.

What differs from the ESC-50-sized profiles (pipeline.py), all from the paper / public CLAP recipe:

* CLAP training data = the union of the Clotho, AudioCaps, FSD50K and MACS training splits
  (:func:`clap_lib.datasets.paper_training_set`); 20 % of the audio files (seeded, all captions of a file on
  one side) are the validation pairs. "clean" = the pairs whose caption names no word of any of the 50 ESC-50
  class names (:func:`clap_lib.datasets.clean_pairs`), applied to training and validation pairs alike.
* Audio is streamed from the files: per (seed, epoch, pair) a seeded random `clip_seconds` (5 s) segment,
  resampled to `cfg.audio.sample_rate` (44.1 kHz), zero-padded, zero mean / unit variance; the log-mel is
  computed on the training device. A resumed run draws exactly the segments and batches of an uninterrupted one.
* Audio pretraining: dirty = the official PANNs CNN14 checkpoint (AudioSet, every class); clean = supervised
  CNN14 pretraining (multi-label BCE, as PANNs) on the AudioSet segments left after dropping every segment
  with a label whose name the leakage filter removes (:func:`clap_lib.datasets.audioset_classes_removed`);
  the head covers the kept classes only; none = random init.
* Evaluation: zero-shot on ESC-50 with all 50 classes as candidates (no ESC-50 audio or label is trained on),
  on the clips of `PaperSettings.eval_folds` (default: all 2000 clips, as public CLAP).
* Training runs on `device` ("cpu", "cuda", "cuda:0", "auto"), with mixed precision on CUDA (bf16, or fp16
  with loss scaling), and data-parallel under `torchrun` (:mod:`clap_lib.distributed`). The loops are the
  lab's (:func:`clap_lib.training.train_clap`, :func:`clap_lib.training.pretrain_backbone`); this module only
  builds their streamed sources (:mod:`clap_lib.pair_sources`).

Stages and their cache keys follow pipeline.py (cache.run_stage): features (ESC-50 log-mels), pretrain/<key>
(dirty: the checkpoint's digest; clean: the AudioSet fingerprint), clap/<key> (pairs fingerprint = hash of
the pairs table + every audio file's size and mtime), grid/<key>. The outputs have the lab layout
(metrics.json, embeddings.npz, tsne.npz, history.json, results.csv, ...) so clap_lib.report reads them.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .audio import LogMel
from .cache import Stage, cache_key, run_stage
from .captions import prompt_for
from .esc50 import ClassSplit, data_fingerprint, locate_esc50, read_esc50_meta, split_validation
from .datasets import (AUDIOSET_SPLITS, LANDING_PAGES, audioset_classes_removed,
                       clean_audioset_segments, default_roots, filter_pairs, paper_training_set,
                       read_audioset_class_labels, read_audioset_segments, split_pairs_validation)
from .distributed import World, init_world
from .backbones import spec as backbone_spec
from .backbones.cnn14 import load_panns_checkpoint, require_panns_checkpoint
from .config import AUDIOSET_PRETRAIN_SPLITS as PRETRAIN_SPLITS
from .config import AudioConfig, ExperimentConfig, PaperSettings, RunOptions, config_payload
from .evaluation import features_stage as esc50_features_stage
from .evaluation import run_metrics, summarise, tsne_2d
from .results import GridResult, RunLog, load_grid, relative
from .text import build_text_encoder
from .esc50 import ESC50_CLASSES
from .io import atomic_json, atomic_npz, atomic_torch_save
from .levels import PAPER_TRAININGS
from .models import Clap
from .pair_sources import ClipDataset, StreamedClips, StreamedPairs, random_segment
from .training import _cpu_state, autocast, pretrain_backbone, resolve_precision, train_clap

__all__ = ["PaperSettings", "RunOptions", "PaperStages", "PairSet", "AudioSetData", "ClipDataset",
           "run_paper_grid", "run_paper_stages", "read_pairs", "pairs_for_training", "read_clean_audioset",
           "streamed_pairs", "streamed_audioset", "random_segment", "autocast", "resolve_precision", "embed_esc50",
           "paper_split", "require_panns_checkpoint"]

# salts keep the random streams of the different loops independent (see distributed.seed_torch)
SALT_CLAP, SALT_CLAP_VAL, SALT_PRE, SALT_PRE_VAL = 11, 12, 13, 14
STATS_VERSION = "2"  # as pipeline.STATS_VERSION: the grid summary is evaluation.summarise


def paper_split() -> ClassSplit:
    """The paper's zero-shot task: every ESC-50 class is a target class; there are no background classes."""
    return ClassSplit(tuple(ESC50_CLASSES), ())


def _all_classes(cfg: ExperimentConfig) -> ExperimentConfig:
    """The paper profile's split is every ESC-50 class (ExperimentConfig.split); other profiles are refused."""
    if cfg.profile != "paper":
        raise ValueError(f"the paper pipeline needs profile 'paper', got {cfg.profile!r}")
    return cfg


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


def table_fingerprint(df: pd.DataFrame, columns: Sequence[str], path_column: str = "audio_path") -> str:
    """Hash of the table's `columns` and of the size and mtime of every file in `path_column`: a changed
    caption, split or audio file gives a new key (content hashes of ~100k audio files would take hours)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(df[list(columns)].astype(str).to_csv(index=False).encode())
    for p in sorted(set(df[path_column])):
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


@dataclass(frozen=True)
class PairSet:
    """The (audio, caption) pairs of the paper training set, split into training / validation (before cleaning)."""

    train: pd.DataFrame
    val: pd.DataFrame
    fingerprint: str
    n_missing_audio: int  # pairs dropped because their audio file is absent (allow_missing_audio only)


def _with_missing_hint(e: FileNotFoundError) -> FileNotFoundError:
    if "audio files are missing" in str(e):
        return FileNotFoundError(f"{e} To train on the files present instead, set "
                                 "`--set paper.allow_missing_audio=true`.")
    return e


def read_pairs(roots: Mapping[str, str | Path | None], settings: PaperSettings, seed: int,
               val_fraction: float) -> PairSet:
    """The paper training set from `roots` and its seeded validation split (by audio file)."""
    try:
        pairs = paper_training_set(roots, require_audio=not settings.allow_missing_audio,
                                   datasets=settings.caption_datasets)
    except FileNotFoundError as e:
        raise _with_missing_hint(e) from e
    missing = ~pairs["audio_exists"].to_numpy(bool)
    pairs = pairs[~missing].reset_index(drop=True)
    if pairs.empty:
        raise FileNotFoundError("the paper training set has no pair with audio present under "
                                f"{ {d: str(roots.get(d)) for d in settings.caption_datasets} }")
    fingerprint = table_fingerprint(pairs, ["dataset", "split", "audio_id", "audio_path", "caption"])
    train, val = split_pairs_validation(pairs, val_fraction, seed)
    return PairSet(train, val, fingerprint, int(missing.sum()))


def pairs_for_training(pairs: PairSet, kind: str, esc50_sources: set[str] = frozenset()
                       ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, val, info) for CLAP training data `kind`: dirty = all pairs, clean = the leakage filter with all 50
    ESC-50 class names applied to training and validation pairs.

    info["n_target_clip_pairs"] counts residual audio leakage that no caption filter removes: pairs whose audio
    is a Freesound recording that an ESC-50 clip was cut from (FSD50K file names are Freesound ids, ESC-50's
    `src_file` too; Clotho, also from Freesound, has no ids in its file names and is not counted).
    """
    if kind not in PAPER_TRAININGS:  # "strict" (the ontology-expanded filter) is defined for the lab's split only
        raise ValueError(f"CLAP training data {kind!r} is not defined for the paper profile; allowed: "
                         f"{', '.join(PAPER_TRAININGS)}")
    both = pd.concat([pairs.train.assign(part="train"), pairs.val.assign(part="val")], ignore_index=True)
    info: dict = {"n_pairs_dirty": len(both)}
    if kind == "clean":
        res = filter_pairs(both, ESC50_CLASSES)
        both = both[res.keep].reset_index(drop=True)
        info["removed_per_word"] = res.removed_per_word
    train, val = (both[both["part"] == p].drop(columns="part").reset_index(drop=True) for p in ("train", "val"))
    info.update({"n_pairs": len(both), "n_train_pairs": len(train), "n_val_pairs": len(val),
                 "n_target_clip_pairs": int(((both["dataset"] == "fsd50k")
                                             & both["audio_id"].astype(str).isin(esc50_sources)).sum())})
    if val.empty:
        raise ValueError(f"no validation pairs are left for CLAP training data {kind!r} "
                         f"({len(pairs.val)} before cleaning): early stopping needs some; use more data")
    return train, val, info


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


# --- models --------------------------------------------------------------------------------------


def build_model(cfg: ExperimentConfig, backbone: dict | None) -> Clap:
    """CLAP with the pretrained text backbone and CNN14 from `backbone` (a state dict) or random init (seeded)."""
    text = build_text_encoder(cfg)
    spec = backbone_spec(cfg.backbone)
    torch.manual_seed(cfg.seed)  # after the (cached) text load, so the init never depends on what ran before
    audio = spec.from_state(cfg, backbone) if backbone is not None else spec.random_init(cfg, len(ESC50_CLASSES),
                                                                                       cfg.seed)
    return Clap(audio, text, cfg.d_embed)


# --- clean audio pretraining on AudioSet ---------------------------------------------------------


def multi_hot(segments: pd.DataFrame, classes: pd.DataFrame) -> np.ndarray:
    col = {m: j for j, m in enumerate(classes["mid"])}
    y = np.zeros((len(segments), len(col)), dtype=np.float32)
    for i, labels in enumerate(segments["labels"]):
        y[i, [col[m] for m in labels if m in col]] = 1.0
    return y


# --- zero-shot evaluation on ESC-50 ---------------------------------------------------------------


@torch.no_grad()
def embed_esc50(model: Clap, feats: Stage, meta: pd.DataFrame, folds: Sequence[int], device: torch.device,
                precision: str, batch: int = 128) -> dict[str, np.ndarray]:
    """x_a, E_a of every usable clip of `folds`; x_t, E_t of the prompt of each of the 50 labels (as
    evaluation.embed_eval, for CPU-sized runs)."""
    model.eval()
    logmels, ok = np.load(feats.dir / "logmels.npy", mmap_mode="r"), np.load(feats.dir / "ok.npy")
    clips = np.flatnonzero(meta["fold"].isin(list(folds)).to_numpy() & ok)
    x_a, E_a = [], []
    for i in range(0, len(clips), batch):
        X = torch.from_numpy(np.asarray(logmels[clips[i : i + batch]])).to(device)
        with autocast(device, precision):
            xa = model.audio(X)
            E_a.append(model.embed_audio(xa).float().cpu()); x_a.append(xa.float().cpu())
    labels = list(ESC50_CLASSES)
    tokens = {k: v.to(device) for k, v in model.text.tokenize([prompt_for(c) for c in labels]).items()}
    with autocast(device, precision):
        x_t = model.text(tokens)
        E_t = model.embed_text(x_t).float().cpu()
    return {"x_a": torch.cat(x_a).numpy(), "E_a": torch.cat(E_a).numpy(), "x_t": x_t.float().cpu().numpy(),
            "E_t": E_t.numpy(), "clip_target": meta["target"].to_numpy()[clips],
            "clip_file": meta["filename"].to_numpy()[clips].astype(str), "labels": np.array(labels)}


# --- stages --------------------------------------------------------------------------------------


class _Silent:
    """The log of non-main ranks: nothing is printed twice."""

    timings: list = []

    def __call__(self, msg: str) -> None:
        pass

    def timed(self, name: str, fn):
        return fn()


def _stage(world: World, root: Path, name: str, payload: dict, log, write: Callable,
           train: Callable[[Path], object] | None = None) -> Stage:
    """cache.run_stage on rank 0. `train(work_dir)` is the collective part (every rank runs it when the stage is
    not cached); `write(out, work, trained)` saves the outputs, on rank 0 only."""
    stage = Stage(Path(root), name, cache_key(payload))
    # ranks must agree on whether the collective part runs (single process: run_stage decides alone)
    cached = world.broadcast_object(stage.is_valid() if world.is_main else None) if world.distributed else None
    if world.is_main:
        run_stage(root, name, payload, lambda out, work: write(out, work, train(work) if train else None), log)
    elif not cached and train is not None:
        train(stage.work_dir)
    world.barrier()
    return stage


def dirty_pretrain_stage(root: Path, cfg: ExperimentConfig, checkpoint: Path, world: World, log) -> Stage:
    """The official PANNs CNN14 weights as a stage (backbone.pt in the layout the clap stage loads)."""
    payload = {"kind": "dirty", "source": "panns", "checkpoint": {"name": checkpoint.name,
                                                                  "blake2b": _file_digest(checkpoint)},
               "width": cfg.width, "n_mels": cfg.audio.n_mels}

    def write(out: Path, work: Path, _) -> dict:
        model = load_panns_checkpoint(checkpoint, width=cfg.width, n_mels=cfg.audio.n_mels)
        atomic_torch_save(model.state_dict(), out / "backbone.pt")
        atomic_json([], out / "history.json")  # nothing was trained here
        n = int(model.fc_audioset.out_features)
        log(f"pretrain[dirty]: PANNs checkpoint {checkpoint} ({n} AudioSet classes)")
        return {"n_classes": n, "source": str(checkpoint)}
    return _stage(world, root, "pretrain", payload, log, write)


def clean_pretrain_stage(root: Path, cfg: ExperimentConfig, data: AudioSetData, settings: PaperSettings,
                         world: World, opts: RunOptions, precision: str, log) -> Stage:
    """Supervised CNN14 pretraining on the clean AudioSet segments (no segment with a removed label)."""
    payload = {"kind": "clean", "source": "audioset", "audioset": data.fingerprint,
               "removed_mids": sorted(data.removed["mid"]), "classes": list(data.classes["mid"]),
               "width": cfg.width, "audio": asdict(cfg.audio), "dropout": [cfg.cnn_dropout, cfg.cnn_fc_dropout],
               "pretrain": asdict(cfg.pretrain), "seed": cfg.seed, "max_val": settings.pretrain_max_val,
               "precision": precision}
    seg = data.segments
    tr, va = split_validation(len(seg), cfg.pretrain.val_fraction, cfg.seed)
    if settings.pretrain_max_val is not None and len(va) > settings.pretrain_max_val:
        va = np.sort(np.random.default_rng([cfg.seed, 98]).choice(va, settings.pretrain_max_val, replace=False))

    def train(work: Path):
        # the trainer's wrap_model gives it global-batch batch norm and rank 0's initial weights under DDP
        model = backbone_spec(cfg.backbone).random_init(cfg, len(data.classes), cfg.seed).to(world.device)
        source = streamed_audioset(seg, cfg.audio, cfg.seed, LogMel(cfg.audio).to(world.device), opts.num_workers)
        return pretrain_backbone(model, source, multi_hot(seg, data.classes), tr, va, cfg.pretrain, cfg.seed,
                                 work / "resume.pt", opts.progress, loss="bce", world=world, precision=precision,
                                 log=log)

    def write(out: Path, work: Path, trained) -> dict:
        state, history = trained
        atomic_torch_save(state, out / "backbone.pt")
        atomic_json(history, out / "history.json")
        part = np.full(len(seg), "unused", dtype=object)
        part[tr], part[va] = "train", "val"
        seg.assign(part=part, labels=seg["labels"].map(",".join)).drop(columns=["audio_exists"]) \
            .to_csv(out / "segments.csv", index=False)  # evidence: exactly what the network saw
        data.classes.to_csv(out / "classes.csv", index=False)
        data.removed.assign(matched_words=data.removed["matched_words"].map(",".join)) \
            .to_csv(out / "removed_classes.csv", index=False)
        log(f"pretrain[clean]: {len(tr)} AudioSet segments ({data.n_segments - len(seg)} with a removed label "
            f"dropped), {len(data.classes)} classes, best val loss {min(h['val_loss'] for h in history):.4f}")
        return {"n_segments": int(len(tr)), "n_val_segments": int(len(va)), "n_classes": len(data.classes),
                "n_removed_classes": len(data.removed), "n_segments_dropped": data.n_segments - len(seg),
                "n_missing_audio": data.n_missing_audio, "world_size": world.world_size}
    return _stage(world, root, "pretrain", payload, log, write, train)


def clap_stage_paper(root: Path, cfg: ExperimentConfig, settings: PaperSettings, feats: Stage, meta: pd.DataFrame,
                     pairs: PairSet, pre: Stage | None, pretraining: str, training: str, world: World,
                     opts: RunOptions, precision: str, log) -> Stage:
    payload = {"features": feats.key, "pretrain": pre.key if pre else None, "pretraining": pretraining,
               "training": training, "config": paper_payload(cfg), "pairs": pairs.fingerprint,
               "eval_folds": list(settings.eval_folds), "precision": precision}
    esc50_sources = set(meta["src_file"].astype(str))
    train_df, val_df, info = pairs_for_training(pairs, training, esc50_sources)

    def train(work: Path) -> Clap:
        backbone = torch.load(pre.dir / "backbone.pt", map_location="cpu", weights_only=True) if pre else None
        model = build_model(cfg, backbone).to(world.device)  # DDP and batch norm: the trainer's wrap_model
        source = streamed_pairs(train_df, val_df, cfg.audio, cfg.seed, LogMel(cfg.audio).to(world.device),
                                opts.num_workers)
        history = train_clap(model, source, cfg.clap, cfg.seed, work / "resume.pt", world=world, precision=precision,
                             progress=opts.progress, log=log)
        return model, history

    def write(out: Path, work: Path, trained: tuple[Clap, list[dict]]) -> dict:
        model, history = trained
        atomic_torch_save(_cpu_state(model), out / "checkpoint.pt")
        atomic_json(history, out / "history.json")
        train_df.to_csv(out / "pairs_train.csv", index=False)  # evidence: exactly which captions were trained on
        val_df.to_csv(out / "pairs_val.csv", index=False)
        emb = embed_esc50(model, feats, meta, settings.eval_folds, world.device, precision)
        atomic_npz(out / "embeddings.npz", **emb)
        atomic_npz(out / "tsne.npz", **{k: tsne_2d(emb[k], cfg.seed) for k in ("x_a", "E_a", "x_t", "E_t")})
        m = run_metrics(emb, paper_split(), cfg)
        m.update(info)
        ok = np.load(feats.dir / "ok.npy")
        m.update({"pretraining": pretraining, "training": training, "n_skipped_clips": int((~ok).sum()),
                  "n_missing_audio": pairs.n_missing_audio})
        atomic_json(m, out / "metrics.json")
        log(f"clap[{pretraining},{training}]: {info['n_train_pairs']} training pairs, zero-shot accuracy "
            f"{m['accuracy']:.3f} on {m['n_eval_clips']} ESC-50 clips")
        return {"n_pairs": info["n_pairs"], "world_size": world.world_size, "precision": precision}
    return _stage(world, root, "clap", payload, log, write, train)


@dataclass(frozen=True)
class PaperStages:
    features: Stage
    pretrain: dict[str, Stage]
    clap: dict[tuple[str, str], Stage]


@dataclass(frozen=True)
class _Inputs:
    meta: pd.DataFrame
    esc50_fingerprint: str
    panns: Path | None
    audioset: AudioSetData | None
    pairs: PairSet | None


def _read_inputs(cfg: ExperimentConfig, roots: Mapping, panns_checkpoint, audioset_root, settings: PaperSettings,
                 with_pairs: bool, log) -> _Inputs:
    """Every input the requested stages need, checked before any training starts (missing -> clear error)."""
    panns = require_panns_checkpoint(panns_checkpoint) if "dirty" in cfg.pretrainings else None
    meta = read_esc50_meta(locate_esc50(roots.get("esc50")))
    audioset = read_clean_audioset(audioset_root or roots.get("audioset"), settings) \
        if "clean" in cfg.pretrainings else None
    pairs = read_pairs(roots, settings, cfg.seed, cfg.clap.val_fraction) if with_pairs else None
    if audioset is not None:
        log(f"AudioSet: {len(audioset.segments)} clean segments of {audioset.n_segments}, "
            f"{len(audioset.removed)} classes removed, {audioset.n_missing_audio} without audio")
    if pairs is not None:
        log(f"training pairs: {len(pairs.train)} + {len(pairs.val)} validation "
            f"({pairs.n_missing_audio} dropped for missing audio)")
    return _Inputs(meta, log.timed("fingerprint", lambda: data_fingerprint(meta)), panns, audioset, pairs)


def _setup(cfg: ExperimentConfig, world: World | None, artifacts):
    if cfg.profile != "paper":
        raise ValueError(f"run_paper_grid runs profile 'paper', got {cfg.profile!r} (use pipeline.run_grid)")
    cfg.validate()
    unknown = [t for t in cfg.trainings if t not in PAPER_TRAININGS]
    if unknown:  # before any stage runs
        raise ValueError(f"trainings {unknown} are not defined for the paper profile; allowed: "
                         f"{', '.join(PAPER_TRAININGS)}")
    world = world or init_world(cfg.run.device)
    sizes = [("clap.batch_size", cfg.clap.batch_size)]
    if "clean" in cfg.pretrainings:
        sizes.append(("pretrain.batch_size", cfg.pretrain.batch_size))
    for name, size in sizes:
        if size % world.world_size:
            raise ValueError(f"{name}={size} is not a multiple of the {world.world_size} processes")
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    return world, Path(artifacts)


def run_paper_stages(cfg: ExperimentConfig, roots: Mapping[str, str | Path | None], artifacts: str | Path = "artifacts",
                     log=None, *, clap: bool = True, world: World | None = None, quiet: bool = False) -> PaperStages:
    """The stages of the grid without the summary: ESC-50 log-mels, the pretrainings of cfg.pretrainings and,
    with `clap`, one CLAP run per combination (cached stages are reused)."""
    world, root = _setup(cfg, world, artifacts)
    settings, options = cfg.paper, cfg.run
    log = _logger(log, root, quiet, world)
    precision = resolve_precision(options.precision, world.device)
    log(f"paper grid: seed={cfg.seed} combos={len(cfg.pretrainings) * len(cfg.trainings)} device={world.device} "
        f"precision={precision} processes={world.world_size}")
    dirty_file = cfg.weights.source("dirty").file
    panns = None if dirty_file in (None, "panns") else dirty_file
    inp = _read_inputs(cfg, roots, panns, None, settings, clap, log)
    feats = log.timed("features", lambda: features_stage(root, inp, cfg.audio, world, options.progress, log))
    pre: dict[str, Stage] = {}
    if inp.panns is not None:
        pre["dirty"] = log.timed("pretrain[dirty]", lambda: dirty_pretrain_stage(root, cfg, inp.panns, world, log))
    if inp.audioset is not None:
        pre["clean"] = log.timed("pretrain[clean]", lambda: clean_pretrain_stage(
            root, cfg, inp.audioset, settings, world, options, precision, log))
    runs: dict[tuple[str, str], Stage] = {}
    if clap:
        for p in cfg.pretrainings:
            for t in cfg.trainings:
                runs[(p, t)] = log.timed(f"clap[{p},{t}]", lambda p=p, t=t: clap_stage_paper(
                    root, cfg, settings, feats, inp.meta, inp.pairs, pre.get(p), p, t, world, options, precision, log))
    return PaperStages(feats, pre, runs)


def features_stage(root: Path, inp: _Inputs, audio: AudioConfig, world: World, progress: bool, log) -> Stage:
    """evaluation.features_stage (log-mels of every ESC-50 clip at `audio`), computed on rank 0 only."""
    stage = esc50_features_stage(root, inp.meta, inp.esc50_fingerprint, audio, progress, log) \
        if world.is_main else None
    key = world.broadcast_object(stage.key if stage else None)
    world.barrier()
    return stage or Stage(root, "features", key)


def summarise_paper(out: Path, root: Path, stages: PaperStages, cfg: ExperimentConfig) -> dict:
    """evaluation.summarise with all 50 classes as targets (results.csv, correlations.json, stages.json), and a
    config.json that records them."""
    info = summarise(out, root, stages.clap, stages.pretrain, _all_classes(cfg))
    split = paper_split()
    atomic_json({"config": config_payload(cfg), "target_classes": list(split.target),
                 "background_classes": list(split.background)}, out / "config.json")
    return info


def run_paper_grid(cfg: ExperimentConfig, esc50_root: str | Path | None = None, artifacts: str | Path = "artifacts",
                   log=None, *, quiet: bool = False, update_latest: bool = True, data_root: str | Path | None = None,
                   roots: Mapping[str, str | Path | None] | None = None, world: World | None = None,
                   step: str = "grid") -> GridResult | None:
    """Run (or load from the cache) the paper-profile grid; returns it (on rank 0; None on the other ranks, and
    for `step` "prepare" (features + pretrainings) or "clap" (+ the CLAP runs), which stop before the summary).

    roots: data set name -> folder (clotho, audiocaps, fsd50k, macs, esc50, audioset), default
    datasets.default_roots(data_root). The PANNs checkpoint comes from cfg.weights.dirty ("file:panns":
    $CLAP_PANNS, then <shared data>/panns/). Under torchrun every rank calls this; rank 0 writes the artifacts.
    """
    roots = dict(default_roots(data_root) if roots is None else roots)
    if esc50_root is not None:
        roots["esc50"] = esc50_root
    world, root = _setup(cfg, world, artifacts)
    log = _logger(log, root, quiet, world)
    stages = run_paper_stages(cfg, roots, root, log, world=world, quiet=quiet, clap=step != "prepare")
    if step != "grid":
        return None
    payload = {"config": config_payload(cfg), "target": "all 50 classes",
               "runs": {f"{p}/{t}": s.key for (p, t), s in stages.clap.items()},
               "pretrain": {k: s.key for k, s in stages.pretrain.items()}, "stats": STATS_VERSION}
    grid = _stage(world, root, "grid", payload, log, lambda out, work, _: summarise_paper(out, root, stages, cfg))
    if not world.is_main:
        return None
    if update_latest:
        atomic_json({"grid": relative(root, grid.dir), "key": grid.key, "timings": log.timings}, root / "latest.json")
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return load_grid(grid.dir)


def _logger(log, root: Path, quiet: bool, world: World):
    """RunLog(<artifacts>/run.log) on rank 0 unless `log` is given (a plain callable gets `timed`); silent elsewhere."""
    if not world.is_main:
        return _Silent()
    if log is None:
        return RunLog(root / "run.log", quiet)
    return log if hasattr(log, "timed") else _Timed(log)


class _Timed:
    """Gives a plain callable logger RunLog's `timed` and `timings`."""

    def __init__(self, fn: Callable[[str], None]):
        self.fn, self.timings = fn, []

    def __call__(self, msg: str) -> None:
        self.fn(msg)

    def timed(self, name: str, fn):
        t0 = time.time()
        out = fn()
        self.timings.append({"stage": name, "seconds": round(time.time() - t0, 3)})
        return out
