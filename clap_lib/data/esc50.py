"""ESC-50 facts (classes, categories, folds) and data: locating and reading it, the target/background class split, folds and caption pairs.

Fold discipline of the lab profile: folds 1-4 are the only audio any training stage sees; fold 5 is
the evaluation fold (ESC-50 keeps every fragment of one source recording inside one fold, so no
recording leaks across this boundary).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.data.paths import shared_data_dir

#: ESC-50 category names, index = ``target`` column of ``esc50.csv``.
ESC50_CLASSES: tuple[str, ...] = (
    "dog",
    "rooster",
    "pig",
    "cow",
    "frog",
    "cat",
    "hen",
    "insects",
    "sheep",
    "crow",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crickets",
    "chirping_birds",
    "water_drops",
    "wind",
    "pouring_water",
    "toilet_flush",
    "thunderstorm",
    "crying_baby",
    "sneezing",
    "clapping",
    "breathing",
    "coughing",
    "footsteps",
    "laughing",
    "brushing_teeth",
    "snoring",
    "drinking_sipping",
    "door_wood_knock",
    "mouse_click",
    "keyboard_typing",
    "door_wood_creaks",
    "can_opening",
    "washing_machine",
    "vacuum_cleaner",
    "clock_alarm",
    "clock_tick",
    "glass_breaking",
    "helicopter",
    "chainsaw",
    "siren",
    "car_horn",
    "engine",
    "train",
    "church_bells",
    "airplane",
    "fireworks",
    "hand_saw",
)

ESC50_COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
ESC50_ENV = "CLAP_ESC50"
EVAL_FOLD = 5
ESC50_URL = "https://github.com/karoldvl/ESC-50/archive/master.zip"


# --- locating data ---------------------------------------------------------------------------------


def locate_esc50(root: str | Path | None = None) -> Path:
    """The ESC-50 root: the `root` argument, else `$CLAP_ESC50`, else `<shared data>/esc50`."""
    tried = []
    for cand, why in (
        (root, "parameter"),
        (os.environ.get(ESC50_ENV), f"${ESC50_ENV}"),
        (shared_data_dir() and shared_data_dir() / "esc50", "shared data folder"),
    ):
        if cand in (None, ""):
            continue
        cand = Path(cand)
        tried.append(f"{cand} ({why})")
        if _meta_csv(cand) is not None:
            return cand
        if why == "parameter":
            break  # an explicit path that is wrong is an error, not a cue to look elsewhere
    raise FileNotFoundError(
        "ESC-50 not found; tried: "
        + (", ".join(tried) or "nothing (no parameter, no env var, no shared data)")
        + f". Expected `meta/esc50.csv` (or `esc50.csv`) and `audio/` under the root. Get it with "
        f"`python -m clap_lib download esc50 --dest DIR` (needs internet; source {ESC50_URL}) and pass "
        f"its path, or set {ESC50_ENV}."
    )


def data_folders(esc50: str | Path | None = None, data_root: str | Path | None = None) -> str:
    """One line naming the data folders a run reads (printed at the start of `run` and `book build`)."""
    try:
        found = str(locate_esc50(esc50).resolve())
    except FileNotFoundError:
        found = f"not found ({esc50})" if esc50 else "not found"
    shared = Path(data_root).resolve() if data_root else shared_data_dir()
    return f"data folders: ESC-50 {found}; shared data {shared or 'none ($CLAP_DATA unset)'}"


def _meta_csv(root: Path) -> Path | None:
    for p in (root / "meta" / "esc50.csv", root / "esc50.csv"):
        if p.is_file():
            return p
    return None


def read_esc50_meta(root: str | Path) -> pd.DataFrame:
    """The official metadata with an absolute `path` column (`.wav` in the csv, `.wav` or `.flac` on disk)."""
    root = Path(root)
    csv = _meta_csv(root)
    if csv is None:
        raise FileNotFoundError(f"no meta/esc50.csv or esc50.csv under {root}")
    try:
        meta = pd.read_csv(csv)
    except Exception as e:
        raise ValueError(f"cannot parse ESC-50 metadata {csv}: {e}") from e
    missing = [c for c in ESC50_COLUMNS if c not in meta.columns]
    if missing:
        raise ValueError(f"{csv} lacks the ESC-50 columns {missing}; has {list(meta.columns)}")
    if meta.empty:
        raise ValueError(f"{csv} has no rows")
    for col in ("fold", "target"):
        num = pd.to_numeric(meta[col], errors="coerce")
        if num.isna().any() or (num != num.round()).any():
            row = meta[num.isna() | (num != num.round())].iloc[0]
            raise ValueError(f"{csv}: column {col!r} must hold integers; row of {row['filename']!r} has {row[col]!r}")
        meta[col] = num.astype(int)
    dup = meta["filename"][meta["filename"].duplicated()]
    if len(dup):
        raise ValueError(f"{csv}: {len(dup)} file(s) listed more than once, e.g. {dup.iloc[0]!r}")
    bad = meta[~meta["target"].between(0, 49) | ~meta["fold"].between(1, 5)]
    if len(bad):
        raise ValueError(
            f"{csv}: {len(bad)} rows with target outside 0..49 or fold outside 1..5, e.g. {bad.iloc[0].to_dict()}"
        )
    wrong = meta[meta["category"] != meta["target"].map(dict(enumerate(ESC50_CLASSES)))]
    if len(wrong):
        raise ValueError(
            f"{csv}: category/target mismatch, e.g. {wrong.iloc[0][['filename', 'target', 'category']].to_dict()}"
        )
    audio_dir = root / "audio"
    paths, absent = [], []
    for name in meta["filename"]:
        stem = Path(name).stem
        found = next(
            (audio_dir / f"{stem}{ext}" for ext in (".wav", ".flac", ".ogg") if (audio_dir / f"{stem}{ext}").is_file()),
            None,
        )
        paths.append(str(found) if found else None)
        if found is None:
            absent.append(name)
    if absent:
        raise FileNotFoundError(
            f"{len(absent)} ESC-50 audio files listed in {csv} are missing from {audio_dir}, e.g. {absent[:3]}"
        )
    # a truncated csv that still parses would silently drop clips: every audio file must be listed
    listed = {Path(n).stem for n in meta["filename"]}
    on_disk = [p for p in audio_dir.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg")]
    unlisted = sorted(p.name for p in on_disk if p.stem not in listed)
    if unlisted:
        raise ValueError(
            f"{csv} lists {len(meta):,} clips but {audio_dir} holds {len(on_disk):,} "
            f"audio files: {len(unlisted):,} are not in the csv, e.g. {unlisted[:3]}; restore the full "
            f"csv (or remove the extra files)"
        )
    return meta.assign(path=paths).reset_index(drop=True)


def data_fingerprint(meta: pd.DataFrame) -> str:
    """Content hash of the metadata and every audio file: a changed input never reuses a cached result."""
    h = hashlib.blake2b(digest_size=16)
    h.update(meta[list(ESC50_COLUMNS)].to_csv(index=False).encode())
    for p in meta["path"]:
        with open(p, "rb") as f:
            h.update(hashlib.blake2b(f.read(), digest_size=16).digest())
    return h.hexdigest()


# --- classes and splits ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassSplit:
    """Target classes T (the unseen zero-shot classes) and background classes B (the rest of the world)."""

    target: tuple[str, ...]
    background: tuple[str, ...]

    def swapped(self) -> ClassSplit:
        return ClassSplit(self.background, self.target)


def split_classes(
    seed: int = 0, per_category: int = 5, target_classes: tuple[str, ...] | None = None, swap: bool = False
) -> ClassSplit:
    """T = `per_category` classes from each of ESC-50's 5 major categories (seeded), or as given."""
    if target_classes:
        unknown = [c for c in target_classes if c not in ESC50_CLASSES]
        if unknown:
            raise ValueError(f"unknown ESC-50 class(es) {unknown}; allowed: {', '.join(ESC50_CLASSES)}")
        if len(set(target_classes)) in (0, 50):
            raise ValueError("target_classes must leave at least one background class")
        target = tuple(c for c in ESC50_CLASSES if c in set(target_classes))
    else:
        if not 1 <= per_category <= 9:
            raise ValueError(f"per_category must be in 1..9, got {per_category}")
        rng = np.random.default_rng(seed)
        idx = sorted(int(10 * cat + j) for cat in range(5) for j in rng.choice(10, per_category, replace=False))
        target = tuple(ESC50_CLASSES[i] for i in idx)
    split = ClassSplit(target, tuple(c for c in ESC50_CLASSES if c not in target))
    return split.swapped() if swap else split


def train_eval_masks(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(training clips = folds 1-4, evaluation clips = fold 5)."""
    ev = meta["fold"].to_numpy() == EVAL_FOLD
    return ~ev, ev


def make_pairs(meta: pd.DataFrame, clip_ok: np.ndarray, bank: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """One (clip, caption) pair per caption of the clip's class, for training clips (folds 1-4) only."""
    train, _ = train_eval_masks(meta)
    rows = [
        (i, meta.at[i, "category"], cap)
        for i in np.flatnonzero(train & clip_ok)
        for cap in bank[meta.at[i, "category"]]
    ]
    pairs = pd.DataFrame(rows, columns=["clip", "category", "caption"])
    assert (meta.loc[pairs["clip"], "fold"] != EVAL_FOLD).all()  # fold 5 never reaches training
    return pairs


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, val) index arrays, `fraction` of the items held out for validation."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_by_clip(clips: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices of `clips` (one clip id per row) with `fraction` of the distinct clips held out:
    every row of a clip lands on one side, so no clip (and none of its captions) is in both."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    clips = np.asarray(clips)
    uniq = np.unique(clips)
    tr_c, va_c = split_validation(len(uniq), fraction, seed)
    is_val = np.isin(clips, uniq[va_c])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def check_evaluation_clips(
    meta: pd.DataFrame, classes: tuple[str, ...], folds: tuple[int, ...] = (EVAL_FOLD,), minimum: int = 2
) -> None:
    """Every evaluated class needs `minimum` clips in the evaluation folds (a silhouette needs two per class):
    checked before any training, naming the classes short of clips."""
    ev = meta[meta["fold"].isin(list(folds))]
    counts = ev["category"].value_counts()
    short = {c: int(counts.get(c, 0)) for c in classes if counts.get(c, 0) < minimum}
    if short:
        raise ValueError(
            f"the evaluation fold(s) {list(folds)} hold fewer than {minimum} clips of "
            f"{len(short)} evaluated class(es): {short}; add clips or choose other target classes"
        )
