"""How well the caption filters do on the real AudioCaps and Clotho text: what they remove, what they miss.

Two removal rules, as in :func:`clap_lib.data.filtering.filter_level`: the paper's literal rule (``clean``: a
caption holding a word of an ESC-50 class name goes) and ``strict`` (the ontology-expanded word set). Per
ESC-50 class and data set, :func:`audit_captions` counts the captions each rule removes, the share of audio
files that lose every caption, and the errors code can find:

* likely false positives: removed captions that use the class word in another sense, found by the
  documented patterns of :data:`clap_lib.data.caption_pools.WRONG_SENSE` (gunfire is no crackling fire);
* likely false negatives: captions the literal rule keeps although they describe the class's sound, found by
  the class's vocabulary (:func:`clap_lib.data.filtering.class_vocabulary`; "applause" for clapping, "barking" for
  dog). :data:`MISSED_SYNONYMS` lists the cases the book discusses; each is tested.

The tables have human column names so that the book can show them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from clap_lib.data.caption_pools import POOL_SOURCES, class_pools, locate_captions, wrong_sense_hits
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import class_words, leakage_filter, strict_words
from clap_lib.paper.datasets import read_audiocaps, read_clotho

__all__ = ["MISSED_SYNONYMS", "FilterAudit", "all_caption_table", "audit_captions"]

#: Words for an ESC-50 class's sound that the paper's literal rule misses and strict catches (checked by
#: tests/test_filter_audit.py on hand-written captions; the audit counts them on the real files).
MISSED_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "dog": ("barking", "growling", "puppy"),
        "pig": ("oink",),
        "cow": ("moo",),
        "frog": ("croak",),
        "cat": ("meow", "kitten"),
        "hen": ("cluck",),
        "insects": ("bees",),
        "sheep": ("bleat",),
        "crow": ("caw",),
        "rain": ("raindrops",),
        "sea_waves": ("ocean", "surf"),
        "chirping_birds": ("tweeting",),
        "thunderstorm": ("thunder",),
        "clapping": ("applause",),
        "footsteps": ("walking", "steps"),
        "laughing": ("laughter",),
        "brushing_teeth": ("toothbrush",),
        "keyboard_typing": ("typewriter",),
        "car_horn": ("honk",),
        "engine": ("motor", "revving"),
        "train": ("locomotive",),
        "church_bells": ("chime",),
        "airplane": ("aircraft", "plane", "jet"),
        "helicopter": ("chopper",),
        "fireworks": ("firecracker",),
    }
)


_DISPLAY = {"audiocaps": "AudioCaps", "clotho": "Clotho"}


@dataclass(frozen=True)
class FilterAudit:
    """summary: one row per data set; per_class: one row per ESC-50 class; false_positives: one row per
    (class, wrong-sense pattern) that hits; false_negatives: one row per (class, vocabulary word) of the
    captions the literal rule keeps although they are in the class's pool (a caption with two such words counts
    for both). Examples are up to ``n_examples`` captions in file order, joined by " | "."""

    summary: pd.DataFrame
    per_class: pd.DataFrame
    false_positives: pd.DataFrame
    false_negatives: pd.DataFrame


def all_caption_table(
    captions_root: str | Path | None = None, splits: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """AudioCaps and Clotho captions, every split present unless ``splits`` names them per data set
    (``{"clotho": ["development"]}``): columns source, split, item_id (youtube_id / file_name), caption."""
    root = locate_captions(captions_root)
    splits = splits or {}
    ac = read_audiocaps(root / "audiocaps", splits.get("audiocaps"), require_audio=False)
    cl = read_clotho(root / "clotho", splits.get("clotho"), require_audio=False)
    frames = [
        pd.DataFrame(
            {"source": "audiocaps", "split": ac["split"], "item_id": ac["youtube_id"], "caption": ac["caption"]}
        ),
        pd.DataFrame({"source": "clotho", "split": cl["split"], "item_id": cl["audio_id"], "caption": cl["caption"]}),
    ]
    return pd.concat(frames, ignore_index=True)


def _removed_by_class(matched: list[tuple[str, ...]], words_of: Mapping[str, Sequence[str]]) -> np.ndarray:
    """(captions x classes) bool: caption removed because of a word of that class."""
    col = {}
    for j, ws in enumerate(words_of.values()):
        for w in ws:
            col.setdefault(w, []).append(j)
    out = np.zeros((len(matched), len(words_of)), dtype=bool)
    for i, ws in enumerate(matched):
        for w in ws:
            out[i, col[w]] = True
    return out


def _pct(num: float, den: float) -> float:
    return round(100.0 * num / den, 1) if den else float("nan")


def _files_losing_all(codes: np.ndarray, removed: np.ndarray) -> float:
    """Percent of the distinct items (integer ``codes``) whose every caption is ``removed``."""
    n_caps = np.bincount(codes)
    if not n_caps.any():
        return float("nan")
    n_removed = np.bincount(codes, weights=removed.astype(float), minlength=len(n_caps))
    present = n_caps > 0
    return _pct(int((n_removed[present] == n_caps[present]).sum()), int(present.sum()))


def _examples(texts: Sequence[str], n: int) -> str:
    return " | ".join(list(dict.fromkeys(texts))[:n])


def audit_captions(captions: pd.DataFrame, classes: Sequence[str] = ESC50_CLASSES, n_examples: int = 3) -> FilterAudit:
    """Audit both removal rules on ``captions`` (columns source, item_id, caption: :func:`all_caption_table`
    or :func:`clap_lib.data.caption_pools.real_caption_table`) for ``classes`` (default all 50)."""
    classes = list(classes)
    texts = list(captions["caption"].astype(str))
    source = captions["source"].to_numpy()
    items = captions["source"].astype(str) + "/" + captions["item_id"].astype(str)
    codes = pd.factorize(items)[0]
    lit_words = {c: class_words([c]) for c in classes}
    strict_of = {c: strict_words([c]) for c in classes}
    lit = leakage_filter(texts, class_words(classes))
    strict = leakage_filter(texts, strict_words(classes))
    lit_c = _removed_by_class(lit.matched_words, lit_words)
    strict_c = _removed_by_class(strict.matched_words, strict_of)

    # captions that describe a class's sound: its pool over all captions (duplicates share their first text)
    pools = class_pools(captions, classes)
    described: dict[str, set[str]] = {c: set(g["caption"]) for c, g in pools.groupby("category")}
    pool_words = {(c, t): w for c, t, w in zip(pools["category"], pools["caption"], pools["matched_words"])}
    described_any = set(pools["caption"])
    any_described = np.fromiter((t in described_any for t in texts), bool, len(texts))

    sources = [s for s in POOL_SOURCES if (source == s).any()]
    summary = []
    for s in sources:
        m = source == s
        survivors = m & lit.keep
        summary.append(
            {
                "Data set": _DISPLAY[s],
                "Captions": int(m.sum()),
                "Audio files": int(items[m].nunique()),
                "Removed, paper's rule": int((m & ~lit.keep).sum()),
                "Removed, paper's rule (%)": _pct((m & ~lit.keep).sum(), m.sum()),
                "Removed, strict": int((m & ~strict.keep).sum()),
                "Removed, strict (%)": _pct((m & ~strict.keep).sum(), m.sum()),
                "Files losing every caption, paper's rule (%)": _files_losing_all(codes[m], ~lit.keep[m]),
                "Files losing every caption, strict (%)": _files_losing_all(codes[m], ~strict.keep[m]),
                "Survivors of the paper's rule that still describe an ESC-50 sound (%)": _pct(
                    (survivors & any_described).sum(), survivors.sum()
                ),
            }
        )

    per_class, fps, fns = [], [], []
    for j, c in enumerate(classes):
        row: dict[str, object] = {"ESC-50 class": c}
        for s in sources:
            m = source == s
            name = _DISPLAY[s]
            row[f"{name}: removed, paper's rule"] = int((m & lit_c[:, j]).sum())
            row[f"{name}: removed, strict"] = int((m & strict_c[:, j]).sum())
            row[f"{name}: files losing every caption, paper's rule (%)"] = _files_losing_all(codes[m], lit_c[m, j])
        fp_rows: dict[str, list[int]] = {}
        for i in np.flatnonzero(strict_c[:, j]):
            for pat in wrong_sense_hits(texts[i], c):
                fp_rows.setdefault(pat, []).append(int(i))
        n_fp_lit = len({i for ids in fp_rows.values() for i in ids if lit_c[i, j]})
        for pat, ids in fp_rows.items():
            ids_lit = [i for i in ids if lit_c[i, j]]
            fps.append(
                {
                    "ESC-50 class": c,
                    "Wrong sense": pat,
                    "Removed, paper's rule": len(ids_lit),
                    "Removed, strict": len(ids),
                    "Examples": _examples([texts[i] for i in (ids_lit or ids)], n_examples),
                }
            )
        missed: dict[str, list[int]] = {}  # vocabulary word -> missed captions holding it
        n_missed = 0
        for i in np.flatnonzero(~lit_c[:, j]):
            if texts[i] in described.get(c, ()):
                n_missed += 1
                for w in pool_words[(c, texts[i])]:
                    missed.setdefault(w, []).append(int(i))
        for word, ids in sorted(missed.items(), key=lambda kv: -len(kv[1])):
            fns.append(
                {
                    "ESC-50 class": c,
                    "Word": word,
                    "Missed by the paper's rule": len(ids),
                    "Caught by strict": int(strict_c[ids, j].sum()),
                    "Examples": _examples([texts[i] for i in ids], n_examples),
                }
            )
        row["Likely false positives, paper's rule"] = n_fp_lit
        row["Likely missed, paper's rule"] = n_missed
        per_class.append(row)
    fp_columns = ["ESC-50 class", "Wrong sense", "Removed, paper's rule", "Removed, strict", "Examples"]
    fn_columns = ["ESC-50 class", "Word", "Missed by the paper's rule", "Caught by strict", "Examples"]
    return FilterAudit(
        summary=pd.DataFrame(summary),
        per_class=pd.DataFrame(per_class),
        false_positives=pd.DataFrame(fps, columns=fp_columns),
        false_negatives=pd.DataFrame(fns, columns=fn_columns),
    )
