"""AudioSet (the clean audio pretraining): segment lists, class labels, the ontology, and
the cleaning that drops every class an ESC-50 class name reaches.

Layout (``root`` is the folder passed to the reader):

AudioSet (pretraining; research.google.com/audioset)
    ``root/{balanced_train,unbalanced_train,eval}_segments.csv``: comment lines starting with ``#``,
    then rows ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``; ``root/class_labels_indices.csv``
    (``index, mid, display_name``); ``root/ontology.json`` (list of {id, name, ...}).
    Audio: ``root/audio/{split}/Y{YTID}.wav`` with split in balanced_train / unbalanced_train / eval,
    fallback ``root/audio/{split}/{YTID}.wav``.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd

from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import leakage_filter
from clap_lib.data.ontology import AudioSetClass, Ontology, descendants, esc50_audioset_names, load_ontology
from clap_lib.paper.datasets.common import (
    _check_audio,
    _listing,
    _pick_splits,
    _read_json,
    _read_table,
    _require_root,
    _split_list,
)
from clap_lib.paper.datasets.roots import _how_to_get

AUDIOSET_SPLITS: dict[str, str] = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
ONTOLOGY_URL = "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json"


def _comment_lines(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            n += 1
    return n


def read_audioset_segments(
    root: str | Path, splits: Sequence[str] | None = None, require_audio: bool = True
) -> pd.DataFrame:
    """AudioSet segments: dataset, split, audio_id (YTID), audio_path, audio_exists, start/end_seconds, labels (mids)."""
    root = _require_root(root, "audioset")
    present = [s for s, f in AUDIOSET_SPLITS.items() if (root / f).is_file()]
    frames = []
    for split in _pick_splits(
        splits, list(AUDIOSET_SPLITS), present, "audioset", f"{', '.join(AUDIOSET_SPLITS.values())} in {root}"
    ):
        path = root / AUDIOSET_SPLITS[split]
        if not path.is_file():
            raise FileNotFoundError(f"AudioSet segment list {path} not found. {_how_to_get('audioset')}")
        cols = ["YTID", "start_seconds", "end_seconds", "positive_labels"]
        try:
            # header lines start with '#'; skipinitialspace lets the quoted label list after ", " parse
            seg = pd.read_csv(
                path,
                skiprows=_comment_lines(path),
                header=None,
                names=cols,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                quotechar='"',
            )
        except Exception as e:
            raise ValueError(f"cannot parse AudioSet segment list {path}: {e}") from e
        times = seg[["start_seconds", "end_seconds"]].apply(pd.to_numeric, errors="coerce")
        bad = times.isna().any(axis=1) | (seg["positive_labels"] == "")
        if bad.any():
            raise ValueError(
                f'{path}: {int(bad.sum())} rows are not `YTID, start, end, "mid,..."`, e.g. '
                f"{seg[bad].iloc[0].to_dict()}"
            )
        audio_dir = root / "audio" / split
        files = _listing(audio_dir)
        chosen = [f"Y{y}.wav" if f"Y{y}.wav" in files or f"{y}.wav" not in files else f"{y}.wav" for y in seg["YTID"]]
        df = pd.DataFrame(
            {
                "dataset": "audioset",
                "split": split,
                "audio_id": seg["YTID"].to_numpy(),
                "audio_path": [str(audio_dir / c) for c in chosen],
                "audio_exists": [c in files for c in chosen],
                "start_seconds": times["start_seconds"].to_numpy(),
                "end_seconds": times["end_seconds"].to_numpy(),
                "labels": [_split_list(s) for s in seg["positive_labels"]],
            }
        )
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
        raise FileNotFoundError(f"AudioSet ontology {path} not found. Get it from {ONTOLOGY_URL}")
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
    raise ValueError(
        f"expected AudioSet classes with columns (mid, display_name) or (id, name); got {list(classes.columns)}"
    )


def _as_ontology(classes: pd.DataFrame, ontology: Ontology | str | Path | None) -> Ontology | None:
    """The ontology to expand with: given, else built from an ontology table (has child_ids), else
    :func:`clap_lib.data.ontology.load_ontology` (``$CLAP_ONTOLOGY``, then the shared data folder); None, with a
    warning, when none of these exists (a label table alone then gets the mapping without descendants)."""
    if isinstance(ontology, Ontology):
        return ontology
    if ontology is None and {"id", "name", "child_ids"} <= set(classes.columns):
        return Ontology(
            tuple(
                AudioSetClass(
                    id=str(r.id),
                    name=str(r.name),
                    description=str(r.description),
                    child_ids=tuple(r.child_ids),
                    restrictions=tuple(r.restrictions),
                )
                for r in classes.itertuples(index=False)
            )
        )
    try:
        return load_ontology(ontology)
    except FileNotFoundError as e:
        if ontology is not None:
            raise  # an explicit path that is wrong is an error
        warnings.warn(
            f"{e}: AudioSet cleaning uses the names and the ESC-50 mapping only, no ontology "
            "descendants (pass ontology= or set $CLAP_ONTOLOGY)",
            stacklevel=3,
        )
        return None


def audioset_classes_removed(
    classes: pd.DataFrame,
    class_names: Sequence[str] = ESC50_CLASSES,
    ontology: Ontology | str | Path | None = None,
    expand: bool = True,
) -> pd.DataFrame:
    """The AudioSet classes that clean pretraining drops for `class_names`, and why.

    `classes` is :func:`read_audioset_class_labels` (mid, display_name) or :func:`read_ontology` (id, name, ...)
    output. A class goes when

    * its display name holds a word of a class name (the leakage filter: reason ``name match``), or
    * it is one of the class's AudioSet classes in :func:`clap_lib.data.ontology.esc50_audioset_names`
      (Bark, Meow, Applause, Laughter, ...: reason ``mapped to ESC-50 <class>``), or
    * it lies below a mapped class in the ontology (reason ``descendant of <name>``); the first reason wins.
      Name matches are not expanded: below them lie other sounds (Keyboard (musical) -> Piano).

    The expansion uses `ontology` (an :class:`~clap_lib.data.ontology.Ontology` or a path), else the child_ids of
    an ontology table, else the ontology found by :func:`clap_lib.data.ontology.load_ontology`. ``expand=False``
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
        onto = Ontology(
            tuple(
                AudioSetClass(id=str(m), name=str(n), description="", child_ids=(), restrictions=())
                for m, n in zip(table["mid"], table["name"])
            )
        )
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
    return out.assign(
        matched_words=[r[0] for r in rows], esc50_classes=[r[1] for r in rows], reason=[r[2] for r in rows]
    )


def clean_audioset_segments(segments: pd.DataFrame, removed_mids: Collection[str]) -> pd.DataFrame:
    """Drop every segment any of whose labels is in `removed_mids` (e.g. `audioset_classes_removed(...)["mid"]`)."""
    removed = frozenset(removed_mids)
    keep = [removed.isdisjoint(labels) for labels in segments["labels"]]
    return segments[keep].reset_index(drop=True)
