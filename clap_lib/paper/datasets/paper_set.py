"""The paper's CLAP training set: the union of the caption data sets' training splits, its validation split by
audio file, and the leakage filter over its captions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.data.esc50 import ESC50_CLASSES, split_validation
from clap_lib.data.filtering import FilterResult, leakage_filter
from clap_lib.paper.datasets.audiocaps import read_audiocaps
from clap_lib.paper.datasets.clotho import read_clotho
from clap_lib.paper.datasets.common import PAIR_COLUMNS
from clap_lib.paper.datasets.fsd50k import read_fsd50k
from clap_lib.paper.datasets.macs import MACS_SPLIT, read_macs
from clap_lib.paper.datasets.roots import CAPTION_DATASETS, _how_to_get

#: Splits that make up the paper training set: the benchmark test splits stay out.
TRAINING_SPLITS: dict[str, tuple[str, ...]] = {
    "clotho": ("development", "validation"),
    "audiocaps": ("train", "val"),
    "fsd50k": ("dev",),
    "macs": (MACS_SPLIT,),
}


def read_caption_dataset(
    name: str, root: str | Path, splits: Sequence[str] | None = None, require_audio: bool = True
) -> pd.DataFrame:
    """Dispatch to the reader of caption data set `name` (one of :data:`CAPTION_DATASETS`)."""
    if name == "clotho":
        return read_clotho(root, splits, require_audio)
    if name == "audiocaps":
        return read_audiocaps(root, splits, require_audio)
    if name == "fsd50k":
        return read_fsd50k(root, splits, require_audio=require_audio)
    if name == "macs":
        if splits is not None and list(splits) != [MACS_SPLIT]:
            raise ValueError(f"MACS has one split, {MACS_SPLIT!r}; got {list(splits)}")
        return read_macs(root, require_audio)
    raise ValueError(f"unknown caption data set {name!r}; allowed: {', '.join(CAPTION_DATASETS)}")


def paper_training_set(
    roots: Mapping[str, str | Path | None],
    require_audio: bool = True,
    splits: Mapping[str, Sequence[str]] | None = None,
    datasets: Sequence[str] = CAPTION_DATASETS,
) -> pd.DataFrame:
    """Union of the caption data sets' training splits (:data:`TRAINING_SPLITS`) as one pairs table.

    `roots` maps data set name -> root folder; every name in `datasets` must be there. Columns:
    :data:`PAIR_COLUMNS` and `freesound_id` (FSD50K, Clotho; "" where unknown or not a Freesound data set).
    """
    splits = {**TRAINING_SPLITS, **(splits or {})}
    absent = [d for d in datasets if roots.get(d) in (None, "")]
    if absent:
        raise FileNotFoundError(
            f"no root given for {absent}; the paper training set needs "
            f"{', '.join(datasets)}. " + " ".join(_how_to_get(d) for d in absent)
        )
    frames = [
        read_caption_dataset(d, roots[d], splits[d], require_audio).reindex(
            columns=[*PAIR_COLUMNS, "freesound_id"], fill_value=""
        )
        for d in datasets
    ]
    return pd.concat(frames, ignore_index=True)


def split_pairs_validation(
    pairs: pd.DataFrame, fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) pairs; `fraction` of the audio files (not pairs) go to validation.

    Grouping by (dataset, audio_id) keeps every caption of one recording on the same side, so
    validation never scores captions of audio seen in training.
    """
    group = pairs.groupby(["dataset", "audio_id"], sort=False).ngroup().to_numpy()
    _, val_groups = split_validation(int(group.max()) + 1 if len(group) else 0, fraction, seed)
    is_val = np.isin(group, val_groups)
    return pairs[~is_val].reset_index(drop=True), pairs[is_val].reset_index(drop=True)


def filter_pairs(pairs: pd.DataFrame, class_names: Sequence[str] = ESC50_CLASSES) -> FilterResult:
    """The leakage filter over the `caption` column (see :func:`clap_lib.data.filtering.leakage_filter`)."""
    return leakage_filter(list(pairs["caption"].astype(str)), class_names)


def clean_pairs(pairs: pd.DataFrame, class_names: Sequence[str] = ESC50_CLASSES) -> pd.DataFrame:
    """The pairs whose caption names no word of `class_names` (default: all 50 ESC-50 classes)."""
    return pairs[filter_pairs(pairs, class_names).keep].reset_index(drop=True)
