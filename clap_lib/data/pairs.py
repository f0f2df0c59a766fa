"""Training pairs of the ESC-50-sized profiles: (training clip, caption) rows for one training level.

Caption sources: `bank` (the hand-written bank, clap_lib.data.captions: each clip x every caption of its class) and
`real` (AudioCaps train / Clotho development captions that describe the clip's class, clap_lib.data.caption_pools:
each clip x a seeded sample of `captions_per_clip` of them). Training levels (clap_lib.data.filtering.filter_level):
dirty = every pair, clean = the paper's literal rule on the target classes' names, strict = the ontology-expanded
word set. Only folds 1-4 ever reach training.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clap_lib.config.experiment import ExperimentConfig
from clap_lib.data import caption_pools
from clap_lib.data.caption_pools import real_pairs
from clap_lib.data.esc50 import EVAL_FOLD, ClassSplit
from clap_lib.data.filtering import level_pairs


@dataclass(frozen=True)
class CaptionSource:
    kind: str  # bank | real
    pools: pd.DataFrame | None  # real: one row per (category, caption)
    fingerprint: str


def load_caption_source(cfg: ExperimentConfig, data_root: str | Path | None = None) -> CaptionSource:
    """The captions a run pairs with its clips; fails (naming what is missing) before any training."""
    if cfg.captions == "bank":
        from clap_lib.data.captions import bank_fingerprint

        return CaptionSource("bank", None, bank_fingerprint())

    root = Path(data_root) / "captions" if data_root is not None else None
    table = caption_pools.real_caption_table(root)
    pools = caption_pools.class_pools(table)
    return CaptionSource("real", pools, caption_pools.pools_fingerprint(pools))


def _all_pairs(cfg: ExperimentConfig, meta: pd.DataFrame, ok: np.ndarray, source: CaptionSource) -> pd.DataFrame:
    if source.kind == "bank":
        from clap_lib.data.captions import CAPTION_BANK
        from clap_lib.data.esc50 import make_pairs

        return make_pairs(meta, ok, CAPTION_BANK)

    return real_pairs(meta, ok, source.pools, cfg.captions_per_clip, cfg.seed)


def training_pairs(
    cfg: ExperimentConfig, meta: pd.DataFrame, ok: np.ndarray, split: ClassSplit, level: str, source: CaptionSource
) -> tuple[pd.DataFrame, dict, str]:
    """(pairs with columns clip / category / caption, info, fingerprint of exactly these pairs).

    info: n_pairs_dirty, n_pairs, removed_per_word, n_target_clip_pairs (pairs of T clips left: the leakage the
    caption filter leaves) and surviving_T (per T class, the fraction of its pairs that survive)."""

    pairs = _all_pairs(cfg, meta, ok, source)
    assert (meta.loc[pairs["clip"], "fold"] != EVAL_FOLD).all()  # fold 5 never reaches training
    kept, info = level_pairs(pairs, split.target, level)
    kept = kept.reset_index(drop=True)
    if kept.empty:
        raise ValueError(f"training level {level!r} leaves no training pair ({len(pairs)} before filtering)")
    info = {
        "n_pairs_dirty": len(pairs),
        **info,
        "n_pairs": len(kept),
        "n_target_clip_pairs": int(kept["category"].isin(split.target).sum()),
    }
    fp = hashlib.sha256(kept[["clip", "caption"]].to_csv(index=False).encode()).hexdigest()[:16]
    return kept, info, fp
