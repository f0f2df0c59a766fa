"""The controlled experiment's numbers (issue 20), from the records its stage writes (pure functions on the frames).

Records (the stage's folder; the columns are :data:`RUN_COLUMNS`, :data:`CLIP_COLUMNS`, :data:`CLASS_COLUMNS`):
``runs`` one row per trained CLAP run, ``clips`` one row per (run, evaluated clip: a fold-5 clip of that split's
T), ``classes`` one row per (split, seed, T class) with its dirty and clean pair counts.

A condition is (pretraining, level) of the grid's levels :data:`GRID_LEVELS`, or (pretraining, "dose", f). Two class
splits (0: the grid's T; 1: T and B swapped) are trained per seed; the *condition matrix* has one row per seed and
one column per evaluated clip of both splits (split, then clip), so a seed's row pools its two runs and every one
of the 50 ESC-50 classes is a stratum. Accuracies and per-clip silhouettes are then grand means of that matrix with
the hierarchical interval of :mod:`clap_lib.analysis.hierarchical` (seeds, then clips within their class); two
conditions on the same seeds and clips are compared by the paired difference. S is one number per run (no per-clip
part): its interval resamples runs.

The dose curve of a pretraining runs over f in {0, doses..., 1}: f = 0 is the ``unseen`` runs and f = 1 the
``dirty`` runs, both restricted to the dose seeds, so every point shares seeds and clips with the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from clap_lib.analysis.hierarchical import (
    HierarchicalResult,
    hierarchical_bootstrap,
    paired_difference,
    replicate_means,
)
from clap_lib.analysis.resampling import _percentile_ci, pearson_permutation
from clap_lib.config.levels import PRETRAININGS

__all__ = [
    "GRID_LEVELS",
    "CONTRASTS",
    "CLEAN_GROUPS",
    "RUN_COLUMNS",
    "CLIP_COLUMNS",
    "CLASS_COLUMNS",
    "ConditionMatrix",
    "ConditionCorrelation",
    "check_records",
    "pretrainings",
    "condition_matrix",
    "chance_level",
    "estimate",
    "compare",
    "accuracy_table",
    "contrast_table",
    "silhouette_table",
    "run_interval",
    "topology_table",
    "dose_curve",
    "clean_class_split",
    "seed_condition_means",
    "condition_correlation",
]

#: the grid's training levels, most leakage first: every caption, the paper's clean rule (residual leakage), no pair
#: of a T clip (true zero-shot, filled up to dirty's pair count), dirty subsampled to clean's pair count
GRID_LEVELS: tuple[str, ...] = ("dirty", "clean", "unseen", "matched")
#: the paired differences of Table 1: (a, b, what a - b measures)
CONTRASTS: tuple[tuple[str, str, str], ...] = (
    ("clean", "matched", "removing the leaking captions (same pair count)"),
    ("dirty", "matched", "data quantity (the same captions, about 3 x the pairs)"),
    ("clean", "unseen", "the residual leakage of the clean rule"),
)
#: the rows of :func:`clean_class_split`
CLEAN_GROUPS: tuple[str, ...] = ("no pair survived", "some pairs survived", "difference")
RUN_COLUMNS: tuple[str, ...] = (
    *("run", "split", "seed", "pretraining", "level", "f", "n_pairs", "n_target_pairs", "n_steps"),
    *("frozen_best", "frozen_stop", "frozen_val_loss", "gru", "gru_best", "gru_stop", "gru_val_start"),
    *("gru_val_loss", "x_a_shift", "accuracy", "chance", "sil_x_a", "sil_x_a_before", "sil_E_a", "n_eval_clips"),
    *("seconds", "accuracy_frozen"),
    # Table 3's three S (S = S(E_a, E_t)), each with its chance, edge-free excess and self-excluded variant
    *(f"{s}{v}" for s in ("S", "S_xa_Ea", "S_xt_Et") for v in ("", "_chance", "_excess", "_noself", "_noself_chance")),
)
CLIP_COLUMNS: tuple[str, ...] = (
    *("run", "split", "seed", "pretraining", "level", "f", "clip", "category", "correct", "predicted"),
    *("sil_x_a", "sil_E_a", "correct_frozen"),
)
CLASS_COLUMNS: tuple[str, ...] = ("split", "seed", "category", "n_dirty_pairs", "n_clean_pairs")


def check_records(runs: pd.DataFrame, clips: pd.DataFrame, classes: pd.DataFrame) -> None:
    """Every column the analysis reads is there (more are allowed), else an error naming the missing ones."""
    for name, frame, cols in (("runs", runs, RUN_COLUMNS), ("clips", clips, CLIP_COLUMNS)):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}.csv lacks the columns {missing}")
    missing = [c for c in CLASS_COLUMNS if c not in classes.columns]
    if missing:
        raise ValueError(f"classes.csv lacks the columns {missing}")


def pretrainings(runs: pd.DataFrame) -> list[str]:
    """The pretraining levels of the records: dirty, clean, none first (those present), then any other backbone."""
    found = list(dict.fromkeys(runs["pretraining"]))
    return [p for p in PRETRAININGS if p in found] + [p for p in found if p not in PRETRAININGS]


def _dose_level(f: float) -> tuple[str, float | None]:
    """f = 0 is the ``unseen`` runs, f = 1 the ``dirty`` runs, anything between a ``dose`` run."""
    return ("unseen", None) if f == 0 else ("dirty", None) if f == 1 else ("dose", f)


def _select(frame: pd.DataFrame, pretraining: str, level: str, f: float | None = None, seeds=None) -> pd.DataFrame:
    keep = (frame["pretraining"] == pretraining) & (frame["level"] == level)
    if f is not None:
        keep &= np.isclose(frame["f"].astype(float), f)
    if seeds is not None:
        keep &= frame["seed"].isin(list(seeds))
    return frame[keep]


@dataclass(frozen=True)
class ConditionMatrix:
    """X[s, j]: the value (`correct`, a silhouette sample) of clip j under the model of seed s; strata[j]: its class."""

    name: str
    X: np.ndarray
    strata: np.ndarray
    seeds: tuple[int, ...]
    columns: pd.MultiIndex  # (split, clip) of each column, sorted


def condition_matrix(
    clips: pd.DataFrame,
    pretraining: str,
    level: str,
    f: float | None = None,
    value: str = "correct",
    seeds: Sequence[int] | None = None,
) -> ConditionMatrix:
    """The seeds x clips matrix of one condition (module docstring); every seed must have every clip."""
    name = f"{pretraining}/{level}" + (f" f={f:g}" if f is not None else "")
    rows = _select(clips, pretraining, level, f, seeds)
    if rows.empty:
        raise ValueError(f"no evaluated clip of condition {name}" + (f" with seeds {list(seeds)}" if seeds else ""))
    if rows.duplicated(["seed", "split", "clip"]).any():
        raise ValueError(f"condition {name}: a clip is evaluated twice under one seed and split")
    wide = rows.pivot(index="seed", columns=["split", "clip"], values=value).sort_index().sort_index(axis=1)
    if wide.isna().to_numpy().any():
        raise ValueError(f"condition {name}: not every seed has every clip (or a {value} value is missing)")
    cats = rows.drop_duplicates(["split", "clip"]).set_index(["split", "clip"])["category"]
    strata = cats.reindex(wide.columns).to_numpy()
    return ConditionMatrix(name, wide.to_numpy(np.float64), strata, tuple(int(s) for s in wide.index), wide.columns)


def chance_level(
    runs: pd.DataFrame, pretraining: str, level: str, f: float | None = None, seeds: Sequence[int] | None = None
) -> float:
    """The condition's random guess: the mean of its runs' `chance` (1 / |T|)."""
    return float(_select(runs, pretraining, level, f, seeds)["chance"].mean())


def estimate(m: ConditionMatrix, null: float = 0.0, n_boot: int = 2000, seed: int = 0) -> HierarchicalResult:
    """Grand mean of the condition's matrix, its interval (seeds, then clips within class) and the p of `null`."""
    return hierarchical_bootstrap(m.X, n_boot=n_boot, seed=seed, strata=m.strata, null=null)


def compare(a: ConditionMatrix, b: ConditionMatrix, n_boot: int = 2000, seed: int = 0) -> HierarchicalResult:
    """Paired difference a - b; the two conditions must hold the same seeds and the same clips."""
    if a.seeds != b.seeds or not a.columns.equals(b.columns):
        raise ValueError(f"{a.name} and {b.name} are not on the same seeds and clips: no paired difference")
    return paired_difference(a.X, b.X, n_boot=n_boot, seed=seed, strata=a.strata)


def _row(r: HierarchicalResult, prefix: str = "") -> dict:
    return {
        f"{prefix}value" if prefix else "value": r.value,
        f"{prefix}lo": r.lo,
        f"{prefix}hi": r.hi,
        f"{prefix}p": r.p,
    }


def _conditions(runs: pd.DataFrame, levels: Sequence[str]) -> list[tuple[str, str]]:
    present = set(zip(runs["pretraining"], runs["level"]))
    return [(p, lv) for p in pretrainings(runs) for lv in levels if (p, lv) in present]


def accuracy_table(
    clips: pd.DataFrame, runs: pd.DataFrame, levels: Sequence[str] = GRID_LEVELS, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Table 1: one row per (pretraining, level): accuracy with its interval, the chance level and the p of
    "accuracy = chance" (the unseen row's test of true zero-shot)."""
    rows = []
    for p, lv in _conditions(runs, levels):
        m = condition_matrix(clips, p, lv)
        chance = chance_level(runs, p, lv)
        r = estimate(m, chance, n_boot, seed)
        rows.append({"pretraining": p, "level": lv, **_row(r), "chance": chance} | _size(m))
    return pd.DataFrame(rows)


def _size(m: ConditionMatrix) -> dict:
    return {"n_seeds": len(m.seeds), "n_clips": m.X.shape[1]}


def contrast_table(clips: pd.DataFrame, runs: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The paired differences of :data:`CONTRASTS` per pretraining (those whose two levels were run)."""
    rows = []
    present = set(zip(runs["pretraining"], runs["level"]))
    for p in pretrainings(runs):
        for a, b, meaning in CONTRASTS:
            if (p, a) in present and (p, b) in present:
                r = compare(condition_matrix(clips, p, a), condition_matrix(clips, p, b), n_boot, seed)
                rows.append(
                    {"pretraining": p, "contrast": f"{a} - {b}", "a": a, "b": b, "measures": meaning, **_row(r)}
                )
    return pd.DataFrame(rows)


def silhouette_table(
    clips: pd.DataFrame, runs: pd.DataFrame, levels: Sequence[str] = GRID_LEVELS, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Table 2: per (pretraining, level) the silhouette of x_a after training and of E_a (mean of the per-clip
    samples, hierarchical interval), beside the runs' mean silhouette of x_a before training and the median cosine
    of x_a after vs before (`x_a_shift`, NaN where no run fine-tuned the backbone)."""
    rows = []
    for p, lv in _conditions(runs, levels):
        row = {"pretraining": p, "level": lv}
        for space in ("sil_x_a", "sil_E_a"):
            r = estimate(condition_matrix(clips, p, lv, value=space), 0.0, n_boot, seed)
            row |= {space: r.value, f"{space}_lo": r.lo, f"{space}_hi": r.hi}
        sub = _select(runs, p, lv)
        row |= {
            "sil_x_a_before": float(sub["sil_x_a_before"].mean()),
            "x_a_shift": float(sub["x_a_shift"].mean()),
            "gru_share": float(sub["gru"].astype(bool).mean()),
            "n_runs": len(sub),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def run_interval(values, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of one number per run, resampling runs with replacement."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) == 0 or not np.isfinite(v).all():
        raise ValueError(f"run_interval needs finite values, got {v}")
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    return _percentile_ci(v[idx].mean(axis=1), level)


def topology_table(
    runs: pd.DataFrame, levels: Sequence[str] = GRID_LEVELS, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Table 3: S = max_k S_k(E_a, E_t) per (pretraining, level), the mean over runs (seeds x splits) with its
    interval over runs, beside the means of its chance level, its excess over chance and S without self."""
    rows = []
    for p, lv in _conditions(runs, levels):
        sub = _select(runs, p, lv)
        lo, hi = run_interval(sub["S"], n_boot, seed)
        means = {c: float(sub[c].mean()) for c in ("S_chance", "S_excess", "S_noself")}
        rows.append({"pretraining": p, "level": lv, "S": float(sub["S"].mean()), "S_lo": lo, "S_hi": hi} | means)
        rows[-1]["n_runs"] = len(sub)
    return pd.DataFrame(rows)


def dose_curve(
    clips: pd.DataFrame,
    runs: pd.DataFrame,
    pretraining: str,
    dose_seeds: Sequence[int],
    doses: Sequence[float] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy against the training-leakage dose f of one pretraining, f in {0, doses..., 1} (`doses`: the dose
    runs' f values by default), on the dose seeds: each point with its interval, chance and the p of "= chance",
    and its paired difference from f = 0 (``diff_*``). Accuracy after the frozen phase (``correct_frozen``) at
    every f: the dose runs train the projectors only, so the grid's unseen / dirty runs enter before their
    backbone fine-tuning."""
    if doses is None:
        doses = sorted(set(_select(runs, pretraining, "dose")["f"].astype(float)))
    base = condition_matrix(clips, pretraining, "unseen", seeds=dose_seeds, value="correct_frozen")
    rows = []
    for f in (0.0, *doses, 1.0):
        level, f_run = _dose_level(f)
        m = condition_matrix(clips, pretraining, level, f_run, seeds=dose_seeds, value="correct_frozen")
        chance = chance_level(runs, pretraining, level, f_run, dose_seeds)
        r, d = estimate(m, chance, n_boot, seed), compare(m, base, n_boot, seed)
        rows.append({"f": float(f), **_row(r), "chance": chance, **_row(d, "diff_")} | _size(m))
    return pd.DataFrame(rows)


def _class_mask(m: ConditionMatrix, survived: pd.Series) -> np.ndarray:
    """M[s, j] = 1 when clip j's class kept a pair under the clean rule in seed s's run of its split."""
    splits = m.columns.get_level_values("split")
    keys = pd.MultiIndex.from_tuples(
        [(sp, s, c) for s in m.seeds for sp, c in zip(splits, m.strata)], names=["split", "seed", "category"]
    )
    got = survived.reindex(keys)
    if got.isna().any():
        raise ValueError("classes.csv lacks a (split, seed, class) of the clean runs")
    return got.to_numpy(np.float64).reshape(len(m.seeds), -1)


def _replicate_summary(reps: np.ndarray, null: float = 0.0) -> tuple[float, float, float]:
    """(lo, hi, p of `null`) of bootstrap replicates, ignoring NaN ones (a replicate that drew no clip of a group)."""
    ok = reps[np.isfinite(reps)]
    if not len(ok):
        return np.nan, np.nan, np.nan
    lo, hi = _percentile_ci(ok, 0.95)
    return lo, hi, min(1.0, 2 * min(float(np.mean(ok <= null)), float(np.mean(ok >= null))))


def clean_class_split(
    clips: pd.DataFrame, classes: pd.DataFrame, pretraining: str, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Accuracy under ``clean`` of the classes none of whose pairs survived the clean rule (n_clean_pairs == 0, per
    split and seed) and of those with surviving pairs (`n_classes`: per seed, both splits), and their difference
    (survived - none, with the p of "no difference"). Each is a masked grand mean; the interval uses the same
    hierarchical draws for the clips and the mask, so a group's replicate is the mean over its drawn clips."""
    m = condition_matrix(clips, pretraining, "clean")
    survived = classes.set_index(["split", "seed", "category"])["n_clean_pairs"] > 0
    masks = dict(zip(CLEAN_GROUPS, (1.0 - _class_mask(m, survived), _class_mask(m, survived))))
    reps, rows = {}, []
    for group, M in masks.items():
        num, den = (replicate_means(A, n_boot, seed, m.strata) for A in (m.X * M, M))
        with np.errstate(invalid="ignore", divide="ignore"):
            reps[group] = num / den
        value = float((m.X * M).sum() / M.sum()) if M.sum() else np.nan
        lo, hi, _ = _replicate_summary(reps[group])
        n_cls = float(np.mean([len(set(m.strata[row > 0])) for row in M]))
        rows.append({"group": group, "value": value, "lo": lo, "hi": hi, "p": np.nan, "n_classes": n_cls})
    diff = reps[CLEAN_GROUPS[1]] - reps[CLEAN_GROUPS[0]]
    lo, hi, p = _replicate_summary(diff)
    rows.append({"group": CLEAN_GROUPS[2], "value": rows[1]["value"] - rows[0]["value"], "lo": lo, "hi": hi, "p": p})
    return pd.DataFrame(rows).assign(pretraining=pretraining)


def seed_condition_means(runs: pd.DataFrame, column: str, levels: Sequence[str] = GRID_LEVELS) -> pd.DataFrame:
    """One row per (pretraining, level) condition, one column per seed: the mean of `column` over the seed's runs
    (its splits). Every condition must have every seed."""
    sub = runs[runs["level"].isin(list(levels))]
    wide = sub.groupby(["pretraining", "level", "seed"])[column].mean().unstack("seed")
    order = [c for c in _conditions(runs, levels) if c in wide.index]
    wide = wide.loc[order]
    if wide.isna().to_numpy().any():
        raise ValueError(f"not every condition has every seed ({column}): no seed bootstrap of its means")
    return wide


@dataclass(frozen=True)
class ConditionCorrelation:
    a: str
    b: str
    r: float  # Pearson r over the condition means
    lo: float  # percentile interval over seed resamples
    hi: float
    p_perm: float  # permutation p over conditions (treats conditions as exchangeable)
    n_conditions: int
    n_seeds: int


def _pearson_rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Pearson r of each column pair: A, B of shape (conditions, replicates)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        za = (A - A.mean(0)) / A.std(0)
        zb = (B - B.mean(0)) / B.std(0)
        return np.mean(za * zb, axis=0)


def condition_correlation(
    runs: pd.DataFrame,
    a: str,
    b: str,
    log_a: bool = False,
    levels: Sequence[str] = GRID_LEVELS,
    n_boot: int = 2000,
    seed: int = 0,
    n_perm: int = 10000,
) -> ConditionCorrelation:
    """Pearson r across conditions of the condition means of `a` (its log with `log_a`) and `b`; the interval
    resamples seeds (the same draw for every condition), recomputing the condition means and r."""
    A, B = seed_condition_means(runs, a, levels), seed_condition_means(runs, b, levels)
    if not (A.index.equals(B.index) and A.columns.equals(B.columns)):
        raise ValueError(f"{a} and {b} are not on the same conditions and seeds")
    A, B = A.to_numpy(np.float64), B.to_numpy(np.float64)
    idx = np.random.default_rng(seed).integers(0, A.shape[1], size=(n_boot, A.shape[1]))
    ra, rb = A[:, idx].mean(-1), B[:, idx].mean(-1)
    xa, xb = A.mean(1), B.mean(1)
    if log_a:
        ra, xa = np.log(ra), np.log(xa)
    r = float(_pearson_rows(xa[:, None], xb[:, None])[0])
    lo, hi = _percentile_ci(_pearson_rows(ra, rb), 0.95)
    p = pearson_permutation(xa, xb, n_perm=n_perm, seed=seed) if len(xa) >= 3 else np.nan
    return ConditionCorrelation(f"log {a}" if log_a else a, b, r, lo, hi, float(p), len(xa), A.shape[1])
