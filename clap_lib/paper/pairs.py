"""The paper profile's CLAP training pairs: the paper training set read once, its seeded validation split, and the
pairs each training level keeps (dirty, clean, dedup), with their fingerprint.

"dedup" (beyond the paper) = clean minus every pair whose audio is a Freesound recording an ESC-50 clip was cut from
(FSD50K ``fname``, Clotho metadata ``sound_id``; ESC-50's ``src_file``), as WavCaps de-duplicated against its
benchmarks; :mod:`clap_lib.data.freesound` reads the same IDs for the book and the `overlap` command.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clap_lib.config.experiment import PaperSettings
from clap_lib.config.levels import PAPER_PROFILE_TRAININGS
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.paper.datasets import filter_pairs, paper_training_set, split_pairs_validation

__all__ = ["PairSet", "table_fingerprint", "read_pairs", "pairs_for_training"]


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
        return FileNotFoundError(
            f"{e} To train on the files present instead, set `--set paper.allow_missing_audio=true`."
        )
    return e


def read_pairs(
    roots: Mapping[str, str | Path | None], settings: PaperSettings, seed: int, val_fraction: float
) -> PairSet:
    """The paper training set from `roots` and its seeded validation split (by audio file)."""
    try:
        pairs = paper_training_set(
            roots, require_audio=not settings.allow_missing_audio, datasets=settings.caption_datasets
        )
    except FileNotFoundError as e:
        raise _with_missing_hint(e) from e
    missing = ~pairs["audio_exists"].to_numpy(bool)
    pairs = pairs[~missing].reset_index(drop=True)
    if pairs.empty:
        raise FileNotFoundError(
            "the paper training set has no pair with audio present under "
            f"{ {d: str(roots.get(d)) for d in settings.caption_datasets} }"
        )
    fingerprint = table_fingerprint(pairs, ["dataset", "split", "audio_id", "audio_path", "caption", "freesound_id"])
    train, val = split_pairs_validation(pairs, val_fraction, seed)
    return PairSet(train, val, fingerprint, int(missing.sum()))


def pairs_for_training(
    pairs: PairSet, kind: str, esc50_sources: set[str] = frozenset()
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(train, val, info) for CLAP training data `kind`: dirty = all pairs, clean = the leakage filter with all 50
    ESC-50 class names applied to training and validation pairs, dedup = clean minus every pair whose
    `freesound_id` is in `esc50_sources` (ESC-50's `src_file` values).

    info["n_target_clip_pairs"] counts residual audio leakage that no caption filter removes: pairs whose audio
    is a Freesound recording that an ESC-50 clip was cut from (FSD50K `fname`, Clotho metadata `sound_id`; a pair
    with no known ID is not counted: info["n_pairs_no_freesound_id"] of the FSD50K / Clotho pairs).
    """
    if kind not in PAPER_PROFILE_TRAININGS:  # "strict" (the ontology-expanded filter) is the lab's split's only
        raise ValueError(
            f"CLAP training data {kind!r} is not defined for the paper profile; allowed: "
            f"{', '.join(PAPER_PROFILE_TRAININGS)}"
        )
    both = pd.concat([pairs.train.assign(part="train"), pairs.val.assign(part="val")], ignore_index=True)
    ids = both["freesound_id"].astype(str)
    freesound = both["dataset"].isin(["fsd50k", "clotho"])
    info: dict = {"n_pairs_dirty": len(both), "n_pairs_no_freesound_id": int((freesound & (ids == "")).sum())}
    if kind == "dedup":
        for d in ("fsd50k", "clotho"):  # a data set without any ID would be "de-duplicated" by nothing
            mine = both["dataset"] == d
            if mine.any() and (ids[mine] == "").all():
                raise ValueError(
                    f"training data 'dedup' needs the Freesound ID of each {d} file, and none of its "
                    f"{int(mine.sum())} pairs has one (Clotho: clotho_metadata_{{split}}.csv beside the "
                    "caption files)"
                )
    if kind in ("clean", "dedup"):
        res = filter_pairs(both, ESC50_CLASSES)
        keep = res.keep
        info["removed_per_word"] = res.removed_per_word
        if kind == "dedup":
            source = ids.isin(esc50_sources).to_numpy()
            info["n_pairs_esc50_source_dropped"] = int((keep & source).sum())  # what clean left of them
            keep = keep & ~source
        both, ids = both[keep].reset_index(drop=True), ids[keep].reset_index(drop=True)
    train, val = (both[both["part"] == p].drop(columns="part").reset_index(drop=True) for p in ("train", "val"))
    info.update(
        {
            "n_pairs": len(both),
            "n_train_pairs": len(train),
            "n_val_pairs": len(val),
            "n_target_clip_pairs": int(ids.isin(esc50_sources).sum()),
        }
    )
    if val.empty:
        raise ValueError(
            f"no validation pairs are left for CLAP training data {kind!r} "
            f"({len(pairs.val)} before cleaning): early stopping needs some; use more data"
        )
    return train, val, info
