"""What the paper's clean rule does with ESC-50's own recordings in FSD50K and Clotho; the `overlap` command.

IDs, join and texts: :mod:`clap_lib.data.freesound` (its docstring). An example **survives** when at least one of
its texts is kept by the clean rule: a clean model still trains on that ESC-50 test recording.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.data import freesound as fs
from clap_lib.data.esc50 import ESC50_CLASSES, locate_esc50, read_esc50_meta
from clap_lib.paper.datasets import default_roots, filter_pairs, read_clotho
from clap_lib.paper.datasets.clotho import CLOTHO_SPLITS

__all__ = [
    "label_text",
    "example_texts",
    "clean_texts",
    "clean_survival",
    "clip_table",
    "share_table",
    "headline",
    "survivor_counts",
    "surviving_texts",
    "caption_matches",
    "Overlap",
    "shared_overlap",
    "overlap_report",
    "overlap_class_table",
    "main",
]


def label_text(mids: Sequence[str], names: dict[str, str]) -> str:
    """An FSD50K clip's text: its label names in the official order, `_` read as a space, joined by ', '."""
    unknown = [m for m in mids if m not in names]
    if unknown:
        raise ValueError(f"FSD50K label id(s) {unknown} are not in the vocabulary")
    return ", ".join(names[m].replace("_", " ") for m in mids)


def example_texts(
    examples: pd.DataFrame,
    fsd50k_clips: pd.DataFrame | None,
    vocabulary: pd.DataFrame | None,
    clotho_captions: pd.DataFrame | None,
) -> pd.DataFrame:
    """The texts the clean rule reads for each distinct (dataset, split, example): one row per text; an example with
    no text here has one row with text None. `clotho_captions`: a pairs table with `split`, `audio_id` (file name)
    and `caption` (:func:`clap_lib.paper.datasets.read_clotho`), matched by split and file name (a few file names recur
    in two Clotho v2 splits)."""
    ex = examples[["dataset", "split", "example"]].drop_duplicates()
    rows = []
    fsd = ex[ex["dataset"] == "fsd50k"]
    if len(fsd):
        if fsd50k_clips is None or vocabulary is None:
            raise ValueError("FSD50K examples need the FSD50K clips (labels) and vocabulary to give them a text")
        names = dict(zip(vocabulary["mid"], vocabulary["display_name"]))
        mids = dict(zip(fsd50k_clips["freesound_id"].astype(str), fsd50k_clips["mids"]))
        rows += [
            ("fsd50k", s, e, label_text(mids[e], names) if e in mids else None)
            for s, e in fsd[["split", "example"]].itertuples(index=False)
        ]
    clo = ex[ex["dataset"] == "clotho"]
    if len(clo):
        caps = (
            clotho_captions.groupby(["split", "audio_id"])["caption"].apply(list).to_dict()
            if clotho_captions is not None
            else {}
        )
        rows += [
            ("clotho", s, e, c)
            for s, e in clo[["split", "example"]].itertuples(index=False)
            for c in caps.get((s, e), [None])
        ]
    other = ex[~ex["dataset"].isin(["fsd50k", "clotho"])]
    rows += [(d, s, e, None) for d, s, e in other.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["dataset", "split", "example", "text"])


def clean_texts(texts: pd.DataFrame) -> pd.DataFrame:
    """:func:`example_texts` with `has_text` and `kept`: whether the paper's clean rule keeps the text (no word of any
    of the 50 ESC-50 class names; False where there is no text)."""
    has = texts["text"].notna().to_numpy()
    keep = np.zeros(len(texts), dtype=bool)
    if has.any():
        keep[has] = filter_pairs(texts[has].rename(columns={"text": "caption"}), ESC50_CLASSES).keep
    return texts.assign(has_text=has, kept=keep)


def clean_survival(t: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, split, example) of :func:`clean_texts`: n_texts (texts here), n_kept (texts the clean rule
    keeps), has_text, survives (at least one text kept)."""
    out = t.groupby(["dataset", "split", "example"], sort=False).agg(
        n_texts=("has_text", "sum"), n_kept=("kept", "sum")
    )
    out = out.reset_index().astype({"n_texts": int, "n_kept": int})
    return out.assign(has_text=out["n_texts"] > 0, survives=out["n_kept"] > 0)


def _key(dataset: str, part: str) -> str:
    return f"{dataset} {part}"


def clip_table(
    meta: pd.DataFrame, matches: pd.DataFrame, survival: pd.DataFrame, parts: Sequence[tuple[str, str]] = fs.PARTS
) -> pd.DataFrame:
    """Per ESC-50 clip (index filename; fold, category, src_file): for each (data set, part) whether the part holds
    its recording (`in <set> <part>`), whether an example of it there survives the clean rule (`clean <set> <part>`)
    and whether one has no text here (`no text <set> <part>`); per data set `in <set>`; and `clean training`: an
    example in a training part (:data:`clap_lib.data.freesound.TRAINING_PARTS`) survives."""
    out = meta.set_index("filename")[["fold", "category", "src_file"]].copy()
    m = matches.merge(survival, on=["dataset", "split", "example"], how="left")
    for d, p in parts:
        mine = m[(m["dataset"] == d) & (m["part"] == p)]
        out[f"in {_key(d, p)}"] = out.index.isin(mine["filename"])
        out[f"clean {_key(d, p)}"] = out.index.isin(mine.loc[mine["survives"].fillna(False).astype(bool), "filename"])
        out[f"no text {_key(d, p)}"] = out.index.isin(
            mine.loc[~mine["has_text"].fillna(False).astype(bool), "filename"]
        )
    for d in dict.fromkeys(d for d, _ in parts):
        out[f"in {d}"] = out.index.isin(m.loc[m["dataset"] == d, "filename"])
    train = [(d, p) for d, p in parts if (d, p) in fs.TRAINING_PARTS]
    out["clean training"] = out[[f"clean {_key(d, p)}" for d, p in train]].any(axis=1) if train else False
    return out


def share_table(clips: pd.DataFrame, by: str, columns: Sequence[str]) -> pd.DataFrame:
    """The share of ESC-50 clips per `by` (category or fold) for which each boolean column of :func:`clip_table`
    holds, plus the clips counted; the last row is every clip."""
    t = clips.groupby(by)[list(columns)].mean()
    t.loc["all clips"] = clips[list(columns)].mean()
    t.insert(0, "clips", [*clips.groupby(by).size().tolist(), len(clips)])
    return t


def headline(clips: pd.DataFrame) -> dict:
    """The overlap in numbers: clips whose recording is in FSD50K / its dev set / Clotho / its splits, the classes
    they span, the clips whose recording is in a training part (`training`), those a clean training example still
    carries (`clean_training`: a lower bound) and those not counted there with a training example that has no text
    here (`no_text_training`: clean_training + no_text_training is the upper bound)."""

    def n(col: str) -> int:
        return int(clips[col].sum()) if col in clips else 0

    def classes(col: str) -> int:
        return int(clips.loc[clips[col], "category"].nunique()) if col in clips else 0

    train = clips[[f"in {_key(d, p)}" for d, p in fs.TRAINING_PARTS if f"in {_key(d, p)}" in clips]]
    no_text = clips[[f"no text {_key(d, p)}" for d, p in fs.TRAINING_PARTS if f"no text {_key(d, p)}" in clips]]

    return {
        "n_clips": len(clips),
        "fsd50k": n("in fsd50k"),
        "fsd50k_classes": classes("in fsd50k"),
        "fsd50k_dev": n("in fsd50k dev"),
        "fsd50k_eval": n("in fsd50k eval"),
        "clotho": n("in clotho"),
        "clotho_classes": classes("in clotho"),
        **{f"clotho_{s}": n(f"in clotho {s}") for s in CLOTHO_SPLITS},
        "either": int(clips[[c for c in ("in fsd50k", "in clotho") if c in clips]].any(axis=1).sum()),
        "training": int(train.any(axis=1).sum()),
        "clean_training": n("clean training"),
        "clean_training_classes": classes("clean training"),
        # not counted as surviving, but a training example of its recording has no text here: unknown
        "no_text_training": int((no_text.any(axis=1) & ~clips["clean training"]).sum()),
    }


def survivor_counts(matches: pd.DataFrame, survival: pd.DataFrame) -> pd.DataFrame:
    """Per (data set, part) of :data:`clap_lib.data.freesound.PARTS` (then any other part present): the training examples that are an
    ESC-50 source recording, those with a text here, those the clean rule keeps (at least one text kept), and their
    texts: all and kept."""
    ex = (
        matches[["dataset", "split", "part", "example"]]
        .drop_duplicates()
        .merge(survival, on=["dataset", "split", "example"])
    )
    rows = []
    for d, p in dict.fromkeys([*fs.PARTS, *map(tuple, ex[["dataset", "part"]].to_numpy())]):
        e = ex[(ex["dataset"] == d) & (ex["part"] == p)]
        rows.append(
            {
                "data set": d,
                "part": p,
                "in the training set": (d, p) in fs.TRAINING_PARTS,
                "overlapping examples": len(e),
                "with a text here": int(e["has_text"].sum()),
                "surviving clean": int(e["survives"].sum()),
                "texts": int(e["n_texts"].sum()),
                "texts kept": int(e["n_kept"].sum()),
            }
        )
    return pd.DataFrame(rows)


def surviving_texts(texts: pd.DataFrame, matches: pd.DataFrame, parts=fs.TRAINING_PARTS) -> pd.DataFrame:
    """The texts of overlapping examples in `parts` that the clean rule keeps: per (data set, text) the examples
    carrying it and the ESC-50 classes of their recordings, most examples first."""
    ex = matches[np.array([(d, p) in set(parts) for d, p in zip(matches["dataset"], matches["part"])], dtype=bool)]
    kept = texts[texts["kept"]].merge(
        ex[["dataset", "split", "example", "category"]].drop_duplicates(), on=["dataset", "split", "example"]
    )
    g = kept.groupby(["dataset", "text"])
    out = pd.DataFrame(
        {"examples": g["example"].nunique(), "ESC-50 classes": g["category"].agg(lambda c: ", ".join(sorted(set(c))))}
    )
    return (
        out.reset_index()
        .sort_values(["examples", "dataset", "text"], ascending=[False, True, True], kind="stable")
        .reset_index(drop=True)
    )


def caption_matches(clotho_clips: pd.DataFrame, clotho_captions: pd.DataFrame | None) -> pd.DataFrame:
    """Per Clotho split of the ID list: its files and those the caption files found match by split and file name."""
    have = set(zip(clotho_captions["split"], clotho_captions["audio_id"])) if clotho_captions is not None else set()
    t = clotho_clips.assign(matched=[k in have for k in zip(clotho_clips["split"], clotho_clips["file_name"])])
    out = t.groupby("split", sort=False).agg(files=("file_name", "size"), with_captions=("matched", "sum"))
    out = out.reindex([s for s in CLOTHO_SPLITS if s in out.index])
    out.loc["all"] = out.sum()
    return out.astype(int)


@dataclass(frozen=True)
class Overlap:
    """Everything about the overlap of ESC-50 with FSD50K and Clotho (see the module docstring)."""

    clips: pd.DataFrame  # clip_table
    matches: pd.DataFrame  # fs.match_esc50
    survival: pd.DataFrame  # clean_survival of every overlapping example
    survivors: pd.DataFrame  # survivor_counts
    texts: pd.DataFrame  # clean_texts of every overlapping example
    captions: pd.DataFrame  # caption_matches
    numbers: dict  # headline


def shared_overlap(
    meta: pd.DataFrame, data_root: str | Path | None = None, clotho_captions_root: str | Path | None = None
) -> Overlap:
    """The overlap from the shared ID lists (`<data root>/freesound/`) and the Clotho caption files
    (`clotho_captions_root`, default: the Clotho root of :func:`clap_lib.paper.datasets.default_roots`)."""
    folder = fs.freesound_dir(data_root)
    fsd = fs.read_fsd50k_clips(folder / fs.FSD50K_CLIPS)
    vocab = fs.read_fsd50k_vocabulary(folder / fs.FSD50K_VOCABULARY)
    clo = fs.read_clotho_clips(folder / fs.CLOTHO_CLIPS)
    examples = pd.concat([fs.fsd50k_examples(fsd), fs.clotho_examples(clo)], ignore_index=True)
    matches = fs.match_esc50(meta, examples)
    cap_root = clotho_captions_root if clotho_captions_root is not None else default_roots(data_root)["clotho"]
    captions = read_clotho(cap_root, require_audio=False) if cap_root is not None and Path(cap_root).is_dir() else None
    texts = clean_texts(example_texts(matches, fsd, vocab, captions))
    survival = clean_survival(texts)
    clips = clip_table(meta, matches, survival)
    return Overlap(
        clips,
        matches,
        survival,
        survivor_counts(matches, survival),
        texts,
        caption_matches(clo, captions),
        headline(clips),
    )


# --- the command: a user's training data against ESC-50 ------------------------------------------------------


def overlap_class_table(matches: pd.DataFrame) -> pd.DataFrame:
    """Per ESC-50 class found: its clips whose recording is in the data (of 40), their folds, the data's splits."""
    if matches.empty:
        return pd.DataFrame(columns=["clips", "folds", "splits"]).rename_axis("class")
    g = matches.groupby("category")
    return pd.DataFrame(
        {
            "clips": g["filename"].nunique(),
            "folds": g["fold"].agg(lambda f: ",".join(map(str, sorted(set(f))))),
            "splits": g["split"].agg(lambda s: ",".join(sorted(set(s)))),
        }
    ).rename_axis("class")


def overlap_report(meta: pd.DataFrame, examples: pd.DataFrame, source: str, n_blank: int = 0) -> dict:
    """What a training set (examples with Freesound IDs) holds of ESC-50: IDs, clips, classes, folds, per split and
    the clips themselves, as JSON-ready data."""
    m = fs.match_esc50(meta, examples)
    ids = set(examples["freesound_id"].dropna().astype("int64"))
    per_split = {
        s: {"ids": int(g["freesound_id"].nunique()), "esc50_clips": int(m.loc[m["split"] == s, "filename"].nunique())}
        for s, g in examples.groupby("split", sort=True)
    }
    clips = m.groupby("filename", sort=True).agg(
        fold=("fold", "first"),
        category=("category", "first"),
        src_file=("src_file", "first"),
        splits=("split", lambda s: sorted(set(s))),
    )
    return {
        "source": source,
        "n_ids": len(ids),
        "n_empty_ids_left_out": n_blank,
        "n_esc50_sources_present": len(ids & set(meta["src_file"].astype("int64"))),
        "n_esc50_clips": len(clips),
        "n_esc50_classes": int(clips["category"].nunique()),
        "clips_per_class": {k: int(v) for k, v in clips["category"].value_counts().sort_index().items()},
        "clips_per_fold": {int(k): int(v) for k, v in clips["fold"].value_counts().sort_index().items()},
        "per_split": per_split,
        "clips": [
            {
                "filename": f,
                "fold": int(r.fold),
                "category": r.category,
                "src_file": int(r.src_file),
                "splits": list(r.splits),
            }
            for f, r in clips.iterrows()
        ],
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m clap_lib overlap",
        description="Which ESC-50 clips, classes and folds your training data contains: "
        "ESC-50's clips were cut from Freesound recordings (src_file), so a "
        "training set built from Freesound may hold the test recordings.",
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", metavar="CSV", help="a CSV with a column of Freesound IDs (and optionally `split`)")
    src.add_argument("--fsd50k-root", metavar="DIR", help="an FSD50K root (FSD50K.ground_truth/{dev,eval}.csv)")
    src.add_argument("--clotho-root", metavar="DIR", help="a Clotho root (clotho_metadata_{split}.csv)")
    ap.add_argument("--id-column", default="freesound_id", help="the ID column of --ids (default freesound_id)")
    ap.add_argument("--esc50", default=None, help="ESC-50 root (default: $CLAP_ESC50, then ../shared/data/esc50)")
    ap.add_argument("--out", default=None, metavar="DIR", help="also write overlap.json and overlap_clips.csv here")
    ap.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    return ap


def _examples_from_args(a: argparse.Namespace) -> tuple[pd.DataFrame, str, int]:
    if a.ids is not None:
        got = fs.read_id_csv(a.ids, a.id_column)
        return fs.id_examples(got.ids, Path(a.ids).name), got.source, got.n_blank
    if a.fsd50k_root is not None:
        return fs.fsd50k_examples(fs.read_fsd50k_ground_truth(a.fsd50k_root)), str(a.fsd50k_root), 0
    clips = fs.read_clotho_metadata(a.clotho_root)
    return fs.clotho_examples(clips), str(a.clotho_root), int(clips["freesound_id"].isna().sum())


def main(argv: list[str] | None = None) -> int:
    """`python -m clap_lib overlap`: bad input stops with one line naming it (exit 2) before ESC-50 is read."""
    a = _parser().parse_args(argv)
    try:
        examples, source, n_blank = _examples_from_args(a)
        meta = read_esc50_meta(locate_esc50(a.esc50))
        rep = overlap_report(meta, examples, source, n_blank)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.out is not None:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "overlap.json").write_text(json.dumps(rep, indent=2) + "\n")
        table = pd.DataFrame(rep["clips"], columns=["filename", "fold", "category", "src_file", "splits"])
        table.assign(splits=table["splits"].map(",".join)).to_csv(out / "overlap_clips.csv", index=False)
    if a.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(
        f"{rep['n_ids']} distinct Freesound IDs in {source} ({rep['n_empty_ids_left_out']} empty left out); "
        f"{rep['n_esc50_sources_present']} are ESC-50 source recordings: {rep['n_esc50_clips']} of {len(meta)} "
        f"ESC-50 clips, {rep['n_esc50_classes']} of {len(ESC50_CLASSES)} classes."
    )
    if rep["n_esc50_clips"]:
        m = fs.match_esc50(meta, examples)
        print(overlap_class_table(m).to_string())
        print("clips per fold: " + ", ".join(f"{k}: {v}" for k, v in rep["clips_per_fold"].items()))
    return 0
