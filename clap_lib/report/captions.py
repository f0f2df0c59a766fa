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
