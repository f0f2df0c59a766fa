"""ESC-50's own recordings inside the paper's training sets: leakage no caption filter can see.

ESC-50's clips were cut from Freesound recordings (``src_file`` in ``esc50.csv`` is the Freesound sound ID). Two of
the paper's four CLAP training sets are Freesound recordings too: every FSD50K clip is a Freesound sound (its
``fname`` is the ID) and every Clotho file was drawn from Freesound (its metadata's ``sound_id``). This module reads
those IDs and joins them with ESC-50 (per ESC-50 clip: the training sets and splits that hold its source recording);
:mod:`clap_lib.data.freesound_overlap` asks what the paper's ``clean`` rule (:func:`clap_lib.paper.datasets.filter_pairs`:
no word of any of the 50 ESC-50 class names) does with each overlapping training example.

Sources of the IDs
    * the shared lists (the default, ``<data root>/freesound/``): ``fsd50k_clips.csv`` (``freesound_id, split, mids``;
      split train / val / eval, train + val = the official dev set), ``fsd50k_vocabulary.csv``
      (``index, mid, display_name``), ``clotho_clips.csv`` (``file_name, split, freesound_id``; a few files have
      no ID, an empty field);
    * the official layouts: FSD50K ground truth ``FSD50K.ground_truth/{dev,eval}.csv`` (``fname`` = the ID,
      ``labels``, ``mids``, + ``split`` in dev.csv) and the Clotho metadata ``clotho_metadata_{split}.csv``
      (``file_name, keywords, sound_id, sound_link, start_end_samples, manufacturer, license``).

The text of an overlapping example (what the clean rule reads)
    * FSD50K: the clip's label names, joined (``"Bark, Dog, Domestic animals and pets, Animal"``). **An
      assumption**: the paper does not say what text it paired FSD50K clips with; labels as text is what a
      label-only data set gives (the mids -> display names of ``fsd50k_vocabulary.csv``, ``_`` read as a space).
    * Clotho: the file's five captions, matched by file name in the caption files found (the shared Clotho v1
      files cover the v1 files of v2's development and evaluation splits; v2's validation split and the files
      v2 added to development have no caption here and count as "no text", never as kept or removed).

An example **survives** when at least one of its texts is kept by the clean rule: a clean model still trains on
that ESC-50 test recording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.data.paths import shared_data_dir
from clap_lib.paper.datasets.clotho import CLOTHO_SPLITS, _clotho_csv, read_clotho_metadata_csv
from clap_lib.paper.datasets.common import _read_table, _split_list
from clap_lib.paper.datasets.paper_set import TRAINING_SPLITS

__all__ = [
    "FREESOUND_DIR",
    "FSD50K_CLIPS",
    "FSD50K_VOCABULARY",
    "CLOTHO_CLIPS",
    "FSD50K_PARTS",
    "PARTS",
    "TRAINING_PARTS",
    "EXAMPLE_COLUMNS",
    "freesound_dir",
    "read_fsd50k_clips",
    "read_fsd50k_vocabulary",
    "read_clotho_clips",
    "read_fsd50k_ground_truth",
    "read_clotho_metadata",
    "fsd50k_examples",
    "clotho_examples",
    "read_id_csv",
    "IdList",
    "id_examples",
    "match_esc50",
]

FREESOUND_DIR = "freesound"
FSD50K_CLIPS, FSD50K_VOCABULARY, CLOTHO_CLIPS = "fsd50k_clips.csv", "fsd50k_vocabulary.csv", "clotho_clips.csv"

#: FSD50K's three splits and the official part each belongs to (train + val = dev).
FSD50K_PARTS: dict[str, str] = {"train": "dev", "val": "dev", "eval": "eval"}
#: (data set, part) in display order; a part is FSD50K's dev / eval, a Clotho split.
PARTS: tuple[tuple[str, str], ...] = (("fsd50k", "dev"), ("fsd50k", "eval"), *(("clotho", s) for s in CLOTHO_SPLITS))
#: the parts in the paper's training set (datasets.TRAINING_SPLITS): the benchmark test parts stay out.
TRAINING_PARTS: tuple[tuple[str, str], ...] = tuple((d, p) for d, p in PARTS if p in TRAINING_SPLITS[d])
#: one row per training example that carries a Freesound ID.
EXAMPLE_COLUMNS: tuple[str, ...] = ("dataset", "split", "part", "example", "freesound_id")
_ID = re.compile(r"^[0-9]{1,18}$")  # 18 digits: any Freesound ID, and it fits an int64


# --- reading the ID lists ------------------------------------------------------------------------------------


def freesound_dir(data_root: str | Path | None = None) -> Path:
    """`<data root>/freesound` (data root default: :func:`clap_lib.data.paths.shared_data_dir`), checked to exist."""
    base = Path(data_root) if data_root is not None else shared_data_dir()
    if base is None:
        raise FileNotFoundError("no data root: set $CLAP_DATA or pass the folder that holds freesound/")
    folder = base / FREESOUND_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Freesound ID lists not found: {folder} is not a folder (expected {FSD50K_CLIPS}, "
            f"{FSD50K_VOCABULARY}, {CLOTHO_CLIPS} there)"
        )
    return folder


def _file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    return path


def _ids(values: pd.Series, where: str, allow_blank: bool) -> pd.Series:
    """Freesound IDs (whole numbers) as Int64; blank -> <NA> when allowed, anything else -> ValueError naming the
    first bad value and its line in the CSV (line 1 is the header)."""
    text = values.astype(str).str.strip()
    blank = text == ""
    if blank.any() and not allow_blank:
        raise ValueError(
            f"{where}: {int(blank.sum())} empty Freesound ID(s), the first on line "
            f"{int(np.flatnonzero(blank.to_numpy())[0]) + 2}"
        )
    bad = ~blank & ~text.str.match(_ID)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{where}: {text.iloc[i]!r} on line {i + 2} is not a Freesound ID (a whole number); "
            f"{int(bad.sum())} such value(s)"
        )
    return pd.to_numeric(text.mask(blank), errors="raise").astype("Int64")


def _splits(values: pd.Series, allowed: Sequence[str], where: str) -> pd.Series:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown split(s) {unknown}; allowed: {', '.join(allowed)}")
    return values


def read_fsd50k_clips(path: str | Path) -> pd.DataFrame:
    """The shared `fsd50k_clips.csv`: freesound_id (int64), split (train / val / eval), mids (tuple of label ids)."""
    path = _file(path, "FSD50K ID list")
    df = _read_table(path, ["freesound_id", "split", "mids"], "fsd50k")
    return pd.DataFrame(
        {
            "freesound_id": _ids(df["freesound_id"], str(path), allow_blank=False).astype("int64"),
            "split": _splits(df["split"], tuple(FSD50K_PARTS), str(path)),
            "mids": df["mids"].map(_split_list),
        }
    )


def read_fsd50k_vocabulary(path: str | Path) -> pd.DataFrame:
    """The shared `fsd50k_vocabulary.csv`: index, mid, display_name of the 200 FSD50K classes."""
    path = _file(path, "FSD50K vocabulary")
    df = _read_table(path, ["index", "mid", "display_name"], "fsd50k")
    if df["mid"].duplicated().any():
        raise ValueError(f"{path}: mid {df['mid'][df['mid'].duplicated()].iloc[0]!r} is listed twice")
    return df.assign(index=df["index"].astype(int))


def read_clotho_clips(path: str | Path) -> pd.DataFrame:
    """The shared `clotho_clips.csv`: file_name, split, freesound_id (Int64, <NA> where the source has none)."""
    path = _file(path, "Clotho ID list")
    df = _read_table(path, ["file_name", "split", "freesound_id"], "clotho")
    return pd.DataFrame(
        {
            "file_name": df["file_name"],
            "split": _splits(df["split"], CLOTHO_SPLITS, str(path)),
            "freesound_id": _ids(df["freesound_id"], str(path), allow_blank=True),
        }
    )


def read_fsd50k_ground_truth(root: str | Path) -> pd.DataFrame:
    """FSD50K's official ground truth (`root/FSD50K.ground_truth/{dev,eval}.csv`, or `root` that folder itself) in
    the shape of :func:`read_fsd50k_clips`, plus `labels`: `fname` is the Freesound ID, dev.csv's `split` is
    train / val. Either file alone is read too."""
    root = Path(root)
    gt = root / "FSD50K.ground_truth" if (root / "FSD50K.ground_truth").is_dir() else root
    present = [n for n in ("dev", "eval") if (gt / f"{n}.csv").is_file()]
    if not present:
        raise FileNotFoundError(f"no FSD50K ground truth: neither {gt / 'dev.csv'} nor {gt / 'eval.csv'} exists")
    frames = []
    for name in present:
        path = gt / f"{name}.csv"
        df = _read_table(path, ["fname", "labels", "mids", *(["split"] if name == "dev" else [])], "fsd50k")
        split = _splits(df["split"], ("train", "val"), str(path)) if name == "dev" else "eval"
        frames.append(
            pd.DataFrame(
                {
                    "freesound_id": _ids(df["fname"], str(path), allow_blank=False).astype("int64"),
                    "split": split,
                    "mids": df["mids"].map(_split_list),
                    "labels": df["labels"].map(_split_list),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def read_clotho_metadata(root: str | Path, splits: Sequence[str] | None = None) -> pd.DataFrame:
    """Clotho's official metadata (`clotho_metadata_{split}.csv` in `root` or `root/clotho_csv_files`) in the shape
    of :func:`read_clotho_clips`: its `sound_id` is the Freesound ID. `splits` default: every split present."""
    root = Path(root)
    found = {s: _clotho_csv(root, s, "metadata") for s in CLOTHO_SPLITS}
    wanted = list(splits) if splits is not None else [s for s in CLOTHO_SPLITS if found[s] is not None]
    if not wanted:
        raise FileNotFoundError(
            f"no Clotho metadata file (clotho_metadata_{{{','.join(CLOTHO_SPLITS)}}}.csv) in "
            f"{root} or {root / 'clotho_csv_files'}"
        )
    frames = []
    for s in wanted:
        if s not in CLOTHO_SPLITS:
            raise ValueError(f"unknown Clotho split {s!r}; allowed: {', '.join(CLOTHO_SPLITS)}")
        if found[s] is None:
            raise FileNotFoundError(f"clotho_metadata_{s}.csv not found in {root} or {root / 'clotho_csv_files'}")
        df = read_clotho_metadata_csv(found[s])
        frames.append(
            pd.DataFrame(
                {
                    "file_name": df["file_name"],
                    "split": s,
                    "freesound_id": _ids(df["sound_id"], str(found[s]), allow_blank=True),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def fsd50k_examples(clips: pd.DataFrame) -> pd.DataFrame:
    """FSD50K clips (:func:`read_fsd50k_clips`) as training examples (:data:`EXAMPLE_COLUMNS`)."""
    return pd.DataFrame(
        {
            "dataset": "fsd50k",
            "split": clips["split"],
            "part": clips["split"].map(FSD50K_PARTS),
            "example": clips["freesound_id"].astype(str),
            "freesound_id": clips["freesound_id"].astype("Int64"),
        }
    )


def clotho_examples(clips: pd.DataFrame) -> pd.DataFrame:
    """Clotho files (:func:`read_clotho_clips`) with a Freesound ID as training examples (:data:`EXAMPLE_COLUMNS`)."""
    has = clips["freesound_id"].notna()
    c = clips[has]
    return pd.DataFrame(
        {
            "dataset": "clotho",
            "split": c["split"],
            "part": c["split"],
            "example": c["file_name"],
            "freesound_id": c["freesound_id"].astype("Int64"),
        }
    ).reset_index(drop=True)


# --- a user's own list of IDs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdList:
    """A user's Freesound IDs: `ids` (freesound_id Int64, split: the file's `split` column or "all"), where they
    came from, and how many rows had an empty ID (left out, reported)."""

    ids: pd.DataFrame
    source: str
    n_blank: int


def read_id_csv(path: str | Path, id_column: str = "freesound_id", split_column: str = "split") -> IdList:
    """A CSV with a column of Freesound IDs (and optionally a split column). Raises, naming the problem, for a
    missing file, an empty file, no such column, or a value that is not a whole number; empty cells are counted
    and left out (the shared Clotho list has a few)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ID file {path} not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # a spreadsheet's BOM
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} is empty: no header, no Freesound IDs") from None
    except Exception as e:
        raise ValueError(f"cannot parse {path} as CSV: {e}") from e
    if id_column not in df.columns:
        raise ValueError(
            f"{path} has no column {id_column!r} (columns: {', '.join(map(str, df.columns))}); "
            "name the ID column with --id-column"
        )
    if df.empty:
        raise ValueError(f"{path} has a header but no rows: no Freesound IDs")
    ids = _ids(df[id_column], f"{path}, column {id_column!r}", allow_blank=True)
    if ids.isna().all():
        raise ValueError(f"{path}, column {id_column!r}: every value is empty: no Freesound IDs")
    split = df[split_column] if split_column in df.columns and split_column != id_column else "all"
    out = pd.DataFrame({"freesound_id": ids, "split": split})
    return IdList(out[ids.notna()].reset_index(drop=True), str(path), int(ids.isna().sum()))


def id_examples(ids: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """A user's IDs (:class:`IdList`.ids) as training examples: the example is the ID, the part its split."""
    return pd.DataFrame(
        {
            "dataset": dataset,
            "split": ids["split"].astype(str),
            "part": ids["split"].astype(str),
            "example": ids["freesound_id"].astype(str),
            "freesound_id": ids["freesound_id"],
        }
    )


# --- the join with ESC-50 ------------------------------------------------------------------------------------


def match_esc50(meta: pd.DataFrame, examples: pd.DataFrame) -> pd.DataFrame:
    """One row per (ESC-50 clip, training example) that share a Freesound recording: the clip's filename, fold,
    category, src_file and the example's :data:`EXAMPLE_COLUMNS`."""
    clips = meta[["filename", "fold", "category", "src_file"]].assign(src_file=meta["src_file"].astype("int64"))
    ex = examples[list(EXAMPLE_COLUMNS)].dropna(subset=["freesound_id"])
    ex = ex.assign(freesound_id=ex["freesound_id"].astype("int64"))
    return clips.merge(ex, left_on="src_file", right_on="freesound_id", how="inner").reset_index(drop=True)
