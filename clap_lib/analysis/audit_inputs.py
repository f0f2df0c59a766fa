"""The audit's inputs: embeddings of ESC-50 clips from .npz / .csv / .parquet / .npy (:func:`load_embeddings`), class
targets from the ESC-50 file names or esc50.csv, and a reference results table. Inputs that would skew the
numbers are refused with an error naming them (see :mod:`clap_lib.analysis.audit`)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.data.esc50 import ESC50_CLASSES

META_COLUMNS = ("file", "target", "category", "fold")


FORMATS = (
    ".npz (numpy.savez: audio, files [, text, labels]), .csv / .parquet (a file column + one column per "
    "dimension) or .npy (numpy.save) with --files"
)


@dataclass(frozen=True)
class EmbeddingSet:
    """Audio embeddings of clips (one row per file) and optional text embeddings of class labels."""

    audio: np.ndarray
    files: np.ndarray
    text: np.ndarray | None = None
    label_names: np.ndarray | None = None
    source: Path | None = None
    notes: tuple[str, ...] = ()


def _listed(xs, n: int = 5) -> str:
    """``['a', 'b'] ...`` of the first n names (plain str, not numpy's np.str_ repr)."""
    xs = [str(x) for x in xs]
    return f"{xs[:n]}{' ...' if len(xs) > n else ''}"


def _check_2d(a: np.ndarray, what: str, path: Path) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{path}: {what} must be a numeric 2-D array (rows, dim), got shape {a.shape} dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: {what} holds NaN or inf values")
    return a.astype(np.float64)


def _basenames(files) -> np.ndarray:
    return np.array([Path(str(f)).name for f in np.asarray(files).ravel()])


def _check_declared_size(f, stored: int, where: str) -> None:
    """Read a .npy header from file object `f` and refuse an array whose declared shape needs more bytes than the
    `stored` bytes hold (a small crafted file declaring a huge array would otherwise be allocated first)."""
    try:
        version = np.lib.format.read_magic(f)
        shape, _, dtype = (
            np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
        )
    except ValueError:
        return  # not a .npy header: np.load says what is wrong
    if dtype.hasobject:
        return  # refused as pickled data by np.load
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > stored:
        raise ValueError(
            f"{where}: its header declares an array of shape {tuple(int(n) for n in shape)} "
            f"({declared:,} bytes) but the file holds {stored:,} bytes; not loaded"
        )


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    # np.load falls back to unpickling for anything that is not a zip, hence "contains pickled data": say
    # instead what the file should be
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (not a zip file); accepted formats: {FORMATS}")
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".npy"):
                with zf.open(info) as f:
                    _check_declared_size(f, info.file_size, f"{path} ({info.filename})")
    try:
        with np.load(path, allow_pickle=False) as z:
            name_key = "file" if "file" in z.files and "files" not in z.files else "files"
            missing = [k for k in ("audio", name_key) if k not in z.files]
            if missing:
                raise KeyError(
                    f"{path}: missing array(s) {missing}; an .npz needs 'audio' (n, d) and 'files' "
                    f"(n,) [+ 'text' (m, d), 'labels' (m,)]; found {sorted(z.files)}"
                )
            return (
                z["audio"],
                z[name_key],
                z["text"] if "text" in z.files else None,
                z["labels"] if "labels" in z.files else None,
            )
    except (zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: damaged .npz archive ({e})") from None
    except ValueError as e:
        if "pickle" not in str(e).lower():
            raise
        raise ValueError(
            f"{path}: holds object (pickled) arrays, which are not read; store names as strings, "
            f"e.g. files=np.array(names, dtype=str)"
        ) from None


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        _check_declared_size(f, path.stat().st_size, str(path))
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as e:
        # numpy reads a file without the .npy header as a pickle: that message would mislead
        why = "no .npy header" if "pickle" in str(e).lower() else str(e)
        raise ValueError(
            f"{path}: not a numeric .npy array written by numpy.save ({why}); accepted formats: {FORMATS}"
        ) from None


def _drop_duplicate_files(audio: np.ndarray, names: np.ndarray, path: Path):
    """Keep the first row of each file listed more than once with identical embeddings; refuse a file whose
    rows differ (which one is the clip cannot be told). Kept, a duplicate would count twice and sit at cosine
    distance 0 from its copy, inflating the silhouette."""
    uniq, first, counts = np.unique(names, return_index=True, return_counts=True)
    if len(uniq) == len(names):
        return audio, names, None
    dup = uniq[counts > 1]
    differ = [n for n in dup if not np.all(audio[names == n] == audio[names == n][0])]
    if differ:
        raise ValueError(
            f"{path}: {len(differ)} file(s) listed more than once with different embeddings, e.g. "
            f"{_listed(differ, 3)}; keep one row per clip"
        )
    keep = np.sort(first)
    note = (
        f"{len(names) - len(keep)} duplicate row(s) of {len(dup)} file(s) dropped (identical embeddings), "
        f"e.g. {_listed(dup, 3)}"
    )
    return audio[keep], names[keep], note


def load_embeddings(path: str | Path, files: str | Path | None = None) -> EmbeddingSet:
    """Read embeddings in one of the layouts of the module docstring; errors name the path and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file not found: {path}")
    suffix = path.suffix.lower()
    text = labels = None
    if suffix == ".npz":
        audio, names, text, labels = _read_npz(path)
        if labels is not None and text is None:
            raise KeyError(f"{path}: has 'labels' but no 'text' embeddings")
    elif suffix in (".csv", ".parquet"):
        df = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        if "file" not in df.columns:
            raise KeyError(f"{path}: no 'file' column; columns are {list(df.columns)[:8]}...")
        emb = df.drop(columns=[c for c in META_COLUMNS if c in df.columns])
        bad = [c for c in emb.columns if not pd.api.types.is_numeric_dtype(emb[c])]
        if bad:
            raise ValueError(
                f"{path}: non-numeric embedding column(s) {bad[:5]}; every column other than "
                f"{', '.join(META_COLUMNS)} must be an embedding dimension"
            )
        if emb.shape[1] == 0:
            raise ValueError(f"{path}: no embedding columns besides {', '.join(META_COLUMNS)}")
        audio, names = emb.to_numpy(), df["file"].to_numpy()
    elif suffix == ".npy":
        if files is None:
            raise ValueError(
                f"{path}: a .npy holds no file names; pass files= (CLI: --files LIST.txt), "
                f"a text file with one clip file name per line"
            )
        files = Path(files)
        if not files.is_file():
            raise FileNotFoundError(f"file list not found: {files}")
        audio = _read_npy(path)
        names = np.array([ln.strip() for ln in files.read_text().splitlines() if ln.strip()])
    else:
        raise ValueError(f"{path}: unsupported extension {suffix!r}; accepted formats: {FORMATS}")
    audio = _check_2d(audio, "audio", path)
    names = _basenames(names)
    if len(names) != len(audio):
        raise ValueError(f"{path}: {len(audio)} audio rows but {len(names)} file names")
    if len(audio) == 0:
        raise ValueError(f"{path}: no clips (0 audio rows)")
    audio, names, dup_note = _drop_duplicate_files(audio, names, path)
    if text is not None:
        text = _check_2d(text, "text", path)
        if labels is not None:
            labels = np.asarray(labels).astype(str).ravel()
            if len(labels) != len(text):
                raise ValueError(f"{path}: {len(text)} text rows but {len(labels)} labels")
        elif len(text) != len(ESC50_CLASSES):
            raise KeyError(
                f"{path}: 'text' has {len(text)} rows and there is no 'labels' array; without labels "
                f"text must hold the {len(ESC50_CLASSES)} ESC-50 classes in target order"
            )
        else:
            labels = np.array(ESC50_CLASSES)
    return EmbeddingSet(audio, names, text, labels, path, (dup_note,) if dup_note else ())


def parse_esc50_name(name: str) -> tuple[int, int]:
    """``(fold, target)`` of an ESC-50 file name ``{fold}-{src}-{take}-{target}.wav``."""
    stem = Path(str(name)).name.rsplit(".", 1)[0]
    parts = stem.split("-")
    try:
        if len(parts) != 4:
            raise ValueError
        fold, target = int(parts[0]), int(parts[-1])
    except ValueError:
        raise ValueError(
            f"not an ESC-50 file name ({{fold}}-{{src}}-{{take}}-{{target}}.wav): {name!r}; "
            f"pass the ESC-50 meta csv to map names to classes"
        ) from None
    if not 0 <= target < len(ESC50_CLASSES):
        raise ValueError(f"ESC-50 target {target} out of range 0..{len(ESC50_CLASSES) - 1} in {name!r}")
    return fold, target


def _stem(name: str) -> str:
    return Path(str(name)).name.rsplit(".", 1)[0]


def esc50_targets(files, meta: str | Path | pd.DataFrame | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(targets, folds)`` of the files: from the meta csv (columns filename, fold, target) when given, else
    parsed from the names. A file absent from the meta raises, naming it."""
    files = [str(f) for f in np.asarray(files).ravel()]  # plain str: messages name 'x.wav', not np.str_('x.wav')
    if meta is None:
        parsed = [parse_esc50_name(f) for f in files]
        return np.array([t for _, t in parsed], dtype=int), np.array([f for f, _ in parsed], dtype=int)
    if not isinstance(meta, pd.DataFrame):
        if not Path(meta).is_file():
            raise FileNotFoundError(f"ESC-50 meta csv not found: {meta}")
        meta = pd.read_csv(meta)
    miss = [c for c in ("filename", "fold", "target") if c not in meta.columns]
    if miss:
        raise KeyError(f"ESC-50 meta is missing column(s) {miss}")
    lookup = {_stem(f): (int(fo), int(t)) for f, fo, t in zip(meta["filename"], meta["fold"], meta["target"])}
    absent = [f for f in files if _stem(f) not in lookup]
    if absent:
        raise KeyError(f"{len(absent)} file(s) not in the ESC-50 meta, e.g. {absent[:3]}")
    return (
        np.array([lookup[_stem(f)][1] for f in files], dtype=int),
        np.array([lookup[_stem(f)][0] for f in files], dtype=int),
    )


def _norm_name(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _check_known(names, what: str) -> None:
    unknown = sorted(set(names) - set(ESC50_CLASSES))
    if unknown:
        raise ValueError(
            f"unknown {what} {_listed(unknown, 10)}: not ESC-50 classes; the classes are {', '.join(ESC50_CLASSES)}"
        )


def class_names(targets) -> np.ndarray:
    """Class name per clip: ESC-50 names for integer targets, normalised names (lower case, ``_`` for spaces)
    for string targets. A name that is not an ESC-50 class raises, naming it."""
    t = np.asarray(targets)
    if np.issubdtype(t.dtype, np.integer):
        if t.size and (t.min() < 0 or t.max() >= len(ESC50_CLASSES)):
            raise ValueError(f"integer targets must be ESC-50 targets 0..{len(ESC50_CLASSES) - 1}")
        return np.array(ESC50_CLASSES)[t]
    names = np.array([_norm_name(x) for x in t.ravel()])
    _check_known(names, "class name(s) in the targets")
    return names


def read_references(path: str | Path) -> tuple[pd.DataFrame, list[str] | None]:
    """A grid's results table (a ``results.csv`` or the grid folder holding it) and, when a ``config.json`` sits
    beside it, the run's target classes."""
    path = Path(path)
    csv = path / "results.csv" if path.is_dir() else path
    if not csv.is_file():
        raise FileNotFoundError(f"reference results not found: {csv}")
    df = pd.read_csv(csv)
    miss = [c for c in ("pretraining", "training") if c not in df.columns]
    if miss:
        raise KeyError(f"{csv}: reference results need column(s) {miss}")
    if df.empty:
        raise ValueError(f"{csv}: the reference results table has no rows")
    cfg = csv.parent / "config.json"
    classes = json.loads(cfg.read_text()).get("target_classes") if cfg.is_file() else None
    return df, classes
