"""AudioCaps: YouTube clips with one (train) or five (val, test) captions.

Layout (``root`` is the folder passed to the reader):

AudioCaps (github.com/cdjkim/audiocaps; audio lives on YouTube)
    ``root/{train,val,test}.csv`` or ``root/dataset/{split}.csv`` (the GitHub repository's layout);
    columns ``audiocap_id, youtube_id, start_time, caption``. One pair per CSV row (train has one
    caption per clip, val/test five).
    Audio: ``root/audio/{split}/{youtube_id}_{start_time}.wav`` (start_time as the integer in the CSV),
    fallback ``root/audio/{split}/Y{youtube_id}.wav`` (the AudioSet-style name many download scripts
    write; unambiguous because a youtube_id has one start time within a split).
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

AUDIOCAPS_SPLITS: tuple[str, ...] = ("train", "val", "test")


def _audiocaps_csv(root: Path, split: str) -> Path | None:
    return next((p for p in (root / f"{split}.csv", root / "dataset" / f"{split}.csv") if p.is_file()), None)


def read_audiocaps(root: str | Path, splits: Sequence[str] | None = None, require_audio: bool = True) -> pd.DataFrame:
    """AudioCaps pairs (one per CSV row); audio by `{youtube_id}_{start_time}.wav`, else `Y{youtube_id}.wav`."""
    root = _require_root(root, "audiocaps")
    present = [s for s in AUDIOCAPS_SPLITS if _audiocaps_csv(root, s)]
    looked = f"{{{','.join(AUDIOCAPS_SPLITS)}}}.csv in {root} and {root / 'dataset'}"
    frames = []
    for split in _pick_splits(splits, AUDIOCAPS_SPLITS, present, "audiocaps", looked):
        csv = _audiocaps_csv(root, split)
        if csv is None:
            raise FileNotFoundError(
                f"{split}.csv not found in {root} or {root / 'dataset'}. " + _how_to_get("audiocaps")
            )
        meta = _read_table(csv, ["audiocap_id", "youtube_id", "start_time", "caption"], "audiocaps")
        start = pd.to_numeric(meta["start_time"], errors="coerce")
        bad = start.isna() | (start < 0) | (start != start.round())
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(
                f"{csv}: start_time must be a whole number of seconds >= 0, got "
                f"{meta['start_time'].iloc[i]!r} (audiocap_id {meta['audiocap_id'].iloc[i]})"
            )
        audio_dir = root / "audio" / split
        files = _listing(audio_dir)
        primary = [f"{y}_{int(s)}.wav" for y, s in zip(meta["youtube_id"], start)]
        fallback = [f"Y{y}.wav" for y in meta["youtube_id"]]
        chosen = [p if p in files or f not in files else f for p, f in zip(primary, fallback)]
        df = pd.DataFrame(
            {
                "dataset": "audiocaps",
                "split": split,
                "audio_id": [p[:-4] for p in primary],
                "audio_path": [str(audio_dir / c) for c in chosen],
                "audio_exists": [c in files for c in chosen],
                "caption": meta["caption"].to_numpy(),
                "audiocap_id": meta["audiocap_id"].to_numpy(),
                "youtube_id": meta["youtube_id"].to_numpy(),
                "start_time": start.astype(int).to_numpy(),
            }
        )
        _empty_caption_error(df, csv, "audiocaps")
        frames.append(
            _check_audio(
                df,
                "audiocaps",
                f"{audio_dir} ({{youtube_id}}_{{start_time}}.wav or Y{{youtube_id}}.wav)",
                require_audio,
            )
        )
    return _order_columns(pd.concat(frames, ignore_index=True))
