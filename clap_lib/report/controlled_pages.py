"""The controlled experiment on the book's other pages (issue 20): beside the single run's Tables 1-3 (Sections 3.1
and 3.2) and in the summary, the controlled design's tables, each introduced by one sentence that says what the
design is (seeds, class splits, the unseen and size-matched levels) and where its chapter is. A page shows none of
it when the run has no controlled records (:func:`controlled_on_page` is None)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from clap_lib.analysis import controlled_paper
from clap_lib.report import controlled as rc
from clap_lib.report.artifacts import TOPO
from clap_lib.report.tables import fmt

__all__ = [
    "CHAPTER",
    "ZERO_SHOT_NOTE",
    "ControlledOnPage",
    "controlled_on_page",
    "design_text",
    "lead",
    "table_topology_spaces",
]

#: the chapter, as the pages link it (generated/<name>.ipynb, beside them)
CHAPTER = "[A controlled experiment](controlled.ipynb)"
#: which rows of the controlled Table 1 are zero-shot (the text beside it)
ZERO_SHOT_NOTE = (
    "Only the *unseen* row is zero-shot: *dirty* and *matched* pair the target classes' clips of folds 1-4 with "
    "captions that name their class (supervised), and *clean* keeps the pairs of target-class clips whose captions "
    "do not name it.\n"
)


@dataclass(frozen=True)
class ControlledOnPage:
    rec: rc.ControlledRecords
    an: rc.ControlledAnalysis


def controlled_on_page(found: dict | None, n_boot: int = 2000, seed: int = 0) -> ControlledOnPage | None:
    """The records `found` by ``clap_lib.pipeline.controlled.controlled_for(grid_dir)`` and their analysis, or None
    when there are none (no such stage in this run, or the stage was skipped)."""
    rec = rc.records_for(found)
    return None if isinstance(rec, str) else ControlledOnPage(rec, rc.analyse(rec, n_boot, seed))


def design_text(rec: rc.ControlledRecords) -> str:
    """'3 seeds x 2 class splits (50 classes, 400 fold-5 clips per seed)': what every number of the design pools."""
    runs, clips = rec.runs, rec.clips
    n_seeds, n_splits = runs["seed"].nunique(), runs["split"].nunique()
    per_seed = len(clips.drop_duplicates(["split", "clip"]))
    return (
        f"{n_seeds} seed{'s' if n_seeds != 1 else ''} x {n_splits} class split{'s' if n_splits != 1 else ''} "
        f"({clips['category'].nunique()} classes, {per_seed} fold-5 clips per seed)"
    )


def lead(rec: rc.ControlledRecords, what: str, ref: str) -> str:
    """The one-sentence lead of a controlled table on another page: `what` (e.g. "Table 1") of the controlled design,
    multi-seed and over its class splits, and the chapter's table `ref` it repeats."""
    return (
        f"The same {what} from the controlled experiment, every cell pooled over its {design_text(rec)}, with "
        f"the true zero-shot level *unseen* (no pair of a target-class clip) and the size-matched control "
        f"*matched* (dirty subsampled to clean's pair count); the chapter {CHAPTER} has the design and its paired "
        f"comparisons ({{numref}}`{ref}`).\n"
    )


def table_topology_spaces(rec: rc.ControlledRecords, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Table 3 of the controlled design: per condition and per S of the paper's Table 3, the mean over runs with its
    interval over runs, its edge-free excess over chance and S with self excluded."""
    t = controlled_paper.topology_spaces(rec.runs, n_boot=n_boot, seed=seed)
    cols = {}
    for topo, label in TOPO.items():
        cols[f"{label} [95 % interval]"] = [fmt(r[topo], r[f"{topo}_lo"], r[f"{topo}_hi"]) for _, r in t.iterrows()]
        cols[f"{label}: excess over chance"] = t[f"{topo}_excess"].map(fmt).to_numpy()
        cols[f"{label} without self"] = t[f"{topo}_noself"].map(fmt).to_numpy()
    out = pd.DataFrame(cols)
    out["runs"] = t["n_runs"].to_numpy()
    out.index = pd.MultiIndex.from_arrays(
        [t["pretraining"], t["level"].map(rc.LEVEL_TEXT).fillna(t["level"])],
        names=["audio pretraining", "training data"],
    )
    return out
