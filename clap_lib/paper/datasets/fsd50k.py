"""FSD50K: the Freesound title and description of each clip as its captions.

Layout (``root`` is the folder passed to the reader):

FSD50K (Zenodo record 4060432)
    ``root/FSD50K.ground_truth/{dev,eval}.csv`` with columns ``fname, labels, mids`` (+ ``split`` =
    train/val in dev.csv), ``root/FSD50K.metadata/{dev,eval}_clips_info_FSD50K.json`` (fname ->
    {title, description, tags, ...}). Captions: the Freesound ``title`` and ``description`` of each
    clip, one pair each, as CLAP did; an empty field gives no pair.
    Audio: ``root/FSD50K.dev_audio/{fname}.wav``, ``root/FSD50K.eval_audio/{fname}.wav``.
    Freesound ID (``freesound_id``): ``fname`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clap_lib.paper.datasets.common import (
    _check_audio,
    _listing,
    _order_columns,
    _pick_splits,
    _read_json,
    _read_table,
    _require_root,
    _split_list,
)
from clap_lib.paper.datasets.roots import _how_to_get

FSD50K_SPLITS: tuple[str, ...] = ("dev", "eval")


def read_fsd50k(
    root: str | Path,
    splits: Sequence[str] | None = None,
    fields: Sequence[str] = ("title", "description"),
    require_audio: bool = True,
) -> pd.DataFrame:
    """FSD50K pairs: one per non-empty metadata field in `fields` (Freesound title and description) per clip."""
    root = _require_root(root, "fsd50k")
    gt_dir, md_dir = root / "FSD50K.ground_truth", root / "FSD50K.metadata"
    present = [s for s in FSD50K_SPLITS if (gt_dir / f"{s}.csv").is_file()]
    frames = []
    for split in _pick_splits(splits, FSD50K_SPLITS, present, "fsd50k", f"{gt_dir}/{{dev,eval}}.csv"):
        csv, info_path = gt_dir / f"{split}.csv", md_dir / f"{split}_clips_info_FSD50K.json"
        for p in (csv, info_path):
            if not p.is_file():
                raise FileNotFoundError(f"FSD50K file {p} not found. {_how_to_get('fsd50k')}")
        gt = _read_table(csv, ["fname", "labels", "mids"], "fsd50k")
        info = _read_json(info_path, "fsd50k")
        if not isinstance(info, dict):
            raise ValueError(f"{info_path}: expected a JSON object fname -> clip info, got {type(info).__name__}")
        absent = [f for f in gt["fname"] if f not in info]
        if absent:
            raise ValueError(f"{info_path} has no entry for {len(absent)} clips of {csv}, e.g. {absent[:3]}")
        audio_dir = root / f"FSD50K.{split}_audio"
        files = _listing(audio_dir)
        rows = []
        for fname, labels, mids, sub in zip(
            gt["fname"], gt["labels"], gt["mids"], gt["split"] if "split" in gt.columns else [split] * len(gt)
        ):
            for field in fields:
                text = str(info[fname].get(field) or "").strip()
                if text:  # clips with an empty description give a title pair only
                    rows.append((fname, field, text, _split_list(labels), _split_list(mids), sub))
        df = pd.DataFrame(rows, columns=["audio_id", "caption_field", "caption", "labels", "mids", "fsd_split"])
        df.insert(0, "dataset", "fsd50k")
        df.insert(1, "split", split)
        df["freesound_id"] = df["audio_id"]
        df["audio_path"] = [str(audio_dir / f"{f}.wav") for f in df["audio_id"]]
        df["audio_exists"] = [f"{f}.wav" in files for f in df["audio_id"]]
        frames.append(_check_audio(df, "fsd50k", str(audio_dir), require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))
