"""The runs of the controlled experiment and the training pairs of each (pure: pandas in, pandas out).

A run is (class split, seed, pretraining level, training level[, dose f]). Split 0 is the grid's T / B, split 1
the same classes swapped, so that every ESC-50 class is a target once and is scored on its fold-5 clips. For one
split and seed (clap_lib.data.doses):

* validation: a seeded 20 % of the *background* training clips (folds 1-4), held out from every level: early
  stopping never sees a T clip or fold 5, and every level is stopped on the same pairs;
* dirty: the rest of the grid's dirty pairs; unseen: no pair of any T clip, filled up with background pairs to
  dirty's count (true zero-shot); dose f: a nested, seeded f of each T class's clips keep their class captions,
  filled up the same way (f = 0 is unseen, f = 1 dirty); clean: the paper's literal rule (fewer pairs: its
  residual leakage is what survives the rule); matched: dirty subsampled to clean's count (the size control).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from clap_lib.config.controlled import CONTROLLED_LEVELS, ControlledConfig
from clap_lib.data.doses import dose_pairs, filler_pairs, size_matched, validation_clips
from clap_lib.data.esc50 import ClassSplit
from clap_lib.data.filtering import level_pairs


@dataclass(frozen=True)
class Run:
    split: int
    seed: int
    pretraining: str
    level: str  # dirty / clean / unseen / matched / dose
    f: float  # the dose of T pairs kept: dirty 1, unseen 0, a dose its f; NaN for clean and matched
    gru: bool  # the backbone's top is fine-tuned after the frozen phase

    @property
    def id(self) -> str:
        level = f"dose{self.f:g}" if self.level == "dose" else self.level
        return f"split{self.split}/seed{self.seed}/{self.pretraining}/{level}"

    @property
    def table(self) -> str:
        """The name of its pair table in :func:`pair_tables`."""
        return f"dose:{self.f:g}" if self.level == "dose" else self.level


LEVEL_F = {"dirty": 1.0, "unseen": 0.0, "clean": float("nan"), "matched": float("nan")}


#: the ladder's training levels (issue 21): true zero-shot and dirty
LADDER_LEVELS = ("unseen", "dirty")


def design_runs(
    cc: ControlledConfig,
    pretrainings: tuple[str, ...],
    can_fine_tune: bool,
    extra: tuple[str, ...] = (),
    ladder: tuple[str, ...] = (),
) -> list[Run]:
    """Every run of the design: the grid (splits x seeds x pretrainings x levels, the backbone's top fine-tuned
    when `cc.gru` and the backbone has one), the inner doses (splits x dose seeds x pretrainings x doses,
    projectors only: their ends f = 0 / 1 are the grid runs' frozen-phase results) and the grid's levels on the
    x_a of `extra` networks (another architecture, e.g. mn04_as: projectors only); and the `ladder` networks
    (pretraining "ladder:NAME") at :data:`LADDER_LEVELS` on split 0 over `cc.ladder_seeds`, projectors only."""
    splits = (0, 1) if cc.both_splits else (0,)
    gru = cc.gru and can_fine_tune
    runs = [
        Run(s, seed, p, lvl, LEVEL_F[lvl], gru)
        for s in splits
        for seed in cc.seeds
        for p in pretrainings
        for lvl in CONTROLLED_LEVELS
    ]
    runs += [
        Run(s, seed, p, "dose", float(f), False)
        for s in splits
        for seed in cc.dose_seeds
        for p in pretrainings
        for f in cc.doses
    ]
    runs += [
        Run(s, seed, p, lvl, LEVEL_F[lvl], False)
        for s in splits
        for seed in cc.seeds
        for p in extra
        for lvl in CONTROLLED_LEVELS
    ]
    runs += [
        Run(0, seed, f"ladder:{n}", lvl, LEVEL_F[lvl], False)
        for n in ladder
        for seed in cc.ladder_seeds
        for lvl in LADDER_LEVELS
    ]
    return runs


def split_of(grid_split: ClassSplit, split: int) -> ClassSplit:
    return grid_split if split == 0 else grid_split.swapped()


def pair_tables(
    dirty_all: pd.DataFrame, pools: pd.DataFrame, split: ClassSplit, seed: int, cc: ControlledConfig
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """({table name: pairs (clip / category / caption)}, validation pairs) of one split and seed, from the grid's
    dirty pairs of folds 1-4 (`dirty_all`) and the caption pools (the filler)."""
    T = list(split.target)
    val_clips = validation_clips(dirty_all, T, cc.val_fraction, seed)
    held = dirty_all["clip"].isin(val_clips)
    dirty, val = dirty_all[~held].reset_index(drop=True), dirty_all[held].reset_index(drop=True)
    fill = filler_pairs(dirty, pools, T, seed)  # the same at every dose: computed once
    tables = {"dirty": dose_pairs(dirty, pools, T, 1.0, seed), "unseen": dose_pairs(dirty, pools, T, 0.0, seed, fill)}
    tables["clean"] = level_pairs(dirty, T, "clean")[0].reset_index(drop=True)
    tables["matched"] = size_matched(tables["dirty"], len(tables["clean"]), seed)
    for f in cc.doses:
        tables[f"dose:{f:g}"] = dose_pairs(dirty, pools, T, float(f), seed, fill)
    return tables, val


def class_counts(tables: dict[str, pd.DataFrame], split: ClassSplit) -> pd.DataFrame:
    """Per T class: its pairs under dirty and under the paper's clean rule (what survives: the residual leakage)."""
    rows = []
    for c in split.target:
        rows.append(
            {
                "category": c,
                "n_dirty_pairs": int((tables["dirty"]["category"] == c).sum()),
                "n_clean_pairs": int((tables["clean"]["category"] == c).sum()),
            }
        )
    return pd.DataFrame(rows)


def rows_of(table: pd.DataFrame, caption_row: dict[str, int]) -> np.ndarray:
    """(pairs, 2) int array: the clip's row (ESC-50 meta index) and the caption's row in the text stage."""
    return np.stack([table["clip"].to_numpy(np.int64), table["caption"].map(caption_row).to_numpy(np.int64)], axis=1)
