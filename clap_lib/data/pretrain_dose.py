"""The pretraining dose (issue 21): which ESC-50 clips a backbone is trained on when it sees the background classes
B plus a fraction g of the target classes' T clips with their labels (weight source ``...train:background+T:G``).

For every g the clips are: every usable training clip (folds 1-4) of B, and of each T class the first
``round(g * n_c)`` of its n_c usable training clips in one seeded order per class. The order does not depend on g,
so the clip sets are nested (g < g' => clips(g) is a subset of clips(g')), and g = 0 holds no T clip at all. The
split into training and validation clips is likewise one seeded assignment of the g = 1 clip set, restricted to
each dose, so training sets and validation sets are nested too. The head has the B classes only at g = 0 (no T
label exists for that network, not even as a negative) and B + T for g > 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clap_lib.data.esc50 import ESC50_CLASSES, ClassSplit, split_by_clip

__all__ = ["dose_classes", "dose_clips"]


def dose_classes(split: ClassSplit, g: float) -> tuple[str, ...]:
    """The head's classes at dose g: B, then T when g > 0."""
    _check_g(g)
    return (*split.background, *split.target) if g > 0 else tuple(split.background)


def dose_clips(
    meta: pd.DataFrame, usable: np.ndarray, split: ClassSplit, g: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(idx, train, val) at dose g: `idx` the sorted row indices of `meta` trained on, `train` / `val` positions
    in `idx` (as :func:`clap_lib.data.esc50.split_by_clip` gives them). `usable`: a mask of the clips that may be used
    (training folds, readable); fold 5 must not be in it."""
    _check_g(g)
    usable = np.asarray(usable, dtype=bool)
    if usable.shape != (len(meta),):
        raise ValueError(f"usable must be a mask of the {len(meta)} clips, got shape {usable.shape}")
    category = meta["category"].to_numpy()
    full = [np.flatnonzero(usable & (category == c)) for c in split.background]
    chosen = list(full)
    for c in split.target:
        clips = np.flatnonzero(usable & (category == c))
        # one order per (seed, class), whatever g is: the prefixes are nested
        order = np.random.default_rng([seed, ESC50_CLASSES.index(c)]).permutation(clips)
        full.append(order)
        chosen.append(order[: int(np.floor(g * len(order) + 0.5))])
    everything = np.sort(np.concatenate(full))
    idx = np.sort(np.concatenate(chosen))
    # validation clips: one draw over the g = 1 set, so every dose's training / validation sets are nested
    _, va_all = split_by_clip(everything, val_fraction, seed)
    is_val = np.isin(idx, everything[va_all])
    return idx, np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _check_g(g: float) -> None:
    if not 0 <= g <= 1:
        raise ValueError(f"the dose g must be in [0, 1], got {g!r}")
