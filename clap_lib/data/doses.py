"""True zero-shot (`unseen`), doses of training leakage and the size-matched control, as pair tables.

Every function takes the dirty training pair table the pipeline builds (columns clip / category / caption, one row
per (training clip, caption), folds 1-4 only: :func:`clap_lib.pairs.training_pairs` at level ``dirty``, with the
validation clips already taken out, see :func:`validation_clips`) and returns another pair table; nothing is read
from disk.

Dose f (issue 20)
    Of each target class c (T) with n_c training clips, the first ``k_c(f) = floor(f * n_c + 1/2)`` clips of a
    seeded order of its clips (:func:`dose_order`) keep all their dirty pairs (their class captions); no other T
    clip has a pair. ``k_c`` grows with f and the order does not depend on f, so the clips of a dose are among
    those of every larger dose (nested). f = 0 is ``unseen`` (no pair of any T clip: true zero-shot), f = 1 is
    ``dirty``.

Equal data at every dose: filling up, not subsampling
    Every dose trains on exactly as many pairs as ``dirty`` (hence as many optimizer steps per epoch). The T pairs a
    dose leaves out are replaced by *extra background pairs*: background clips with further captions of their own
    class pool, captions the clip is not already paired with (:func:`filler_pairs`). Filling up was chosen over
    subsampling because

    * f = 1 is then ``dirty`` itself and f = 0 is ``unseen`` at dirty's size: the two ends of the dose curve are
      the grid's ``dirty`` and ``unseen`` rows, with no extra run;
    * subsampling to a common size would have to shrink ``dirty`` (f = 1 cannot grow), so every dose would train
      on less data than the grid, and uniform subsampling would drop pairs of the very T clips a dose adds
      (breaking "the clips at 0.05 are among those at 0.1" for their pairs);
    * the filler adds no audio and no word of a T class's name beyond what the background captions already hold,
      only more caption variety for audio every dose sees.

    The filler is nested too (the extra pairs of a larger dose are among those of a smaller one): candidate pairs
    are ordered by (rank of the caption within its clip's seeded draw, seeded clip order), so the first m are a
    round robin over the background clips, and a dose takes the first ``n_T - n_T(f)`` of them.

Size-matched control (:func:`size_matched`)
    ``dirty`` subsampled (seeded, uniformly over pairs) to another level's pair count, e.g. ``clean``'s: beside
    Table 1 it separates the effect of removing leaking captions from that of training on fewer pairs.

Validation (:func:`validation_clips`)
    A seeded share of the *background* training clips, held out from every level: the validation loss is then
    measured on the same pairs for every level and dose, and early stopping is never chosen on a T clip or on
    fold 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clap_lib.data.esc50 import EVAL_FOLD

__all__ = [
    "DOSES",
    "dose_count",
    "dose_order",
    "dose_clips",
    "filler_pairs",
    "dose_pairs",
    "unseen_pairs",
    "size_matched",
    "validation_clips",
    "check_training_pairs",
]

#: The dose axis of issue 20 (fraction of each T class's training clips that keep their class captions).
DOSES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)

_COLUMNS = ["clip", "category", "caption"]


def check_training_pairs(pairs: pd.DataFrame, meta: pd.DataFrame) -> None:
    """Raise if `pairs` lacks the pair-table columns or holds a clip of the evaluation fold."""
    missing = [c for c in _COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pair table lacks column(s) {missing}; has {list(pairs.columns)}")
    folds = meta.loc[pairs["clip"].unique(), "fold"]
    if (folds == EVAL_FOLD).any():
        bad = folds.index[(folds == EVAL_FOLD).to_numpy()][:3].tolist()
        raise ValueError(
            f"pair table holds clips of the evaluation fold {EVAL_FOLD} (meta rows {bad}): "
            "only folds 1-4 may reach training"
        )


def _check_fraction(f: float) -> float:
    f = float(f)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"dose fraction must be in [0, 1], got {f}")
    return f


def dose_count(f: float, n: int) -> int:
    """Clips of a class of `n` training clips that keep their captions at dose f: floor(f * n + 1/2)."""
    return int(np.floor(_check_fraction(f) * n + 0.5))


def dose_order(pairs: pd.DataFrame, target: Sequence[str], seed: int) -> dict[str, np.ndarray]:
    """Per target class (in `target` order), its training clips of `pairs` in a seeded order (one generator per
    class, so a class's order does not depend on the other classes). A class without a pair is an error."""
    out = {}
    for i, c in enumerate(target):
        clips = np.unique(pairs.loc[pairs["category"] == c, "clip"].to_numpy())
        if not len(clips):
            raise ValueError(f"target class {c!r} has no training pair: no dose of it can be given")
        out[c] = np.random.default_rng([int(seed), 20, i]).permutation(clips)
    return out


def dose_clips(pairs: pd.DataFrame, target: Sequence[str], f: float, seed: int) -> np.ndarray:
    """The T clips that keep their class captions at dose f (sorted): the first k_c(f) of each class's order."""
    order = dose_order(pairs, target, seed)
    kept = [o[: dose_count(f, len(o))] for o in order.values()]
    return np.sort(np.concatenate(kept)) if kept else np.array([], dtype=np.int64)


def filler_pairs(pairs: pd.DataFrame, pools: pd.DataFrame, target: Sequence[str], seed: int) -> pd.DataFrame:
    """Every candidate extra background pair, in filling order (take the first m for m extra pairs).

    For each background clip of `pairs`, its class pool's captions (`pools`: category, caption, as
    :func:`clap_lib.caption_pools.class_pools`) that the clip is not already paired with, in a seeded order
    (one generator per clip); the candidates are then ordered by (rank within the clip, a seeded clip order).
    """
    bg = pairs[~pairs["category"].isin(list(target))]
    pool_of = {c: g["caption"].to_numpy() for c, g in pools.groupby("category", sort=False)}
    have = bg.groupby("clip")["caption"].agg(set).to_dict()
    cat_of = bg.drop_duplicates("clip").set_index("clip")["category"].to_dict()
    clips = np.random.default_rng([int(seed), 21]).permutation(np.array(sorted(have), dtype=np.int64))
    rows = []
    for pos, clip in enumerate(clips):
        pool = pool_of.get(cat_of[clip], np.array([], dtype=object))
        free = np.array([c for c in pool if c not in have[clip]], dtype=object)
        free = free[np.random.default_rng([int(seed), 22, int(clip)]).permutation(len(free))]
        rows.extend((rank, pos, int(clip), cat_of[clip], str(cap)) for rank, cap in enumerate(free))
    table = pd.DataFrame(rows, columns=["rank", "pos", *_COLUMNS]).sort_values(["rank", "pos"], kind="stable")
    return table[_COLUMNS].reset_index(drop=True)


def dose_pairs(
    pairs: pd.DataFrame,
    pools: pd.DataFrame,
    target: Sequence[str],
    f: float,
    seed: int,
    filler: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The training pairs of dose f: every background pair of `pairs`, every pair of the dose's T clips
    (:func:`dose_clips`), and the first extra background pairs (:func:`filler_pairs`) that bring the count back to
    ``len(pairs)``. Column ``role``: background / target / filler. Raises when the pools cannot fill up.
    `filler`: :func:`filler_pairs` of the same arguments, when the caller has it (it is the same at every dose)."""
    is_t = pairs["category"].isin(list(target)).to_numpy()
    keep_t = pairs["clip"].isin(dose_clips(pairs, target, f, seed)).to_numpy()
    parts = [pairs[~is_t].assign(role="background"), pairs[is_t & keep_t].assign(role="target")]
    need = len(pairs) - sum(len(p) for p in parts)
    if need:
        fill = filler if filler is not None else filler_pairs(pairs, pools, target, seed)
        if len(fill) < need:
            raise ValueError(
                f"dose {f}: the background pools hold {len(fill)} captions not yet paired with their "
                f"clips, {need} are needed to keep {len(pairs)} pairs"
            )
        parts.append(fill.iloc[:need].assign(role="filler"))
    out = pd.concat(parts, ignore_index=True)[[*_COLUMNS, "role"]]
    return out.sort_values(["clip", "role", "caption"], kind="stable").reset_index(drop=True)


def unseen_pairs(pairs: pd.DataFrame, pools: pd.DataFrame, target: Sequence[str], seed: int) -> pd.DataFrame:
    """The training level ``unseen`` (true zero-shot): dose 0, no pair of any T clip, dirty's pair count."""
    return dose_pairs(pairs, pools, target, 0.0, seed)


def size_matched(pairs: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`pairs` (e.g. dirty's) subsampled uniformly without replacement to `n` pairs (e.g. clean's count), seeded;
    rows keep their order."""
    if not 0 < n <= len(pairs):
        raise ValueError(f"size-matched control: need 0 < n <= {len(pairs)} pairs, got {n}")
    keep = np.sort(np.random.default_rng([int(seed), 23]).choice(len(pairs), size=int(n), replace=False))
    return pairs.iloc[keep].reset_index(drop=True)


def validation_clips(pairs: pd.DataFrame, target: Sequence[str], fraction: float, seed: int) -> np.ndarray:
    """A seeded `fraction` of the background clips of `pairs` (sorted), held out from the training of every level
    and dose: the validation pairs are the dirty pairs of these clips. No T clip is ever a validation clip."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    bg = np.unique(pairs.loc[~pairs["category"].isin(list(target)), "clip"].to_numpy())
    n_val = max(1, int(round(fraction * len(bg))))
    return np.sort(np.random.default_rng([int(seed), 24]).choice(bg, size=n_val, replace=False))
