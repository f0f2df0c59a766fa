"""Training pairs per training level (how much of the target classes' audio each caption filter leaves)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from clap_lib.config.levels import TRAININGS
from clap_lib.pipeline.results import GridResult

LEVEL_TEXT = {
    "dirty": "dirty (every pair)",
    "clean": "clean (the paper's rule: no word of a T class name)",
    "strict": "strict (beyond the paper: the ontology-expanded words of T)",
    "dedup": "dedup (beyond the paper: clean, minus every ESC-50 source recording)",
}


def _pairs(grid: GridResult) -> dict:
    p = grid.dir / "pairs.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def pair_level_table(grid: GridResult) -> pd.DataFrame:
    """Per training level: pairs, pairs of target-class clips left, and the share of T's pairs that survive."""
    rows = []
    for level in TRAININGS:
        info = _pairs(grid).get(level)
        if info is None:
            continue
        surv = [v for v in info.get("surviving_T", {}).values() if v is not None and np.isfinite(v)]
        rows.append(
            {
                "training level": LEVEL_TEXT[level],
                "training pairs": info["n_pairs"],
                "pairs removed": info["n_pairs_dirty"] - info["n_pairs"],
                "pairs of target-class clips left": info["n_target_clip_pairs"],
                "mean share of a T class's pairs surviving": round(float(np.mean(surv)), 3) if surv else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("training level")


def surviving_table(grid: GridResult) -> pd.DataFrame:
    """Per target class and training level: the fraction of its pairs that survive the filter."""
    cols = {level: info.get("surviving_T", {}) for level, info in _pairs(grid).items()}
    df = pd.DataFrame(cols)
    df.index.name = "target class"
    return df[[c for c in TRAININGS if c in df]].astype(float).round(3)


def _level_share(surv: pd.DataFrame, level: str) -> float | None:
    if level not in surv:
        return None
    v = surv[level].mean()
    return float(v) if np.isfinite(v) else None


def survival_sentence(surv: pd.DataFrame) -> str:
    """The page's sentence on what the clean and strict rules leave of T's training pairs (`surviving_table`),
    lower-case (it follows "In this run,"); a level the run did not train is said so in words, never as a number."""
    clean, strict = _level_share(surv, "clean"), _level_share(surv, "strict")
    head = (
        'the paper\'s literal "clean" rule was not run in this configuration'
        if clean is None
        else f"the paper's literal \"clean\" rule leaves on average {clean:.3f} of each target class's training "
        "pairs in the training set (audio of T described in other words)"
    )
    if strict is None:
        return (
            head + "; the stricter rule was not run in this configuration (--set trainings=dirty,clean,strict runs it)."
        )
    return head + f", and the stricter rule {strict:.3f}."


def dirty_training_note(profile: str, trainings) -> str:
    """What the *dirty* training level's accuracy is, for the text near Table 1 and in the summary. In the
    ESC-50-sized profiles dirty training pairs the target classes' clips (folds 1-4) with captions of their class,
    class names included: its accuracy on T is supervised, not zero-shot."""
    if "dirty" not in set(trainings):
        return "This run has no dirty training level."
    if profile == "paper":
        return (
            "The dirty training data keep every caption that names an ESC-50 class (on other audio, the paper's "
            "setting): the dirty rows' classes were seen by name in training."
        )
    return (
        "After dirty training the target classes were seen with their names: the projectors were trained on T's "
        "clips of folds 1-4 paired with captions of their class, class names included, so the dirty training "
        "rows' accuracy is supervised, not zero-shot. The clean (and strict) levels drop the captions that name a "
        "T class; T's audio stays (Section 2.2)."
    )
