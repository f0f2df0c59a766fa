"""The paper's training data sets, read from their official release layouts, and a dry run over them.

The paper trains CLAP on the (audio, caption) pairs of Clotho, AudioCaps, FSD50K and MACS, pretrains
the audio encoder on AudioSet, and evaluates zero-shot on ESC-50. None of the caption audio can be
fetched on the project's machines, so every reader here can also run on captions alone
(``require_audio=False``) and :func:`dry_run_report` says what is present, what is missing and where
it looked, without training or loading any model.

Every caption reader returns one row per (audio, caption) pair with at least the columns of
:data:`PAIR_COLUMNS`: ``dataset, split, audio_id, audio_path, audio_exists, caption``.
``audio_path`` is where the audio file is (or, when absent, where the primary convention expects it);
``audio_exists`` says whether it is there. With ``require_audio=True`` (the default) any missing audio
file is an error that counts and names the missing files; with ``require_audio=False`` the rows stay in
the table with ``audio_exists=False`` so the caller sees them (they are never silently dropped).

Accepted layouts (``root`` is the folder passed to the reader)
---------------------------------------------------------------

Clotho v2.1 (Zenodo record 4783391; Clotho v1, which has no validation split, also reads)
    ``root/clotho_captions_{development,validation,evaluation}.csv`` or the same names under
    ``root/clotho_csv_files/``; columns ``file_name, caption_1 .. caption_5``.
    Audio: ``root/{split}/{file_name}`` (what ``clotho_audio_{split}.7z`` extracts to).
    Five pairs per file.

AudioCaps (github.com/cdjkim/audiocaps; audio lives on YouTube)
    ``root/{train,val,test}.csv`` or ``root/dataset/{split}.csv`` (the GitHub repository's layout);
    columns ``audiocap_id, youtube_id, start_time, caption``. One pair per CSV row (train has one
    caption per clip, val/test five).
    Audio: ``root/audio/{split}/{youtube_id}_{start_time}.wav`` (start_time as the integer in the CSV),
    fallback ``root/audio/{split}/Y{youtube_id}.wav`` (the AudioSet-style name many download scripts
    write; unambiguous because a youtube_id has one start time within a split).

FSD50K (Zenodo record 4060432)
    ``root/FSD50K.ground_truth/{dev,eval}.csv`` with columns ``fname, labels, mids`` (+ ``split`` =
    train/val in dev.csv), ``root/FSD50K.metadata/{dev,eval}_clips_info_FSD50K.json`` (fname ->
    {title, description, tags, ...}). Captions: the Freesound ``title`` and ``description`` of each
    clip, one pair each, as CLAP did; an empty field gives no pair.
    Audio: ``root/FSD50K.dev_audio/{fname}.wav``, ``root/FSD50K.eval_audio/{fname}.wav``.

MACS (Zenodo record 5114771) + TAU Urban Acoustic Scenes 2019 development (Zenodo record 2589280)
    ``root/MACS.yaml``: ``files:`` a list of ``{filename, annotations: [{annotator_id, sentence,
    tags}]}``; one pair per annotation ``sentence`` (tags are not captions and are not used).
    Audio: ``root/TAU-urban-acoustic-scenes-2019-development/audio/{filename}``. Split: "development".

ESC-50
    Read by :func:`clap_lib.esc50.read_esc50_meta` (``meta/esc50.csv`` or ``esc50.csv`` + ``audio/``).

AudioSet (pretraining; research.google.com/audioset)
    ``root/{balanced_train,unbalanced_train,eval}_segments.csv``: comment lines starting with ``#``,
    then rows ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``; ``root/class_labels_indices.csv``
    (``index, mid, display_name``); ``root/ontology.json`` (list of {id, name, ...}).
    Audio: ``root/audio/{split}/Y{YTID}.wav`` with split in balanced_train / unbalanced_train / eval,
    fallback ``root/audio/{split}/{YTID}.wav``.

Training set and cleaning
-------------------------
:func:`paper_training_set` is the union of the four caption data sets over :data:`TRAINING_SPLITS`:
every split except the benchmark test splits (Clotho evaluation, AudioCaps test, FSD50K eval), which
stay unseen. The validation pairs are then drawn by :func:`split_pairs_validation`, grouped by audio
file so no audio is in both parts. :func:`clean_pairs` applies the project's leakage filter
(:mod:`clap_lib.filtering`) with all 50 ESC-50 class names; :func:`audioset_classes_removed` and
:func:`clean_audioset_segments` do the same for AudioSet class names and segments.
"""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .esc50 import ESC50_ENV, ESC50_URL, locate_esc50, read_esc50_meta, split_validation
from .paths import shared_data_dir
from .esc50 import ESC50_CLASSES
from .filtering import FilterResult, leakage_filter
from .ontology import AudioSetClass, Ontology, descendants, esc50_audioset_names, load_ontology
from .io import atomic_write

__all__ = [
    "PAIR_COLUMNS", "CAPTION_DATASETS", "ALL_DATASETS", "TRAINING_SPLITS", "ROOT_ENV", "DOWNLOADS", "LANDING_PAGES",
    "CLOTHO_SPLITS", "AUDIOCAPS_SPLITS", "FSD50K_SPLITS", "AUDIOSET_SPLITS",
    "read_clotho", "read_audiocaps", "read_fsd50k", "read_macs", "read_caption_dataset",
    "read_audioset_segments", "read_audioset_class_labels", "read_ontology",
    "audioset_classes_removed", "clean_audioset_segments",
    "paper_training_set", "split_pairs_validation", "filter_pairs", "clean_pairs",
    "default_roots", "dry_run_report", "format_dry_run", "download",
]

PAIR_COLUMNS: tuple[str, ...] = ("dataset", "split", "audio_id", "audio_path", "audio_exists", "caption")
CAPTION_DATASETS: tuple[str, ...] = ("clotho", "audiocaps", "fsd50k", "macs")
ALL_DATASETS: tuple[str, ...] = (*CAPTION_DATASETS, "esc50", "audioset")

CLOTHO_SPLITS: tuple[str, ...] = ("development", "validation", "evaluation")
AUDIOCAPS_SPLITS: tuple[str, ...] = ("train", "val", "test")
FSD50K_SPLITS: tuple[str, ...] = ("dev", "eval")
MACS_SPLIT = "development"  # MACS has no split; its audio is the TAU 2019 development set
AUDIOSET_SPLITS: dict[str, str] = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}

#: Splits that make up the paper training set: the benchmark test splits stay out.
TRAINING_SPLITS: dict[str, tuple[str, ...]] = {
    "clotho": ("development", "validation"),
    "audiocaps": ("train", "val"),
    "fsd50k": ("dev",),
    "macs": (MACS_SPLIT,),
}

#: Environment variable naming each data set's root (checked by :func:`default_roots`).
ROOT_ENV: dict[str, str] = {
    "clotho": "CLAP_CLOTHO", "audiocaps": "CLAP_AUDIOCAPS", "fsd50k": "CLAP_FSD50K", "macs": "CLAP_MACS",
    "esc50": ESC50_ENV, "audioset": "CLAP_AUDIOSET",
}

LANDING_PAGES: dict[str, str] = {
    "clotho": "https://zenodo.org/record/4783391",
    "audiocaps": "https://github.com/cdjkim/audiocaps (captions; the audio must be fetched from YouTube)",
    "fsd50k": "https://zenodo.org/record/4060432",
    "macs": "https://zenodo.org/record/5114771 (captions) + https://zenodo.org/record/2589280 (TAU 2019 audio)",
    "esc50": "https://github.com/karolpiczak/ESC-50",
    "audioset": "https://research.google.com/audioset/download.html (audio must be fetched from YouTube)",
    "panns": "https://zenodo.org/record/3987831",
}

_CLOTHO = "https://zenodo.org/record/4783391/files/"
_FSD50K = "https://zenodo.org/record/4060432/files/"
_TAU19 = "https://zenodo.org/record/2589280/files/TAU-urban-acoustic-scenes-2019-development."
_AUDIOSET_CSV = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"

#: Official download URLs: data set -> {file name: url}. Archives are downloaded, never extracted
#: (Clotho ships 7z; FSD50K's audio is a split zip that `zip -s 0 X.zip --out single.zip` joins).
DOWNLOADS: dict[str, dict[str, str]] = {
    "clotho": {
        **{f"clotho_captions_{s}.csv": f"{_CLOTHO}clotho_captions_{s}.csv" for s in CLOTHO_SPLITS},
        **{f"clotho_audio_{s}.7z": f"{_CLOTHO}clotho_audio_{s}.7z" for s in CLOTHO_SPLITS},
    },
    "audiocaps": {f"{s}.csv": f"https://raw.githubusercontent.com/cdjkim/audiocaps/master/dataset/{s}.csv"
                  for s in AUDIOCAPS_SPLITS},
    "fsd50k": {name: _FSD50K + name for name in (
        "FSD50K.ground_truth.zip", "FSD50K.metadata.zip", "FSD50K.doc.zip",
        "FSD50K.dev_audio.zip", *(f"FSD50K.dev_audio.z0{i}" for i in range(1, 6)),
        "FSD50K.eval_audio.zip", "FSD50K.eval_audio.z01")},
    "macs": {name: f"https://zenodo.org/record/5114771/files/{name}"
             for name in ("MACS.yaml", "MACS_competence.csv", "LICENSE.txt")},
    "tau2019": {f"TAU-urban-acoustic-scenes-2019-development.{part}.zip": f"{_TAU19}{part}.zip"
                for part in ("meta", "doc", *(f"audio.{i}" for i in range(1, 22)))},
    "esc50": {"ESC-50-master.zip": ESC50_URL},
    "audioset": {
        **{name: _AUDIOSET_CSV + name for name in (*AUDIOSET_SPLITS.values(), "class_labels_indices.csv")},
        "ontology.json": "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json",
    },
    "panns": {"Cnn14_mAP=0.431.pth": "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth"},
}


def _how_to_get(dataset: str) -> str:
    extra = " and `tau2019`" if dataset == "macs" else ""
    return (f"Get it from {LANDING_PAGES[dataset]} (or `clap_lib.datasets.download('{dataset}', DIR)`{extra}, "
            f"which needs internet) and pass its folder, or set ${ROOT_ENV.get(dataset, 'CLAP_' + dataset.upper())}.")


# --- small shared helpers ------------------------------------------------------------------------


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
            f"(rows keep audio_exists=False). {_how_to_get(dataset)}")
    return df


def _empty_caption_error(df: pd.DataFrame, path: Path, dataset: str) -> None:
    blank = df["caption"].str.strip() == ""
    if blank.any():
        raise ValueError(f"{path}: {int(blank.sum())} empty {dataset} captions, e.g. audio "
                         f"{df.loc[blank, 'audio_id'].iloc[0]!r}")


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in df.columns if c not in PAIR_COLUMNS]
    return df[[*PAIR_COLUMNS, *extra]].reset_index(drop=True)


def _pick_splits(requested: Sequence[str] | None, allowed: Sequence[str], present: Sequence[str],
                 dataset: str, looked: str) -> list[str]:
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


# --- Clotho --------------------------------------------------------------------------------------


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
            raise FileNotFoundError(f"clotho_captions_{split}.csv not found in {root} or {root / 'clotho_csv_files'}. "
                                    + _how_to_get("clotho"))
        cap_cols = [f"caption_{i}" for i in range(1, 6)]
        meta = _read_table(csv, ["file_name", *cap_cols], "clotho")
        # file-major order: the five captions of one file are adjacent
        long = meta.melt(id_vars="file_name", value_vars=cap_cols, var_name="caption_n", value_name="caption",
                         ignore_index=False).reset_index(names="_row").sort_values(["_row", "caption_n"])
        audio_dir = root / split
        files = _listing(audio_dir)
        df = pd.DataFrame({
            "dataset": "clotho", "split": split, "audio_id": long["file_name"].to_numpy(),
            "audio_path": [str(audio_dir / f) for f in long["file_name"]],
            "audio_exists": long["file_name"].isin(files).to_numpy(),
            "caption": long["caption"].to_numpy(), "caption_n": long["caption_n"].str[-1].astype(int).to_numpy(),
        })
        _empty_caption_error(df, csv, "clotho")
        frames.append(_check_audio(df, "clotho", str(audio_dir), require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))


# --- AudioCaps -----------------------------------------------------------------------------------


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
            raise FileNotFoundError(f"{split}.csv not found in {root} or {root / 'dataset'}. " + _how_to_get("audiocaps"))
        meta = _read_table(csv, ["audiocap_id", "youtube_id", "start_time", "caption"], "audiocaps")
        start = pd.to_numeric(meta["start_time"], errors="coerce")
        bad = start.isna() | (start < 0) | (start != start.round())
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ValueError(f"{csv}: start_time must be a whole number of seconds >= 0, got "
                             f"{meta['start_time'].iloc[i]!r} (audiocap_id {meta['audiocap_id'].iloc[i]})")
        audio_dir = root / "audio" / split
        files = _listing(audio_dir)
        primary = [f"{y}_{int(s)}.wav" for y, s in zip(meta["youtube_id"], start)]
        fallback = [f"Y{y}.wav" for y in meta["youtube_id"]]
        chosen = [p if p in files or f not in files else f for p, f in zip(primary, fallback)]
        df = pd.DataFrame({
            "dataset": "audiocaps", "split": split, "audio_id": [p[:-4] for p in primary],
            "audio_path": [str(audio_dir / c) for c in chosen], "audio_exists": [c in files for c in chosen],
            "caption": meta["caption"].to_numpy(), "audiocap_id": meta["audiocap_id"].to_numpy(),
            "youtube_id": meta["youtube_id"].to_numpy(), "start_time": start.astype(int).to_numpy(),
        })
        _empty_caption_error(df, csv, "audiocaps")
        frames.append(_check_audio(df, "audiocaps", f"{audio_dir} ({{youtube_id}}_{{start_time}}.wav or "
                                                    "Y{youtube_id}.wav)", require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))


# --- FSD50K --------------------------------------------------------------------------------------


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in str(text).split(",") if t.strip())


def read_fsd50k(root: str | Path, splits: Sequence[str] | None = None, fields: Sequence[str] = ("title", "description"),
                require_audio: bool = True) -> pd.DataFrame:
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
        for fname, labels, mids, sub in zip(gt["fname"], gt["labels"], gt["mids"],
                                            gt["split"] if "split" in gt.columns else [split] * len(gt)):
            for field in fields:
                text = str(info[fname].get(field) or "").strip()
                if text:  # clips with an empty description give a title pair only
                    rows.append((fname, field, text, _split_list(labels), _split_list(mids), sub))
        df = pd.DataFrame(rows, columns=["audio_id", "caption_field", "caption", "labels", "mids", "fsd_split"])
        df.insert(0, "dataset", "fsd50k")
        df.insert(1, "split", split)
        df["audio_path"] = [str(audio_dir / f"{f}.wav") for f in df["audio_id"]]
        df["audio_exists"] = [f"{f}.wav" in files for f in df["audio_id"]]
        frames.append(_check_audio(df, "fsd50k", str(audio_dir), require_audio))
    return _order_columns(pd.concat(frames, ignore_index=True))


def _read_json(path: Path, dataset: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except Exception as e:
        raise ValueError(f"cannot parse {dataset} JSON file {path}: {e}") from e


# --- MACS ----------------------------------------------------------------------------------------

TAU2019_AUDIO = Path("TAU-urban-acoustic-scenes-2019-development") / "audio"


def read_macs(root: str | Path, require_audio: bool = True, audio_dir: str | Path | None = None) -> pd.DataFrame:
    """MACS pairs (one per annotation sentence); audio in `audio_dir` (default: root/TAU-.../audio)."""
    root = _require_root(root, "macs")
    path = root / "MACS.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"MACS.yaml not found in {root}. {_how_to_get('macs')}")
    data = _parse_yaml(path)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise ValueError(f"{path}: expected a top-level key `files:` holding a list of "
                         "{filename, annotations: [{annotator_id, sentence, tags}]}")
    audio_dir = Path(audio_dir) if audio_dir is not None else root / TAU2019_AUDIO
    present = _listing(audio_dir)
    rows = []
    for i, entry in enumerate(files):
        if not isinstance(entry, dict) or "filename" not in entry or not isinstance(entry.get("annotations"), list):
            raise ValueError(f"{path}: files[{i}] lacks `filename` or an `annotations` list: {str(entry)[:200]}")
        for j, ann in enumerate(entry["annotations"]):
            sentence = str(ann.get("sentence") or "").strip() if isinstance(ann, dict) else ""
            if not sentence:
                raise ValueError(f"{path}: files[{i}] ({entry['filename']}) annotation {j} has no `sentence`")
            rows.append((entry["filename"], sentence, ann.get("annotator_id")))
    df = pd.DataFrame(rows, columns=["audio_id", "caption", "annotator_id"])
    df.insert(0, "dataset", "macs")
    df.insert(1, "split", MACS_SPLIT)
    df["audio_path"] = [str(audio_dir / f) for f in df["audio_id"]]
    df["audio_exists"] = df["audio_id"].isin(present)
    return _order_columns(_check_audio(df, "macs", str(audio_dir), require_audio))


def _parse_yaml(path: Path) -> Any:
    try:
        import yaml  # PyYAML comes with the book toolchain; only MACS needs it
    except ImportError as e:
        raise ImportError("reading MACS.yaml needs PyYAML (`pip install pyyaml`)") from e
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=loader)
    except yaml.YAMLError as e:
        raise ValueError(f"cannot parse MACS file {path}: {e}") from e


# --- any caption data set by name ----------------------------------------------------------------


def read_caption_dataset(name: str, root: str | Path, splits: Sequence[str] | None = None,
                         require_audio: bool = True) -> pd.DataFrame:
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


# --- AudioSet ------------------------------------------------------------------------------------


def _comment_lines(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            n += 1
    return n


def read_audioset_segments(root: str | Path, splits: Sequence[str] | None = None,
                           require_audio: bool = True) -> pd.DataFrame:
    """AudioSet segments: dataset, split, audio_id (YTID), audio_path, audio_exists, start/end_seconds, labels (mids)."""
    root = _require_root(root, "audioset")
    present = [s for s, f in AUDIOSET_SPLITS.items() if (root / f).is_file()]
    frames = []
    for split in _pick_splits(splits, list(AUDIOSET_SPLITS), present, "audioset",
                              f"{', '.join(AUDIOSET_SPLITS.values())} in {root}"):
        path = root / AUDIOSET_SPLITS[split]
        if not path.is_file():
            raise FileNotFoundError(f"AudioSet segment list {path} not found. {_how_to_get('audioset')}")
        cols = ["YTID", "start_seconds", "end_seconds", "positive_labels"]
        try:
            # header lines start with '#'; skipinitialspace lets the quoted label list after ", " parse
            seg = pd.read_csv(path, skiprows=_comment_lines(path), header=None, names=cols, dtype=str,
                              keep_default_na=False, skipinitialspace=True, quotechar='"')
        except Exception as e:
            raise ValueError(f"cannot parse AudioSet segment list {path}: {e}") from e
        times = seg[["start_seconds", "end_seconds"]].apply(pd.to_numeric, errors="coerce")
        bad = times.isna().any(axis=1) | (seg["positive_labels"] == "")
        if bad.any():
            raise ValueError(f"{path}: {int(bad.sum())} rows are not `YTID, start, end, \"mid,...\"`, e.g. "
                             f"{seg[bad].iloc[0].to_dict()}")
        audio_dir = root / "audio" / split
        files = _listing(audio_dir)
        chosen = [f"Y{y}.wav" if f"Y{y}.wav" in files or f"{y}.wav" not in files else f"{y}.wav" for y in seg["YTID"]]
        df = pd.DataFrame({
            "dataset": "audioset", "split": split, "audio_id": seg["YTID"].to_numpy(),
            "audio_path": [str(audio_dir / c) for c in chosen], "audio_exists": [c in files for c in chosen],
            "start_seconds": times["start_seconds"].to_numpy(), "end_seconds": times["end_seconds"].to_numpy(),
            "labels": [_split_list(s) for s in seg["positive_labels"]],
        })
        frames.append(_check_audio(df, "audioset", f"{audio_dir} (Y{{YTID}}.wav or {{YTID}}.wav)", require_audio))
    return pd.concat(frames, ignore_index=True)


def read_audioset_class_labels(path: str | Path) -> pd.DataFrame:
    """`class_labels_indices.csv` (index, mid, display_name), or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "class_labels_indices.csv"
    if not path.is_file():
        raise FileNotFoundError(f"AudioSet class list {path} not found. {_how_to_get('audioset')}")
    df = _read_table(path, ["index", "mid", "display_name"], "audioset")
    return df.assign(index=df["index"].astype(int))[["index", "mid", "display_name"]]


def read_ontology(path: str | Path) -> pd.DataFrame:
    """AudioSet `ontology.json` (or the folder holding it) as a table: id, name, description, child_ids, restrictions."""
    path = Path(path)
    if path.is_dir():
        path = path / "ontology.json"
    if not path.is_file():
        raise FileNotFoundError(f"AudioSet ontology {path} not found. Get it from "
                                f"{DOWNLOADS['audioset']['ontology.json']}")
    data = _read_json(path, "audioset")
    if not isinstance(data, list) or not all(isinstance(d, dict) and "id" in d and "name" in d for d in data):
        raise ValueError(f"{path}: expected a JSON list of objects with at least `id` and `name`")
    df = pd.DataFrame(data)
    for col, default in (("description", ""), ("child_ids", ()), ("restrictions", ())):
        if col not in df.columns:
            df[col] = [default] * len(df)
    return df


def _class_table(classes: pd.DataFrame) -> pd.DataFrame:
    """(mid, name) from a class_labels_indices table (mid, display_name) or an ontology table (id, name)."""
    if {"mid", "display_name"} <= set(classes.columns):
        return pd.DataFrame({"mid": classes["mid"], "name": classes["display_name"]})
    if {"id", "name"} <= set(classes.columns):
        return pd.DataFrame({"mid": classes["id"], "name": classes["name"]})
    raise ValueError("expected AudioSet classes with columns (mid, display_name) or (id, name); got "
                     f"{list(classes.columns)}")


def _as_ontology(classes: pd.DataFrame, ontology: "Ontology | str | Path | None") -> "Ontology | None":
    """The ontology to expand with: given, else built from an ontology table (has child_ids), else
    :func:`clap_lib.ontology.load_ontology` (``$CLAP_ONTOLOGY``, then the shared data folder); None, with a
    warning, when none of these exists (a label table alone then gets the mapping without descendants)."""
    if isinstance(ontology, Ontology):
        return ontology
    if ontology is None and {"id", "name", "child_ids"} <= set(classes.columns):
        return Ontology(tuple(AudioSetClass(id=str(r.id), name=str(r.name), description=str(r.description),
                                            child_ids=tuple(r.child_ids), restrictions=tuple(r.restrictions))
                              for r in classes.itertuples(index=False)))
    try:
        return load_ontology(ontology)
    except FileNotFoundError as e:
        if ontology is not None:
            raise  # an explicit path that is wrong is an error
        warnings.warn(f"{e}: AudioSet cleaning uses the names and the ESC-50 mapping only, no ontology "
                      "descendants (pass ontology= or set $CLAP_ONTOLOGY)", stacklevel=3)
        return None


def audioset_classes_removed(classes: pd.DataFrame, class_names: Sequence[str] = ESC50_CLASSES,
                             ontology: "Ontology | str | Path | None" = None, expand: bool = True) -> pd.DataFrame:
    """The AudioSet classes that clean pretraining drops for `class_names`, and why.

    `classes` is :func:`read_audioset_class_labels` (mid, display_name) or :func:`read_ontology` (id, name, ...)
    output. A class goes when

    * its display name holds a word of a class name (the leakage filter: reason ``name match``), or
    * it is one of the class's AudioSet classes in :func:`clap_lib.ontology.esc50_audioset_names`
      (Bark, Meow, Applause, Laughter, ...: reason ``mapped to ESC-50 <class>``), or
    * it lies below a mapped class in the ontology (reason ``descendant of <name>``); the first reason wins.
      Name matches are not expanded: below them lie other sounds (Keyboard (musical) -> Piano).

    The expansion uses `ontology` (an :class:`~clap_lib.ontology.Ontology` or a path), else the child_ids of
    an ontology table, else the ontology found by :func:`clap_lib.ontology.load_ontology`. ``expand=False``
    is the names-only rule of earlier versions. Returns columns mid, name, matched_words (class words hit by
    the name; ``()`` otherwise), esc50_classes (the classes responsible), reason; in the input order.
    """
    table = _class_table(classes).reset_index(drop=True)
    names = list(table["name"].astype(str))
    if not expand:
        res = leakage_filter(names, class_names)
        out = table.assign(matched_words=res.matched_words)
        return out[~res.keep].reset_index(drop=True)
    leakage_filter([], class_names)  # validates class_names (empty, a bare string, stop words only)
    class_names = list(class_names)
    onto = _as_ontology(classes, ontology)
    if onto is None:  # the label table stands in for the ontology, without children
        onto = Ontology(tuple(AudioSetClass(id=str(m), name=str(n), description="", child_ids=(), restrictions=())
                              for m, n in zip(table["mid"], table["name"])))
    mapped = esc50_audioset_names()
    why: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}  # mid -> (words, esc50 classes, reason)
    words_of = leakage_filter(list(onto.names), class_names).matched_words
    for c, words in zip(onto.classes, words_of):
        if words:
            owners = tuple(k for k in class_names if not leakage_filter([c.name], [k]).keep[0])
            why[c.id] = (words, owners, "name match: " + ", ".join(words))
    seeds: dict[str, str] = {}  # mapped class id -> its ESC-50 class
    for k in class_names:
        for name in mapped.get(k, ()):
            if name not in onto.by_name:
                continue  # a label table lacks the 105 ontology-only classes (Bay, Wildfire, ...)
            cid = onto.by_name[name].id
            seeds[cid] = k
            if cid not in why:
                why[cid] = ((), (k,), f"mapped to ESC-50 {k}")
    # only the mapped classes are expanded: below a name match lie other sounds (Keyboard (musical) -> Piano)
    for seed in [c.id for c in onto.classes if c.id in seeds]:  # ontology order: the reasons are stable
        for d in descendants(onto, seed):
            if d not in why:
                why[d] = ((), (seeds[seed],), f"descendant of {onto.by_id[seed].name}")
    hit = [m in why for m in table["mid"]]
    out = table[hit].reset_index(drop=True)
    rows = [why[m] for m in out["mid"]]
    return out.assign(matched_words=[r[0] for r in rows], esc50_classes=[r[1] for r in rows],
                      reason=[r[2] for r in rows])


def clean_audioset_segments(segments: pd.DataFrame, removed_mids: Collection[str]) -> pd.DataFrame:
    """Drop every segment any of whose labels is in `removed_mids` (e.g. `audioset_classes_removed(...)["mid"]`)."""
    removed = frozenset(removed_mids)
    keep = [removed.isdisjoint(labels) for labels in segments["labels"]]
    return segments[keep].reset_index(drop=True)


# --- the paper training set ----------------------------------------------------------------------


def paper_training_set(roots: Mapping[str, str | Path | None], require_audio: bool = True,
                       splits: Mapping[str, Sequence[str]] | None = None,
                       datasets: Sequence[str] = CAPTION_DATASETS) -> pd.DataFrame:
    """Union of the caption data sets' training splits (:data:`TRAINING_SPLITS`) as one pairs table.

    `roots` maps data set name -> root folder; every name in `datasets` must be there. Columns:
    :data:`PAIR_COLUMNS`.
    """
    splits = {**TRAINING_SPLITS, **(splits or {})}
    absent = [d for d in datasets if roots.get(d) in (None, "")]
    if absent:
        raise FileNotFoundError(f"no root given for {absent}; the paper training set needs "
                                f"{', '.join(datasets)}. " + " ".join(_how_to_get(d) for d in absent))
    frames = [read_caption_dataset(d, roots[d], splits[d], require_audio)[list(PAIR_COLUMNS)] for d in datasets]
    return pd.concat(frames, ignore_index=True)


def split_pairs_validation(pairs: pd.DataFrame, fraction: float = 0.2,
                           seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation) pairs; `fraction` of the audio files (not pairs) go to validation.

    Grouping by (dataset, audio_id) keeps every caption of one recording on the same side, so
    validation never scores captions of audio seen in training.
    """
    group = pairs.groupby(["dataset", "audio_id"], sort=False).ngroup().to_numpy()
    _, val_groups = split_validation(int(group.max()) + 1 if len(group) else 0, fraction, seed)
    is_val = np.isin(group, val_groups)
    return pairs[~is_val].reset_index(drop=True), pairs[is_val].reset_index(drop=True)


def filter_pairs(pairs: pd.DataFrame, class_names: Sequence[str] = ESC50_CLASSES) -> FilterResult:
    """The leakage filter over the `caption` column (see :func:`clap_lib.filtering.leakage_filter`)."""
    return leakage_filter(list(pairs["caption"].astype(str)), class_names)


def clean_pairs(pairs: pd.DataFrame, class_names: Sequence[str] = ESC50_CLASSES) -> pd.DataFrame:
    """The pairs whose caption names no word of `class_names` (default: all 50 ESC-50 classes)."""
    return pairs[filter_pairs(pairs, class_names).keep].reset_index(drop=True)


# --- locating roots and the dry run --------------------------------------------------------------


def default_roots(base: str | Path | None = None) -> dict[str, Path | None]:
    """Root of each data set: `$CLAP_<NAME>` if set, else `<base>/<name>` or `<base>/captions/<name>`.

    `base` defaults to :func:`clap_lib.esc50.shared_data_dir`. When neither folder exists the
    `<base>/<name>` path is still returned so the dry run can say where it looked; None if no base.
    """
    base = Path(base) if base is not None else shared_data_dir()
    roots: dict[str, Path | None] = {}
    for name in ALL_DATASETS:
        env = os.environ.get(ROOT_ENV[name])
        if env:
            roots[name] = Path(env)
        elif base is None:
            roots[name] = None
        else:
            roots[name] = next((p for p in (base / name, base / "captions" / name) if p.is_dir()), base / name)
    return roots


def _pair_counts(df: pd.DataFrame) -> dict[str, Any]:
    files = df.drop_duplicates("audio_path")
    clean = filter_pairs(df)
    return {
        "pairs_per_split": {str(k): int(v) for k, v in df.groupby("split", sort=False).size().items()},
        "n_pairs": len(df), "n_clean_pairs": clean.n_kept, "n_removed_pairs": clean.n_removed,
        "n_audio_files": len(files), "n_audio_present": int(files["audio_exists"].sum()),
        "n_missing_audio": int((~files["audio_exists"]).sum()),
        "n_pairs_missing_audio": int((~df["audio_exists"]).sum()),
    }


def _probe_captions(name: str, root: Path) -> dict[str, Any]:
    df = read_caption_dataset(name, root, require_audio=False)
    out = _pair_counts(df)
    train = df[df["split"].isin(TRAINING_SPLITS[name])]
    out["n_training_pairs"] = len(train)
    out["n_clean_training_pairs"] = filter_pairs(train).n_kept if len(train) else 0
    return out


def _probe_esc50(root: Path) -> dict[str, Any]:
    meta = read_esc50_meta(locate_esc50(root))
    return {"n_audio_files": len(meta), "n_audio_present": len(meta), "n_missing_audio": 0,
            "n_classes": int(meta["target"].nunique()), "n_folds": int(meta["fold"].nunique())}


def _probe_audioset(root: Path) -> dict[str, Any]:
    root = _require_root(root, "audioset")
    out: dict[str, Any] = {}
    classes = None
    if (root / "class_labels_indices.csv").is_file():
        classes = read_audioset_class_labels(root)
        out["n_classes"] = len(classes)
    if (root / "ontology.json").is_file():
        onto = read_ontology(root)
        out["n_ontology_classes"] = len(onto)
        classes = classes if classes is not None else onto
    ontology = root / "ontology.json" if (root / "ontology.json").is_file() else None
    removed = audioset_classes_removed(classes, ontology=ontology) if classes is not None else None
    if removed is not None:
        out["n_classes_removed"] = len(removed)
    if any((root / f).is_file() for f in AUDIOSET_SPLITS.values()):
        seg = read_audioset_segments(root, require_audio=False)
        out.update({
            "segments_per_split": {str(k): int(v) for k, v in seg.groupby("split", sort=False).size().items()},
            "n_segments": len(seg), "n_audio_files": len(seg), "n_audio_present": int(seg["audio_exists"].sum()),
            "n_missing_audio": int((~seg["audio_exists"]).sum()),
        })
        if removed is not None:
            out["n_clean_segments"] = len(clean_audioset_segments(seg, removed["mid"]))
    elif not out:
        raise FileNotFoundError(f"no AudioSet segment lists, class_labels_indices.csv or ontology.json in {root}. "
                                + _how_to_get("audioset"))
    else:
        out["missing"] = (f"segment lists ({', '.join(AUDIOSET_SPLITS.values())}) not in {root}: "
                          "metadata only, nothing to pretrain on")
    return out


def dry_run_report(roots: Mapping[str, str | Path | None]) -> dict[str, dict[str, Any]]:
    """What each data set root holds, without training or loading any model.

    For every name in :data:`ALL_DATASETS`: ``found`` (bool), ``root`` (where it looked, or None),
    ``missing`` (what is missing and where: the reader's error when not found; for AudioSet found with
    metadata only, the absent segment lists) and, when found, the counts: audio files
    referenced / present / missing, pairs per split, pairs and clean pairs (leakage filter, all 50
    ESC-50 classes), training-split pairs; for ESC-50 clips/classes/folds; for AudioSet classes,
    classes the filter removes, segments and clean segments.
    """
    probes = {"esc50": _probe_esc50, "audioset": _probe_audioset}
    report: dict[str, dict[str, Any]] = {}
    for name in ALL_DATASETS:
        root = roots.get(name)
        entry: dict[str, Any] = {"found": False, "root": None if root in (None, "") else str(root)}
        if entry["root"] is None:
            entry["missing"] = f"no root given (set ${ROOT_ENV[name]} or pass roots['{name}']). {_how_to_get(name)}"
        else:
            probe = probes.get(name) or (lambda r, n=name: _probe_captions(n, r))
            try:
                entry.update(probe(Path(root)))
                entry["found"] = True
            except (FileNotFoundError, ValueError, ImportError) as e:
                entry["missing"] = str(e)
        report[name] = entry
    return report


_COUNT_LABELS = (
    ("pairs_per_split", "pairs per split"), ("segments_per_split", "segments per split"),
    ("n_audio_files", "audio files referenced"), ("n_audio_present", "audio files present"),
    ("n_missing_audio", "audio files missing"), ("n_pairs", "pairs"),
    ("n_clean_pairs", "clean pairs (leakage filter, 50 ESC-50 classes)"), ("n_removed_pairs", "pairs removed"),
    ("n_training_pairs", "training-split pairs"), ("n_clean_training_pairs", "clean training-split pairs"),
    ("n_classes", "classes"), ("n_folds", "folds"), ("n_ontology_classes", "ontology classes"),
    ("n_classes_removed", "classes removed by the filter"), ("n_segments", "segments"),
    ("n_clean_segments", "clean segments"),
)


def format_dry_run(report: Mapping[str, Mapping[str, Any]]) -> str:
    """The dry-run report as plain text, one block per data set."""
    lines = []
    for name, entry in report.items():
        status = "found" if entry.get("found") else "MISSING"
        lines.append(f"{name}: {status} ({entry.get('root') or 'no root'})")
        for key, label in _COUNT_LABELS:
            if key in entry:
                value = entry[key]
                text = ", ".join(f"{k} {v:,}" for k, v in value.items()) if isinstance(value, dict) else f"{value:,}"
                lines.append(f"  {label}: {text}")
        if entry.get("missing"):
            lines.append(f"  missing: {entry['missing']}")
    return "\n".join(lines)


# --- downloading ---------------------------------------------------------------------------------


def download(name: str, dest: str | Path, timeout: float = 60.0) -> list[Path]:
    """Fetch the official files of `name` (a key of :data:`DOWNLOADS`) into `dest`; returns their paths.

    Files already in `dest` are kept (a rerun resumes). Archives are not extracted. Raises
    ConnectionError naming the URL when the network cannot be reached.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown download {name!r}; allowed: {', '.join(DOWNLOADS)}")
    dest = Path(dest)
    paths = []
    for fname, url in DOWNLOADS[name].items():
        target = dest / fname
        if not target.is_file():
            atomic_write(target, lambda tmp, u=url: _fetch(u, tmp, timeout))
        paths.append(target)
    return paths


def _fetch(url: str, target: Path, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:  # not local disk errors
        raise ConnectionError(f"cannot download {url}: {getattr(e, 'reason', e)}. This needs internet access; "
                              f"on an offline machine fetch the file elsewhere and copy it to {target.parent}") from e
