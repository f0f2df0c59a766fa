"""Clotho: five captions per audio file.

Layout (``root`` is the folder passed to the reader):

Clotho v2.1 (Zenodo record 4783391; Clotho v1, which has no validation split, also reads)
    ``root/clotho_captions_{development,validation,evaluation}.csv`` or the same names under
    ``root/clotho_csv_files/``; columns ``file_name, caption_1 .. caption_5``.
    Audio: ``root/{split}/{file_name}`` (what ``clotho_audio_{split}.7z`` extracts to).
    Five pairs per file.
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


def _clotho_csv(root: Path, split: str) -> Path | None:
    name = f"clotho_captions_{split}.csv"
    return next((p for p in (root / name, root / "clotho_csv_files" / name) if p.is_file()), None)


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
            }
        )
        _empty_caption_error(df, csv, "clotho")
        frames.append(_check_audio(df, "clotho", str(audio_dir), require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))
