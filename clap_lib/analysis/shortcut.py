"""The "shortcut": a supervised AudioSet tagger (GPV-F) used directly as an ESC-50 classifier, no CLAP at all.

Each ESC-50 class is mapped to one or more AudioSet classes (the mapping is
:func:`clap_lib.data.ontology.esc50_audioset_names`, passed in here); the class score is the **maximum** of the
tagger's probabilities over its AudioSet classes. Max, not sum: the tagger's outputs are independent sigmoids
over a hierarchical label set (a dog clip fires "Dog", "Bark" and "Animal" together), so a sum counts one
event several times and favours classes that happen to be mapped to many AudioSet names; the max is unchanged
by adding a redundant synonym to a class's list.

An ESC-50 class with no AudioSet name in the mapping cannot be scored: its column is NaN (never a silent 0),
a warning names it, and :func:`shortcut_accuracy` leaves it (and its clips) out and lists it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = ["label_file_spelling", "restrict_to_labels", "shortcut_accuracy", "shortcut_scores", "unmatched_classes"]


def label_file_spelling(name: str) -> str:
    """AudioSet display name -> the spelling of the label files: runs of spaces / commas become one `_`
    ("Accelerating, revving, vroom" -> "Accelerating_revving_vroom"); already-normalised names are unchanged."""
    return re.sub(r"[\s,]+", "_", str(name).strip())


def unmatched_classes(mapping: Mapping[str, Sequence[str]], classes: Sequence[str]) -> list[str]:
    """The classes (in `classes` order) with no AudioSet name in `mapping`."""
    return [c for c in classes if not list(mapping.get(c, ()))]


def restrict_to_labels(
    mapping: Mapping[str, Sequence[str]], labels: Sequence[str]
) -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str]]]:
    """The mapping with only the names a network can score, and the (class, name) pairs dropped.

    The AudioSet ontology has 632 classes but the released label set 527: a name outside it (e.g. an abstract
    parent) has no output to read. Use this explicitly and report what it dropped; the scoring functions
    themselves refuse unknown names rather than skip them.
    """
    known = {label_file_spelling(lab) for lab in labels}
    kept = {c: tuple(n for n in names if label_file_spelling(n) in known) for c, names in mapping.items()}
    dropped = [(c, n) for c, names in mapping.items() for n in names if label_file_spelling(n) not in known]
    return kept, dropped


def _columns(labels: Sequence[str], mapping: Mapping[str, Sequence[str]], classes: Sequence[str]) -> list[list[int]]:
    index: dict[str, int] = {}
    for i, lab in enumerate(labels):
        key = label_file_spelling(lab)
        if key in index:
            raise ValueError(f"labels {labels[index[key]]!r} and {lab!r} normalise to the same name {key!r}")
        index[key] = i
    cols, unknown = [], []
    for c in classes:
        names = list(mapping.get(c, ()))
        unknown += [(c, n) for n in names if label_file_spelling(n) not in index]
        cols.append([index[label_file_spelling(n)] for n in names if label_file_spelling(n) in index])
    if unknown:
        raise ValueError(
            "AudioSet name(s) in the mapping that are not among the network's "
            f"{len(labels)} labels: " + ", ".join(f"{n!r} (for {c!r})" for c, n in unknown)
        )
    return cols


def shortcut_scores(
    clip_probs: np.ndarray, labels: Sequence[str], mapping: Mapping[str, Sequence[str]], classes: Sequence[str]
) -> np.ndarray:
    """(N, len(classes)): per class the max of `clip_probs` (N, len(labels)) over its mapped AudioSet labels.

    Unmatched classes get NaN and a warning naming them. A mapped name that is not among `labels` raises.
    """
    P = np.asarray(clip_probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] != len(labels):
        raise ValueError(f"clip_probs must be (clips, {len(labels)} labels), got shape {P.shape}")
    cols = _columns(labels, mapping, classes)
    out = np.full((len(P), len(classes)), np.nan)
    for j, idx in enumerate(cols):
        if idx:
            out[:, j] = P[:, idx].max(axis=1)
    if missing := unmatched_classes(mapping, classes):
        warnings.warn(f"{len(missing)} class(es) have no AudioSet match and are not scored: {missing}", stacklevel=2)
    return out


def _class_indices(y, classes: Sequence[str], n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},), got {y.shape}")
    if y.dtype.kind in "OUS":
        pos = {c: i for i, c in enumerate(classes)}
        bad = sorted({str(v) for v in y if v not in pos})
        if bad:
            raise ValueError(f"y holds class names not in classes: {bad[:5]}")
        return np.array([pos[v] for v in y], dtype=int)
    y = y.astype(int)
    if n and (y.min() < 0 or y.max() >= len(classes)):
        raise ValueError(f"y must index into classes (0..{len(classes) - 1}), got range {y.min()}..{y.max()}")
    return y


def shortcut_accuracy(
    clip_probs: np.ndarray,
    labels: Sequence[str],
    mapping: Mapping[str, Sequence[str]],
    classes: Sequence[str],
    y,
    level: float = 0.95,
) -> dict:
    """Top-1 accuracy of the shortcut over the matched classes, with a Wilson interval.

    `y` = true class of each clip (index into `classes`, or the class name). Prediction = argmax over the
    matched classes only; clips of unmatched classes are left out. Returns ``accuracy, lo, hi, level, n_clips,
    n_classes, chance (1 / n_classes), per_class {class: accuracy (NaN without clips)}, unmatched [classes],
    n_excluded_clips``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # unmatched classes are reported in the result instead
        S = shortcut_scores(clip_probs, labels, mapping, classes)
    y = _class_indices(y, classes, len(S))
    unmatched = unmatched_classes(mapping, classes)
    matched = np.array([c not in set(unmatched) for c in classes])
    if not matched.any():
        raise ValueError(f"no class of {list(classes)} has an AudioSet match: nothing to evaluate")
    keep = matched[y]
    cols = np.flatnonzero(matched)
    pred = cols[np.argmax(S[keep][:, cols], axis=1)]
    hit = pred == y[keep]
    k, n = int(hit.sum()), int(keep.sum())
    if n:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        lo, hi = float(ci.low), float(ci.high)
    else:
        lo = hi = float("nan")
    per_class = {}
    for j in cols:
        sel = y[keep] == j
        per_class[classes[j]] = float(hit[sel].mean()) if sel.any() else float("nan")
    return {
        "accuracy": k / n if n else float("nan"),
        "lo": lo,
        "hi": hi,
        "level": level,
        "n_clips": n,
        "n_classes": int(matched.sum()),
        "chance": 1.0 / int(matched.sum()),
        "per_class": per_class,
        "unmatched": unmatched,
        "n_excluded_clips": int((~keep).sum()),
    }
