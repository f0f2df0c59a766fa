"""Clotho: five captions per audio file.

Layout (``root`` is the folder passed to the reader):

Clotho v2.1 (Zenodo record 4783391; Clotho v1, which has no validation split, also reads)
    ``root/clotho_captions_{development,validation,evaluation}.csv`` or the same names under
    ``root/clotho_csv_files/``; columns ``file_name, caption_1 .. caption_5``.
    Audio: ``root/{split}/{file_name}`` (what ``clotho_audio_{split}.7z`` extracts to).
    Five pairs per file.
    Freesound ID (``freesound_id``, empty when unknown): ``sound_id`` of ``clotho_metadata_{split}.csv`` beside the
    caption file (columns ``file_name, keywords, sound_id, sound_link, start_end_samples, manufacturer, license``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clap_lib.paper.datasets.common import (
    _check_audio,
    _empty_caption_error,
    _listing,
    _order_columns,
    _pick_splits,
    _read_table,
    _require_root,
)
from clap_lib.paper.datasets.roots import _how_to_get

CLOTHO_SPLITS: tuple[str, ...] = ("development", "validation", "evaluation")


def _clotho_csv(root: Path, split: str, kind: str = "captions") -> Path | None:
    name = f"clotho_{kind}_{split}.csv"
    return next((p for p in (root / name, root / "clotho_csv_files" / name) if p.is_file()), None)


def read_clotho_metadata_csv(path: Path) -> pd.DataFrame:
    """A `clotho_metadata_{split}.csv` as strings, checked for `file_name` and `sound_id`."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:  # Clotho v2's metadata files are ISO-8859-1, not UTF-8
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="ISO-8859-1")
    missing = [c for c in ("file_name", "sound_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks the Clotho metadata columns {missing}; has {list(df.columns)}")
    return df


def _sound_ids(root: Path, split: str, file_names: pd.Series) -> list[str]:
    """Each file's Freesound ID from the split's metadata file ("" where there is no metadata file or entry)."""
    path = _clotho_csv(root, split, "metadata")
    if path is None:
        return [""] * len(file_names)
    meta = read_clotho_metadata_csv(path)
    ids = dict(zip(meta["file_name"], meta["sound_id"].str.strip()))
    return [ids.get(f, "") for f in file_names]


def read_clotho(root: str | Path, splits: Sequence[str] | None = None, require_audio: bool = True) -> pd.DataFrame:
    """Clotho pairs (five per file); `splits` default: every split whose caption CSV is present."""
    root = _require_root(root, "clotho")
    present = [s for s in CLOTHO_SPLITS if _clotho_csv(root, s)]
    looked = f"clotho_captions_{{{','.join(CLOTHO_SPLITS)}}}.csv in {root} and {root / 'clotho_csv_files'}"
    frames = []
    for split in _pick_splits(splits, CLOTHO_SPLITS, present, "clotho", looked):
        csv = _clotho_csv(root, split)
        if csv is None:
            raise FileNotFoundError(
                f"clotho_captions_{split}.csv not found in {root} or {root / 'clotho_csv_files'}. "
                + _how_to_get("clotho")
            )
        cap_cols = [f"caption_{i}" for i in range(1, 6)]
        meta = _read_table(csv, ["file_name", *cap_cols], "clotho")
        # file-major order: the five captions of one file are adjacent
        long = (
            meta.melt(
                id_vars="file_name", value_vars=cap_cols, var_name="caption_n", value_name="caption", ignore_index=False
            )
            .reset_index(names="_row")
            .sort_values(["_row", "caption_n"])
        )
        audio_dir = root / split
        files = _listing(audio_dir)
        df = pd.DataFrame(
            {
                "dataset": "clotho",
                "split": split,
                "audio_id": long["file_name"].to_numpy(),
                "audio_path": [str(audio_dir / f) for f in long["file_name"]],
                "audio_exists": long["file_name"].isin(files).to_numpy(),
                "caption": long["caption"].to_numpy(),
                "caption_n": long["caption_n"].str[-1].astype(int).to_numpy(),
                "freesound_id": _sound_ids(root, split, long["file_name"]),
            }
        )
        _empty_caption_error(df, csv, "clotho")
        frames.append(_check_audio(df, "clotho", str(audio_dir), require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))
