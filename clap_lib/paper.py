"""The paper profile: the 2 x 3 grid on the paper's real training data, at the paper's scale.

What differs from the lab profile (experiment.py), all from the paper / public CLAP recipe:

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
  with loss scaling), and data-parallel under `torchrun` (:mod:`clap_lib.distributed`).

Stages and their cache keys follow experiment.py (cache.run_stage): features (ESC-50 log-mels), pretrain/<key>
(dirty: the checkpoint's digest; clean: the AudioSet fingerprint), clap/<key> (pairs fingerprint = hash of
the pairs table + every audio file's size and mtime), grid/<key>. The outputs have the lab layout
(metrics.json, embeddings.npz, tsne.npz, history.json, results.csv, ...) so clap_lib.report reads them.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import experiment
from .audio import AudioConfig, LogMel, fix_length, load_audio, normalise
from .cache import Stage, cache_key, run_stage
from .captions import prompt_for
from .esc50 import ClassSplit, data_fingerprint, locate_esc50, read_esc50_meta, split_validation
from .paths import shared_data_dir
from .datasets import (AUDIOSET_SPLITS, CAPTION_DATASETS, LANDING_PAGES, audioset_classes_removed,
                       clean_audioset_segments, default_roots, filter_pairs, paper_training_set,
                       read_audioset_class_labels, read_audioset_segments, split_pairs_validation)
from .distributed import (World, epoch_order, full_precision, global_batches, global_clip_loss, init_world, seed_torch,
                          shutdown, single_process, use_global_batchnorm)
from .experiment import DEFAULT_TEXT_MODEL, ExperimentConfig, GridResult, RunLog, new_cnn14
from .esc50 import ESC50_CLASSES
from .io import atomic_json, atomic_npz, atomic_torch_save
from .models import Clap, TextEncoder, clip_loss, default_text_model, load_panns_checkpoint
from .training import ClapTrainConfig, PretrainConfig, _check_finite, _load_resume, _record

__all__ = ["PaperSettings", "RunOptions", "PaperStages", "PairSet", "AudioSetData", "ClipDataset",
           "run_paper_grid", "run_paper_stages", "read_pairs", "pairs_for_training", "read_clean_audioset",
           "train_clap_streaming", "pretrain_audioset", "embed_esc50", "paper_split", "default_panns_checkpoint",
           "require_panns_checkpoint", "main"]

PANNS_FILE = "Cnn14_mAP=0.431.pth"
PANNS_ENV = "CLAP_PANNS"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
PRETRAIN_SPLITS = ("balanced_train", "unbalanced_train")  # AudioSet "eval" is never trained on
# salts keep the random streams of the different loops independent (see distributed.seed_torch)
SALT_CLAP, SALT_CLAP_VAL, SALT_PRE, SALT_PRE_VAL = 11, 12, 13, 14


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaperSettings:
    """Choices of the paper profile beyond ExperimentConfig that change results (part of the cache keys)."""

    eval_folds: tuple[int, ...] = (1, 2, 3, 4, 5)  # ESC-50 clips scored zero-shot (all: nothing of ESC-50 is trained)
    caption_datasets: tuple[str, ...] = CAPTION_DATASETS
    audioset_splits: tuple[str, ...] | None = None  # None: every present split of PRETRAIN_SPLITS
    # Real AudioCaps / AudioSet downloads always miss some YouTube videos: True trains on the files present
    # (the dropped count is reported); False (default) stops with the list of missing files.
    allow_missing_audio: bool = False
    pretrain_max_val: int | None = 10000  # AudioSet validation segments scored per pretraining epoch

    def validate(self) -> None:
        if not self.eval_folds or not set(self.eval_folds) <= {1, 2, 3, 4, 5}:
            raise ValueError(f"eval_folds must be a non-empty subset of 1..5, got {self.eval_folds!r}")
        unknown = [d for d in self.caption_datasets if d not in CAPTION_DATASETS]
        if unknown or not self.caption_datasets:
            raise ValueError(f"caption_datasets must be among {', '.join(CAPTION_DATASETS)}, "
                             f"got {self.caption_datasets!r}")
        if self.audioset_splits is not None and not set(self.audioset_splits) <= set(PRETRAIN_SPLITS):
            raise ValueError(f"audioset_splits must be among {', '.join(PRETRAIN_SPLITS)} (eval is never trained "
                             f"on), got {self.audioset_splits!r}")
        if self.pretrain_max_val is not None and self.pretrain_max_val < 1:
            raise ValueError(f"pretrain_max_val must be >= 1 or None, got {self.pretrain_max_val!r}")


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what: device, precision, data-loading workers, progress bars.

    Only the resolved precision enters the cache keys (bf16 training is a different computation); device,
    worker count and the number of processes do not.
    """

    device: str = "auto"
    precision: str = "auto"  # auto: bf16 on CUDA when supported, else fp16; always fp32 on CPU
    num_workers: int = 0
    progress: bool = True

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; allowed: {', '.join(PRECISIONS)}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """fp32 on CPU (autocast is for CUDA only here); on CUDA "auto" is bf16 where supported, else fp16."""
    if device.type != "cuda":
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def _scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    # loss scaling is needed for fp16 only (bf16 has fp32's exponent range)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def paper_split() -> ClassSplit:
    """The paper's zero-shot task: every ESC-50 class is a target class; there are no background classes."""
    return ClassSplit(tuple(ESC50_CLASSES), ())


def _all_classes(cfg: ExperimentConfig) -> ExperimentConfig:
    """The paper profile's split is every ESC-50 class (ExperimentConfig.split); other profiles are refused."""
    if cfg.profile != "paper":
        raise ValueError(f"the paper pipeline needs profile 'paper', got {cfg.profile!r}")
    return cfg


def paper_payload(cfg: ExperimentConfig) -> dict:
    """What one combination depends on: experiment.run_payload minus the lab's class-split fields."""
    d = experiment.run_payload(cfg)
    for k in ("split_seed", "per_category", "target_classes", "swap_split"):
        d.pop(k, None)
    return d


# --- inputs and their fingerprints ---------------------------------------------------------------


def default_panns_checkpoint() -> Path | None:
    """`$CLAP_PANNS`, else `<shared data>/panns/Cnn14_mAP=0.431.pth` (may not exist), else None."""
    if os.environ.get(PANNS_ENV):
        return Path(os.environ[PANNS_ENV])
    base = shared_data_dir()
    return base / "panns" / PANNS_FILE if base is not None else None


def require_panns_checkpoint(path: str | Path | None) -> Path:
    """The checkpoint path, or FileNotFoundError naming the missing file and how to get it."""
    if path is not None and Path(path).is_file():
        return Path(path)
    where = f"{path}" if path is not None else f"(none given, ${PANNS_ENV} unset, no shared data folder)"
    raise FileNotFoundError(
        f"PANNs checkpoint not found: {where}. Audio pretraining 'dirty' starts from the official CNN14 "
        f"weights {PANNS_FILE}: download them from {LANDING_PAGES['panns']} or with "
        f"`python -c \"from clap_lib.datasets import download; download('panns', 'DIR')\"` (needs internet), then "
        f"pass panns_checkpoint=DIR/{PANNS_FILE} (CLI: --panns-checkpoint, or set ${PANNS_ENV}); or leave 'dirty' "
        "out of cfg.pretrainings.")


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
                                 "PaperSettings(allow_missing_audio=True) (CLI: --allow-missing-audio).")
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
                                f"({LANDING_PAGES['audioset']}); pass audioset_root (CLI: --audioset) or set "
                                "$CLAP_AUDIOSET, or leave 'clean' out of cfg.pretrainings.")
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


# --- streaming audio -----------------------------------------------------------------------------


def random_segment(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed n-sample window of x (recipe: a random 5 s segment); zero-padded when x is shorter."""
    extra = len(x) - n
    return fix_length(x, n, int(rng.integers(0, extra + 1)) if extra > 0 else 0)


class ClipDataset(Dataset):
    """Waveforms of audio files, keyed by (epoch, item): the segment is seeded by (seed, salt, epoch, item), so
    every rank and every resumed run reads the same samples. Returns (normalised waveform, item)."""

    def __init__(self, paths: Sequence[str], audio: AudioConfig, seed: int, salt: int):
        self.paths, self.audio, self.seed, self.salt = list(map(str, paths)), audio, seed, salt

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, int]:
        epoch, i = key
        x = load_audio(self.paths[i], self.audio.sample_rate)
        rng = np.random.default_rng([self.seed, self.salt, epoch, i])
        return normalise(random_segment(x, self.audio.n_samples, rng)), i


def collate_clips(batch: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor | None, np.ndarray]:
    if not batch:  # an evaluation shard can be empty on some ranks
        return None, np.zeros(0, dtype=int)
    return torch.from_numpy(np.stack([w for w, _ in batch])), np.array([i for _, i in batch])


def clip_loader(data: ClipDataset, batches: Sequence[np.ndarray], epoch: int, opts: RunOptions,
                device: torch.device) -> DataLoader:
    """Batches (lists of item indices, already this rank's share) of `data` for `epoch`, in that order."""
    keyed = [[(epoch, int(i)) for i in b] for b in batches]
    return DataLoader(data, batch_sampler=keyed, collate_fn=collate_clips, num_workers=opts.num_workers,
                      pin_memory=device.type == "cuda")


def _to_device(waves: torch.Tensor, device: torch.device) -> torch.Tensor:
    return waves.to(device, non_blocking=True)


# --- models --------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _pretrained_text(name: str, max_tokens: int, vocab: int | None) -> TextEncoder:
    return TextEncoder(name, max_tokens, vocab)  # loaded once per process; every model gets a deep copy


def text_model_name(cfg: ExperimentConfig) -> str:
    return default_text_model() if cfg.text_model == DEFAULT_TEXT_MODEL else cfg.text_model


def build_model(cfg: ExperimentConfig, backbone: dict | None) -> Clap:
    """CLAP with the pretrained text backbone and CNN14 from `backbone` (a state dict) or random init (seeded)."""
    text = copy.deepcopy(_pretrained_text(text_model_name(cfg), cfg.text_max_tokens, cfg.expected_vocab_size))
    torch.manual_seed(cfg.seed)  # after the (cached) text load, so the init never depends on what ran before
    if backbone is not None:
        audio = new_cnn14(cfg, backbone["fc_audioset.weight"].shape[0])
        audio.load_state_dict(backbone)
    else:
        audio = new_cnn14(cfg, len(ESC50_CLASSES))
    return Clap(audio, text, cfg.d_embed)


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save(world: World, obj: dict, path: Path | None) -> None:
    if path is not None and world.is_main:
        atomic_torch_save(obj, path)


# --- clean audio pretraining on AudioSet ---------------------------------------------------------


def multi_hot(segments: pd.DataFrame, classes: pd.DataFrame) -> np.ndarray:
    col = {m: j for j, m in enumerate(classes["mid"])}
    y = np.zeros((len(segments), len(col)), dtype=np.float32)
    for i, labels in enumerate(segments["labels"]):
        y[i, [col[m] for m in labels if m in col]] = 1.0
    return y


def pretrain_audioset(model, front: LogMel, clips: ClipDataset, val_clips: ClipDataset, y: np.ndarray,
                      train_idx: np.ndarray, val_idx: np.ndarray, cfg: PretrainConfig, seed: int, ckpt: Path | None,
                      world: World, opts: RunOptions, precision: str) -> tuple[dict, list[dict]]:
    """Multi-label (BCE) CNN14 training as PANNs, on the global batch over ranks; resumable at epoch ends.

    Returns the state with the lowest validation loss and the history (epoch, train_loss, val_loss,
    val_map = macro average precision over classes with a validation positive, val_acc = share of segments
    whose top-scored class is one of their labels).
    """
    dev = world.device
    model.spec_augment = cfg.spec_augment
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    scaler = _scaler(dev, precision)
    Y = torch.from_numpy(y)
    history: list[dict] = []
    best: tuple[float, dict] = (math.inf, _cpu_state(model))
    start = 0
    if (state := _load_resume(ckpt)) is not None:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        scaler.load_state_dict(state["scaler"])
        history, best, start = state["history"], state["best"], state["epoch"] + 1
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        gen = seed_torch(seed, SALT_PRE, epoch, world.rank)
        model.train()
        order = train_idx[epoch_order(len(train_idx), seed, epoch, SALT_PRE)]
        batches = [world.shard(b) for b in global_batches(order, cfg.batch_size)]
        losses = []
        loader = clip_loader(clips, batches, epoch, opts, dev)
        for step, (waves, idx) in enumerate(tqdm(loader, desc=f"AudioSet pretraining epoch {epoch + 1}/{cfg.epochs}",
                                                 disable=not (opts.progress and world.is_main), leave=False)):
            with torch.no_grad():
                logmel = front(_to_device(waves, dev))
            with autocast(dev, precision):
                logits = model.classify(logmel, gen)
            logits = full_precision(logits)
            loss = F.binary_cross_entropy_with_logits(logits, Y[idx].to(dev, logits.dtype))
            value = world.all_mean(loss.item())
            _check_finite(value, "AudioSet pretraining", epoch, step)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            world.average_gradients(model.parameters())
            scaler.step(opt); scaler.update()
            losses.append(value)
        val = evaluate_multilabel(model, front, val_clips, y, val_idx, world, opts, precision)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                        **val, "seconds": time.time() - t0})
        if val["val_loss"] < best[0]:
            best = (val["val_loss"], _cpu_state(model))
        _save(world, {"model": _cpu_state(model), "opt": opt.state_dict(), "scaler": scaler.state_dict(),
                      "history": history, "best": best, "epoch": epoch}, ckpt)
    return best[1], history


@torch.no_grad()
def evaluate_multilabel(model, front: LogMel, clips: ClipDataset, y: np.ndarray, idx: np.ndarray, world: World,
                        opts: RunOptions, precision: str, batch: int = 64) -> dict:
    model.eval()
    dev = world.device
    mine, sizes = world.split(idx)
    logits = [torch.zeros((0, y.shape[1]), device=dev)]
    for waves, _ in clip_loader(clips, [mine[i : i + batch] for i in range(0, len(mine), batch)], 0, opts, dev):
        with autocast(dev, precision):
            logits.append(model.classify(front(_to_device(waves, dev))).float())  # scores: fp32 is plenty
    scores = world.gather_uneven(torch.cat(logits), sizes).cpu()
    target = torch.from_numpy(y[idx])
    loss = float(F.binary_cross_entropy_with_logits(scores, target))
    s, t = scores.numpy(), y[idx]
    has = t.sum(0) > 0
    from sklearn.metrics import average_precision_score

    m_ap = float(average_precision_score(t[:, has], s[:, has], average="macro")) if has.any() else float("nan")
    hit = float(t[np.arange(len(t)), s.argmax(1)].mean()) if len(t) else float("nan")
    return {"val_loss": loss, "val_map": m_ap, "val_acc": hit}


# --- CLAP training on streamed audio -------------------------------------------------------------


def clap_step_loss(model: Clap, front: LogMel, waves: torch.Tensor, captions: list[str], world: World,
                   precision: str, frozen: bool, clamp: float) -> torch.Tensor:
    """CLIP loss of the global batch of which (waves, captions) is this rank's share.

    frozen: backbones run without gradient (phase 1: only projectors and the temperature learn).
    """
    dev = world.device
    with torch.no_grad():
        logmel = front(_to_device(waves, dev))  # the front end is fixed and runs in fp32
    tokens = {k: v.to(dev) for k, v in model.text.tokenize(captions).items()}
    with autocast(dev, precision):
        with torch.no_grad() if frozen else contextlib.nullcontext():
            x_a, x_t = model.audio(logmel), model.text(tokens)
        E_a, E_t = model.embed_audio(x_a), model.embed_text(x_t)
    return global_clip_loss(E_a, E_t, model.logit_scale, clamp, world)


def _clap_epoch(model: Clap, front: LogMel, data: ClipDataset, captions: list[str], key: int, seed: int,
                cfg: ClapTrainConfig, world: World, opts: RunOptions, precision: str, opt, scaler, params: list,
                frozen: bool, fraction: float, desc: str, on_step: Callable[[dict], None] | None) -> list[float]:
    batches = global_batches(epoch_order(len(data), seed, key, SALT_CLAP), cfg.batch_size, fraction)
    if not batches:
        raise ValueError(f"{len(data)} training pairs do not fill one batch of {cfg.batch_size}: lower "
                         "clap.batch_size (the last incomplete batch of an epoch is dropped)")
    losses = []
    loader = clip_loader(data, [world.shard(b) for b in batches], key, opts, world.device)
    for step, (waves, idx) in enumerate(tqdm(loader, desc=desc, disable=not (opts.progress and world.is_main),
                                             leave=False)):
        loss = clap_step_loss(model, front, waves, [captions[i] for i in idx], world, precision, frozen,
                              cfg.logit_clamp)
        value = loss.item()  # the global-batch loss: the same on every rank
        _check_finite(value, desc, key, step)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        world.average_gradients(params)
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(opt); scaler.update()
        losses.append(value)
        if on_step is not None:
            on_step({"phase": "frozen" if frozen else "unfrozen", "epoch": key, "step": step, "loss": value})
    return losses


@torch.no_grad()
def clap_val_loss(model: Clap, front: LogMel, data: ClipDataset, captions: list[str], rows: np.ndarray,
                  cfg: ClapTrainConfig, world: World, opts: RunOptions, precision: str) -> float:
    """CLIP loss over fixed consecutive batches of the validation pairs (fixed segments), weighted by size."""
    model.eval()
    dev, d = world.device, model.audio_proj.linear1.out_features
    dtype = full_precision(model.logit_scale.detach()).dtype
    batches = [rows[i : i + cfg.batch_size] for i in range(0, len(rows), cfg.batch_size)]
    shares = [world.split(b) for b in batches]
    loader = clip_loader(data, [mine for mine, _ in shares], 0, opts, dev)
    losses, weights = [], []
    for (waves, idx), (_, sizes) in zip(loader, shares):
        E_a = E_t = torch.zeros((0, d), device=dev, dtype=dtype)
        if len(idx):
            with autocast(dev, precision):
                tokens = {k: v.to(dev) for k, v in model.text.tokenize([captions[i] for i in idx]).items()}
                E_a = full_precision(model.embed_audio(model.audio(front(_to_device(waves, dev)))))
                E_t = full_precision(model.embed_text(model.text(tokens)))
        E_a, E_t = world.gather_uneven(E_a, sizes), world.gather_uneven(E_t, sizes)
        losses.append(clip_loss(E_a, E_t, model.logit_scale, cfg.logit_clamp).item())
        weights.append(sum(sizes))
    return float(np.average(losses, weights=weights)) if losses else float("nan")


def train_clap_streaming(model: Clap, front: LogMel, train: pd.DataFrame, val: pd.DataFrame, cfg: ClapTrainConfig,
                         audio: AudioConfig, seed: int, ckpt: Path | None = None, world: World | None = None,
                         opts: RunOptions = RunOptions(), precision: str = "fp32",
                         log: Callable[[str], None] = print,
                         on_step: Callable[[dict], None] | None = None) -> list[dict]:
    """The CLAP recipe (training.train_clap) on (audio_path, caption) tables, audio streamed from disk.

    Phase 1: `frozen_epochs` epochs, backbones frozen (eval mode, no gradient), Adam(frozen_lr) on the projectors
    and the temperature. Phase 2: everything learns with Adam(unfrozen_lr), ReduceLROnPlateau on the validation
    loss, until it has not improved for `early_stop_patience` epochs (at most `max_unfrozen_epochs`); the
    best-validation state is restored. Gradient norm clipped at `grad_clip`, logits clamped at `logit_clamp`.
    A checkpoint is written at every epoch end (rank 0); a rerun resumes from it exactly.
    """
    world = world or single_process(next(model.parameters()).device)
    history: list[dict] = []
    tr_caps, va_caps = list(train["caption"]), list(val["caption"])
    tr_data = ClipDataset(train["audio_path"], audio, seed, SALT_CLAP)
    va_data = ClipDataset(val["audio_path"], audio, seed, SALT_CLAP_VAL)
    val_rows = np.arange(len(val))
    if cfg.max_val_pairs is not None and len(val_rows) > cfg.max_val_pairs:
        val_rows = np.sort(np.random.default_rng([seed, 99]).choice(len(val_rows), cfg.max_val_pairs, replace=False))
    state = _load_resume(ckpt)
    dev = world.device
    # ---- phase 1
    proj_params = [*model.audio_proj.parameters(), *model.text_proj.parameters(), model.logit_scale]
    opt, scaler = torch.optim.Adam(proj_params, lr=cfg.frozen_lr), _scaler(dev, precision)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"]); history = state["history"]
        if state["phase"] == "frozen":
            opt.load_state_dict(state["opt"]); scaler.load_state_dict(state["scaler"]); start = state["epoch"] + 1
        else:
            start = cfg.frozen_epochs
    for epoch in range(start, cfg.frozen_epochs):
        t0 = time.time()
        seed_torch(seed, SALT_CLAP, epoch, world.rank)
        model.eval(); model.audio_proj.train(); model.text_proj.train()
        losses = _clap_epoch(model, front, tr_data, tr_caps, epoch, seed, cfg, world, opts, precision, opt, scaler,
                             proj_params, True, 1.0, f"CLAP frozen epoch {epoch + 1}", on_step)
        val_loss = clap_val_loss(model, front, va_data, va_caps, val_rows, cfg, world, opts, precision)
        history.append(_record("frozen", epoch, losses, val_loss, opt, t0))
        _save(world, {"phase": "frozen", "epoch": epoch, "model": _cpu_state(model), "opt": opt.state_dict(),
                      "scaler": scaler.state_dict(), "history": history}, ckpt)
    # ---- phase 2
    params = list(model.parameters())
    opt, scaler = torch.optim.Adam(params, lr=cfg.unfrozen_lr), _scaler(dev, precision)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    best_val, best_state, bad, start = math.inf, _cpu_state(model), 0, 0
    if state is not None and state["phase"] == "unfrozen":
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        scaler.load_state_dict(state["scaler"])
        best_val, best_state, bad, start = state["best_val"], state["best_state"], state["bad"], state["epoch"] + 1
        history = state["history"]
    for epoch in range(start, cfg.max_unfrozen_epochs):
        if bad >= cfg.early_stop_patience:
            break
        t0 = time.time()
        key = cfg.frozen_epochs + epoch  # phase-2 epochs draw batches and segments of their own
        seed_torch(seed, SALT_CLAP, key, world.rank)
        model.train()
        losses = _clap_epoch(model, front, tr_data, tr_caps, key, seed, cfg, world, opts, precision, opt, scaler,
                             params, False, cfg.unfrozen_pair_fraction, f"CLAP unfrozen epoch {epoch + 1}", on_step)
        val_loss = clap_val_loss(model, front, va_data, va_caps, val_rows, cfg, world, opts, precision)
        sched.step(val_loss)
        if val_loss < best_val:
            best_val, best_state, bad = val_loss, _cpu_state(model), 0
        else:
            bad += 1
        history.append(_record("unfrozen", epoch, losses, val_loss, opt, t0))
        _save(world, {"phase": "unfrozen", "epoch": epoch, "model": _cpu_state(model), "opt": opt.state_dict(),
                      "sched": sched.state_dict(), "scaler": scaler.state_dict(), "best_val": best_val,
                      "best_state": best_state, "bad": bad, "history": history}, ckpt)
    if cfg.max_unfrozen_epochs > 0:
        model.load_state_dict(best_state)
    model.eval()
    return history


# --- zero-shot evaluation on ESC-50 ---------------------------------------------------------------


@torch.no_grad()
def embed_esc50(model: Clap, feats: Stage, meta: pd.DataFrame, folds: Sequence[int], device: torch.device,
                precision: str, batch: int = 128) -> dict[str, np.ndarray]:
    """x_a, E_a of every usable clip of `folds`; x_t, E_t of the prompt of each of the 50 labels (as
    experiment.embed_eval, which scores fold 5 only)."""
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
        torch.manual_seed(cfg.seed)
        model = new_cnn14(cfg, len(data.classes))
        if world.distributed:
            use_global_batchnorm(model)
        model.to(world.device)
        world.broadcast_module(model)
        front = LogMel(cfg.audio).to(world.device)
        return pretrain_audioset(model, front, ClipDataset(seg["audio_path"], cfg.audio, cfg.seed, SALT_PRE),
                                 ClipDataset(seg["audio_path"], cfg.audio, cfg.seed, SALT_PRE_VAL),
                                 multi_hot(seg, data.classes), tr, va, cfg.pretrain, cfg.seed, work / "resume.pt",
                                 world, opts, precision)

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
        model = build_model(cfg, backbone)
        if world.distributed:
            use_global_batchnorm(model)
        model.to(world.device)
        world.broadcast_module(model)
        front = LogMel(cfg.audio).to(world.device)
        history = train_clap_streaming(model, front, train_df, val_df, cfg.clap, cfg.audio, cfg.seed,
                                       work / "resume.pt", world, opts, precision, log)
        return model, history

    def write(out: Path, work: Path, trained: tuple[Clap, list[dict]]) -> dict:
        model, history = trained
        atomic_torch_save(_cpu_state(model), out / "checkpoint.pt")
        atomic_json(history, out / "history.json")
        train_df.to_csv(out / "pairs_train.csv", index=False)  # evidence: exactly which captions were trained on
        val_df.to_csv(out / "pairs_val.csv", index=False)
        emb = embed_esc50(model, feats, meta, settings.eval_folds, world.device, precision)
        atomic_npz(out / "embeddings.npz", **emb)
        atomic_npz(out / "tsne.npz", **{k: experiment.tsne_2d(emb[k], cfg.seed) for k in ("x_a", "E_a", "x_t", "E_t")})
        m = experiment.run_metrics(emb, paper_split(), cfg)
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
    panns = require_panns_checkpoint(panns_checkpoint or default_panns_checkpoint()) \
        if "dirty" in cfg.pretrainings else None
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


def _setup(cfg: ExperimentConfig, settings: PaperSettings | None, options: RunOptions | None, world: World | None,
           artifacts, quiet: bool):
    if cfg.profile != "paper":
        raise ValueError(f"run_paper_grid runs profile 'paper', got {cfg.profile!r} (use experiment.run_grid)")
    cfg.validate()
    settings, options = settings or PaperSettings(), options or RunOptions()
    settings.validate(); options.validate()
    world = world or init_world(options.device)
    sizes = [("clap.batch_size", cfg.clap.batch_size)]
    if "clean" in cfg.pretrainings:
        sizes.append(("pretrain.batch_size", cfg.pretrain.batch_size))
    for name, size in sizes:
        if size % world.world_size:
            raise ValueError(f"{name}={size} is not a multiple of the {world.world_size} processes")
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    root = Path(artifacts)
    return settings, options, world, root


def run_paper_stages(cfg: ExperimentConfig, roots: Mapping[str, str | Path | None], artifacts: str | Path = "artifacts",
                     panns_checkpoint: str | Path | None = None, audioset_root: str | Path | None = None,
                     log=None, *, clap: bool = True, settings: PaperSettings | None = None,
                     options: RunOptions | None = None, world: World | None = None, quiet: bool = False) -> PaperStages:
    """The stages of the grid without the summary: ESC-50 log-mels, the pretrainings of cfg.pretrainings and,
    with `clap`, one CLAP run per combination (cached stages are reused)."""
    settings, options, world, root = _setup(cfg, settings, options, world, artifacts, quiet)
    log = _logger(log, root, quiet, world)
    precision = resolve_precision(options.precision, world.device)
    log(f"paper grid: seed={cfg.seed} combos={len(cfg.pretrainings) * len(cfg.trainings)} device={world.device} "
        f"precision={precision} processes={world.world_size}")
    inp = _read_inputs(cfg, roots, panns_checkpoint, audioset_root, settings, clap, log)
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
    """experiment.features_stage (log-mels of every ESC-50 clip at `audio`), computed on rank 0 only."""
    stage = experiment.features_stage(root, inp.meta, inp.esc50_fingerprint, audio, progress, log) \
        if world.is_main else None
    key = world.broadcast_object(stage.key if stage else None)
    world.barrier()
    return stage or Stage(root, "features", key)


def summarise_paper(out: Path, stages: PaperStages, cfg: ExperimentConfig, settings: PaperSettings) -> dict:
    """experiment.summarise with all 50 classes as targets (results.csv, correlations.json, stages.json), and a
    config.json that records them and the paper settings."""
    info = experiment.summarise(out, stages.clap, stages.pretrain, _all_classes(cfg))
    split = paper_split()
    atomic_json({"config": experiment.config_payload(cfg), "target_classes": list(split.target),
                 "background_classes": list(split.background), "settings": asdict(settings)}, out / "config.json")
    return info


def run_paper_grid(cfg: ExperimentConfig, roots: Mapping[str, str | Path | None] | None = None,
                   artifacts: str | Path = "artifacts", panns_checkpoint: str | Path | None = None,
                   audioset_root: str | Path | None = None, progress: bool = True, log=None, *,
                   quiet: bool = False, update_latest: bool = True, device: str = "auto", precision: str = "auto",
                   num_workers: int = 0, settings: PaperSettings | None = None, world: World | None = None
                   ) -> GridResult | None:
    """Run (or load from the cache) the paper-profile grid; returns it (on rank 0; None on the other ranks).

    roots: data set name -> folder (clotho, audiocaps, fsd50k, macs, esc50, audioset), default
    datasets.default_roots(). panns_checkpoint: Cnn14_mAP=0.431.pth (default $CLAP_PANNS, then
    <shared data>/panns/); needed when "dirty" is in cfg.pretrainings. audioset_root overrides roots["audioset"].
    Under torchrun every rank calls this; rank 0 writes the artifacts.
    """
    roots = dict(default_roots() if roots is None else roots)
    options = RunOptions(device, precision, num_workers, progress)
    settings, options, world, root = _setup(cfg, settings, options, world, artifacts, quiet)
    log = _logger(log, root, quiet, world)
    stages = run_paper_stages(cfg, roots, root, panns_checkpoint, audioset_root, log, settings=settings,
                              options=options, world=world, quiet=quiet)
    payload = {"config": experiment.config_payload(cfg), "settings": asdict(settings), "target": "all 50 classes",
               "runs": {f"{p}/{t}": s.key for (p, t), s in stages.clap.items()},
               "pretrain": {k: s.key for k, s in stages.pretrain.items()},
               "stats": getattr(experiment, "STATS_VERSION", None)}
    grid = _stage(world, root, "grid", payload, log, lambda out, work, _: summarise_paper(out, stages, cfg, settings))
    if not world.is_main:
        return None
    if update_latest:
        atomic_json({"grid": str(grid.dir.resolve()), "key": grid.key, "timings": log.timings}, root / "latest.json")
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return experiment.load_grid(grid.dir)


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


# --- command line --------------------------------------------------------------------------------


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m clap_lib.paper",
        description="The paper-profile grid on Clotho/AudioCaps/FSD50K/MACS, AudioSet and ESC-50 (issue 5). "
                    "Under torchrun (python -m clap_lib.distributed train ...) it trains data-parallel.")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config parameter of the paper profile, e.g. --set clap.batch_size=256")
    ap.add_argument("--pretrainings", "--pretraining", default="dirty,clean,none", help="comma-separated")
    ap.add_argument("--trainings", "--training", default="dirty,clean", help="comma-separated")
    ap.add_argument("--step", choices=("prepare", "clap", "grid"), default="grid",
                    help="prepare: ESC-50 log-mels + pretrainings; clap: + CLAP runs; grid (default): + summary")
    ap.add_argument("--data-root", default=None, help="folder holding clotho/ audiocaps/ fsd50k/ macs/ esc50/ "
                    "audioset/ (default: $CLAP_<NAME>, then ../shared/data)")
    for name in ("clotho", "audiocaps", "fsd50k", "macs", "esc50", "audioset"):
        ap.add_argument(f"--{name}", default=None, help=f"{name} root (overrides --data-root)")
    ap.add_argument("--panns-checkpoint", default=None, help=f"{PANNS_FILE} (default ${PANNS_ENV}, then "
                    "<data root>/panns/)")
    ap.add_argument("--artifacts", default="artifacts")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:0 (under torchrun: each rank's GPU)")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS)
    ap.add_argument("--num-workers", type=int, default=4, help="audio-loading processes per training process")
    ap.add_argument("--eval-folds", default="1,2,3,4,5", help="ESC-50 folds scored zero-shot")
    ap.add_argument("--allow-missing-audio", action="store_true",
                    help="train on the audio files present (AudioCaps/AudioSet downloads always miss some)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="report what data is found / missing; train nothing")
    return ap


def main(argv: list[str] | None = None) -> int:
    from .cli import _parse_sets, apply_overrides
    from .datasets import dry_run_report, format_dry_run

    args = parser().parse_args(argv)
    try:
        cfg = apply_overrides(experiment.make_config("paper"), _parse_sets(args.set))
        cfg = replace(cfg, pretrainings=_csv_list(args.pretrainings), trainings=_csv_list(args.trainings))
        cfg.validate()
        roots = default_roots(args.data_root)
        for name in roots:
            if getattr(args, name, None):
                roots[name] = Path(getattr(args, name))
        panns = args.panns_checkpoint or (Path(args.data_root) / "panns" / PANNS_FILE if args.data_root else None)
        settings = PaperSettings(eval_folds=tuple(int(f) for f in _csv_list(args.eval_folds)),
                                 allow_missing_audio=args.allow_missing_audio)
        if args.dry_run:
            report = dry_run_report(roots)
            print(format_dry_run(report))
            path = panns or default_panns_checkpoint()
            print(f"panns: {'found' if path and Path(path).is_file() else 'MISSING'} ({path})")
            return 0 if all(r.get("found") for r in report.values()) and path and Path(path).is_file() else 1
        options = RunOptions(args.device, args.precision, args.num_workers, not args.quiet)
        options.validate()
        world = init_world(options.device)
        try:
            if args.step == "grid":
                g = run_paper_grid(cfg, roots, args.artifacts, panns, None, not args.quiet, quiet=args.quiet,
                                   device=args.device, precision=args.precision, num_workers=args.num_workers,
                                   settings=settings, world=world)
                if g is not None:
                    cols = ["pretraining", "training", "accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et",
                            "topo_Ea_Et"]
                    print(g.results[cols].round(3).to_string(index=False))
                    print(json.dumps(g.correlations, indent=2))
            else:
                run_paper_stages(cfg, roots, args.artifacts, panns, None, clap=args.step == "clap", settings=settings,
                                 options=options, world=world, quiet=args.quiet)
        finally:
            shutdown(world)
        return 0
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
