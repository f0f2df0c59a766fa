"""Helpers every reader shares: root and table checks, audio-presence checks, the pair table's columns."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clap_lib.paper.datasets.roots import _how_to_get

PAIR_COLUMNS: tuple[str, ...] = ("dataset", "split", "audio_id", "audio_path", "audio_exists", "caption")


def _require_root(root: str | Path, dataset: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{dataset} root {root} does not exist or is not a folder. {_how_to_get(dataset)}")
    return root


def _read_table(path: Path, required: Sequence[str], dataset: str) -> pd.DataFrame:
    """A CSV as strings (ids like '0123' or 'NA' must survive), checked for the `required` columns."""
    try:
        # keep_default_na=False: a caption or a youtube_id reading "NA"/"null" is text, not missing
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:
        raise ValueError(f"cannot parse {dataset} file {path}: {e}") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks the {dataset} columns {missing}; has {list(df.columns)}")
    return df


def _listing(folder: Path) -> frozenset[str]:
    """File names in `folder` (empty if absent): one directory read instead of a stat per row."""
    try:
        return frozenset(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


def _check_audio(df: pd.DataFrame, dataset: str, where: str, require_audio: bool) -> pd.DataFrame:
    """Raise when audio is required and some is missing; otherwise return `df` unchanged (rows kept)."""
    if require_audio and not df["audio_exists"].all():
        absent = df.loc[~df["audio_exists"], "audio_path"].drop_duplicates()
        n_files = df["audio_path"].nunique()
        raise FileNotFoundError(
            f"{len(absent)} of {n_files} {dataset} audio files are missing (looked in {where}), e.g. "
            f"{[Path(p).name for p in absent[:3]]}. Pass require_audio=False to read the captions only "
            f"(rows keep audio_exists=False). {_how_to_get(dataset)}"
        )
    return df


def _empty_caption_error(df: pd.DataFrame, path: Path, dataset: str) -> None:
    blank = df["caption"].str.strip() == ""
    if blank.any():
        raise ValueError(
            f"{path}: {int(blank.sum())} empty {dataset} captions, e.g. audio {df.loc[blank, 'audio_id'].iloc[0]!r}"
        )


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in df.columns if c not in PAIR_COLUMNS]
    return df[[*PAIR_COLUMNS, *extra]].reset_index(drop=True)


def _pick_splits(
    requested: Sequence[str] | None, allowed: Sequence[str], present: Sequence[str], dataset: str, looked: str
) -> list[str]:
    """The splits to read: as requested (validated), else every split whose file is present."""
    if requested is not None:
        if isinstance(requested, str):
            requested = [requested]
        unknown = [s for s in requested if s not in allowed]
        if unknown:
            raise ValueError(f"unknown {dataset} split(s) {unknown}; allowed: {', '.join(allowed)}")
        return list(requested)
    if not present:
        raise FileNotFoundError(f"no {dataset} caption/label files found; looked for {looked}. {_how_to_get(dataset)}")
    return [s for s in allowed if s in present]


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in str(text).split(",") if t.strip())


def _read_json(path: Path, dataset: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception as e:
        raise ValueError(f"cannot parse {dataset} JSON file {path}: {e}") from e
