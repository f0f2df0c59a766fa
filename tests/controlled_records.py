"""Synthetic records of the controlled stage (issue 20) in exactly its format: runs.csv, clips.csv, classes.csv and
design.json (the columns of clap_lib.analysis.controlled.RUN_COLUMNS / CLIP_COLUMNS / CLASS_COLUMNS, in that order).

Every run's accuracy is known by construction: a run of a condition with accuracy a over n evaluated clips gets
exactly round(a * n) of them right (clip j of the split's clip order, counted from the seed, is right when
(j + seed) mod n < round(a * n)). Per-clip silhouettes are sklearn's silhouette_samples (cosine) of random
embeddings around class centres, so each run's sil_x_a / sil_E_a is the mean of its clips' samples, as the stage
writes them. S(E_a, E_t) = 0.3 + 0.5 x the run's accuracy; the other two S of Table 3 are constants. Used by
tests/test_analysis_controlled.py, tests/test_report_controlled.py and tests/test_controlled_claims.py; the stage's
test can write the same records and compare.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples

from clap_lib.analysis.controlled import CLASS_COLUMNS, CLIP_COLUMNS, GRID_LEVELS, RUN_COLUMNS
from clap_lib.data.esc50 import ESC50_CLASSES

Accuracy = Callable[[str, str, float, int], float]  # (pretraining, level, f, seed) -> accuracy of each run
Surviving = Callable[[int, int, int], int]  # (split, seed, class index within the split's T) -> n_clean_pairs

BASE = {"dirty": 0.8, "clean": 0.6, "none": 0.4}
LEVEL_FACTOR = {"dirty": 1.0, "matched": 0.9, "clean": 0.75, "unseen": 0.5}
#: every run's S(x_a, E_a) and S(x_t, E_t); each S has chance 0.25 (0.2 without self), S without self = S - 0.05
TOPO_XA_EA, TOPO_XT_ET = 0.85, 0.75


def default_accuracy(pretraining: str, level: str, f: float, seed: int) -> float:
    """Dirty > matched > clean > unseen per pretraining; a dose runs linearly from unseen (f = 0) to dirty."""
    base = BASE.get(pretraining, 0.5)
    if level == "dose":
        return base * (LEVEL_FACTOR["unseen"] + f * (1 - LEVEL_FACTOR["unseen"]))
    return base * LEVEL_FACTOR[level]


def default_surviving(split: int, seed: int, k: int) -> int:
    """Even classes lose every pair to the clean rule, odd ones keep a few."""
    return 0 if k % 2 == 0 else 2 + k


@dataclass(frozen=True)
class Records:
    runs: pd.DataFrame
    clips: pd.DataFrame
    classes: pd.DataFrame
    design: dict


def _embeddings(rng, centres: np.ndarray, y: np.ndarray, spread: float) -> np.ndarray:
    return centres[y] + spread * rng.standard_normal((len(y), centres.shape[1]))


def _silhouettes(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return silhouette_samples(X, y, metric="cosine")


def _run_f(level: str, f: float | None) -> float:
    return {"dirty": 1.0, "unseen": 0.0}.get(level, np.nan) if f is None else float(f)


def _pair_counts(level: str, f: float, n_classes: int) -> tuple[int, int]:
    n_target = 16 * n_classes  # dirty: every caption of the T clips, as many of the background's
    dirty, clean = 2 * n_target, 2 * n_target // 3
    return {
        "dirty": (dirty, n_target),
        "clean": (clean, round(0.12 * n_target)),
        "unseen": (dirty, 0),
        "matched": (clean, n_target // 3),
        "dose": (dirty, round(f * n_target) if f == f else 0),
    }[level]


def _one_run(spec: dict, n_classes: int, clips_per_class: int, accuracy: Accuracy, rng) -> tuple[dict, list[dict]]:
    p, level, f, split, seed = spec["pretraining"], spec["level"], spec["f"], spec["split"], spec["seed"]
    T = ESC50_CLASSES[split * n_classes : (split + 1) * n_classes]
    n = n_classes * clips_per_class
    y = np.repeat(np.arange(n_classes), clips_per_class)
    k = int(round(accuracy(p, level, f, seed) * n))
    correct = ((np.arange(n) + seed) % n < k).astype(int)
    centres = rng.standard_normal((n_classes, 8))
    before = _embeddings(rng, centres, y, 1.2)
    after = before + 0.5 * rng.standard_normal(before.shape)
    E_a = _embeddings(rng, centres, y, 1.5 - k / n)
    sil = {"sil_x_a": _silhouettes(after, y), "sil_E_a": _silhouettes(E_a, y)}
    cos = np.sum(after * before, 1) / np.linalg.norm(after, axis=1) / np.linalg.norm(before, axis=1)
    run_id = f"{p}-{level}" + (f"-f{f:g}" if level == "dose" else "") + f"-split{split}-seed{seed}"
    n_pairs, n_target = _pair_counts(level, f, n_classes)
    S = 0.3 + 0.5 * k / n  # S(E_a, E_t) rises with the run's accuracy; the other two S are constants
    run = {
        **{"run": run_id, "split": split, "seed": seed, "pretraining": p, "level": level, "f": f},
        **{"n_pairs": n_pairs, "n_target_pairs": n_target, "n_steps": 10 * n_pairs // 128},
        **{"frozen_best": 12, "frozen_stop": 20, "frozen_val_loss": 3.1, "gru": True, "gru_best": 4, "gru_stop": 9},
        **{"gru_val_start": 3.1, "gru_val_loss": 2.9, "x_a_shift": float(np.median(cos))},
        **{"accuracy": correct.mean(), "chance": 1 / n_classes, "sil_x_a": sil["sil_x_a"].mean()},
        **{"sil_x_a_before": _silhouettes(before, y).mean(), "sil_E_a": sil["sil_E_a"].mean()},
        **{"n_eval_clips": n, "seconds": 1.5, "accuracy_frozen": correct.mean()},
    }
    for name, value in {"S": S, "S_xa_Ea": TOPO_XA_EA, "S_xt_Et": TOPO_XT_ET}.items():
        run |= {name: value, f"{name}_chance": 0.25, f"{name}_excess": value - 0.25}
        run |= {f"{name}_noself": value - 0.05, f"{name}_noself_chance": 0.2}
    clips = [
        {
            **{key: run[key] for key in ("run", "split", "seed", "pretraining", "level", "f")},
            **{"clip": split * 1000 + j, "category": T[y[j]], "correct": int(correct[j])},
            "correct_frozen": int(correct[j]),
            **{"predicted": T[y[j]] if correct[j] else T[(y[j] + 1) % n_classes]},
            **{"sil_x_a": sil["sil_x_a"][j], "sil_E_a": sil["sil_E_a"][j]},
        }
        for j in range(n)
    ]
    return run, clips


def synthetic_records(
    *,
    pretrainings: Sequence[str] = ("dirty", "clean", "none"),
    levels: Sequence[str] = GRID_LEVELS,
    seeds: Sequence[int] = (0, 1, 2),
    dose_seeds: Sequence[int] = (0, 1),
    doses: Sequence[float] = (0.05, 0.1, 0.25, 0.5),
    splits: Sequence[int] = (0, 1),
    n_classes: int = 4,
    clips_per_class: int = 2,
    accuracy: Accuracy = default_accuracy,
    surviving: Surviving = default_surviving,
    rng_seed: int = 0,
) -> Records:
    """The records of a design: every (pretraining, level) over splits x seeds, and every (pretraining, dose f)
    over splits x dose_seeds. Split s evaluates ESC-50 classes [s * n_classes, (s + 1) * n_classes)."""
    rng = np.random.default_rng(rng_seed)
    specs = [(p, lv, _run_f(lv, None), sp, s) for p in pretrainings for lv in levels for sp in splits for s in seeds]
    specs += [(p, "dose", float(f), sp, s) for p in pretrainings for f in doses for sp in splits for s in dose_seeds]
    runs, clips = [], []
    for p, lv, f, sp, s in specs:
        spec = {"pretraining": p, "level": lv, "f": f, "split": sp, "seed": s}
        run, rows = _one_run(spec, n_classes, clips_per_class, accuracy, rng)
        runs.append(run)
        clips += rows
    classes = [
        {
            **{"split": sp, "seed": s, "category": ESC50_CLASSES[sp * n_classes + k]},
            **{"n_dirty_pairs": 16 * clips_per_class, "n_clean_pairs": surviving(sp, s, k)},
        }
        for sp in splits
        for s in seeds
        for k in range(n_classes)
    ]
    design = {
        "config": {"seeds": list(seeds), "dose_seeds": list(dose_seeds), "doses": list(doses), "d_embed": 64},
        **{"n_runs": len(runs), "levels": list(levels), "doses": list(doses), "seeds": list(seeds)},
        **{"dose_seeds": list(dose_seeds), "splits": list(splits), "d_embed": 64},
        "cuts": ["the mn04_as backbone was not run (synthetic records)"],
        "timings": {"total_s": 1.5 * len(runs)},
        "chance": 1 / n_classes,
    }
    return Records(
        pd.DataFrame(runs, columns=list(RUN_COLUMNS)),
        pd.DataFrame(clips, columns=list(CLIP_COLUMNS)),
        pd.DataFrame(classes, columns=list(CLASS_COLUMNS)),
        design,
    )


def write_records(folder: str | Path, records: Records) -> Path:
    """The four files of the controlled stage's folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records.runs.to_csv(folder / "runs.csv", index=False)
    records.clips.to_csv(folder / "clips.csv", index=False)
    records.classes.to_csv(folder / "classes.csv", index=False)
    (folder / "design.json").write_text(json.dumps(records.design, indent=1))
    return folder
