"""Doses of training leakage (issue 20): nested T clips, equal pair counts, `unseen` without T, no fold 5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clap_lib.data.doses import (
    DOSES,
    check_training_pairs,
    dose_clips,
    dose_count,
    dose_order,
    dose_pairs,
    filler_pairs,
    size_matched,
    unseen_pairs,
    validation_clips,
)
from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD, split_classes
from clap_lib.data.paths import shared_data_dir

T = ("dog", "rain")
B = ("cat", "wind")


def _meta(per_class: int = 10) -> pd.DataFrame:
    """`per_class` clips of each of dog, rain, cat, wind; fold 5 for the last two of each class."""
    rows = [
        (f"{c}-{j}.wav", 1 + j % 4 if j < per_class - 2 else EVAL_FOLD, c) for c in (*T, *B) for j in range(per_class)
    ]
    return pd.DataFrame(rows, columns=["filename", "fold", "category"])


def _pools(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame([(c, f"{c} caption {k}") for c in (*T, *B) for k in range(n)], columns=["category", "caption"])


def _dirty(meta: pd.DataFrame, per_clip: int = 3) -> pd.DataFrame:
    """Each training clip with its class pool's captions 0..per_clip-1."""
    train = meta[meta["fold"] != EVAL_FOLD]
    return pd.DataFrame(
        [(i, c, f"{c} caption {k}") for i, c in zip(train.index, train["category"]) for k in range(per_clip)],
        columns=["clip", "category", "caption"],
    )


def test_dose_count_by_hand():
    # 8 training clips per class: 0.05 * 8 = 0.4 -> 0, 0.1 -> 0.8 -> 1, 0.25 -> 2, 0.5 -> 4, 1 -> 8
    assert [dose_count(f, 8) for f in DOSES] == [0, 0, 1, 2, 4, 8]
    assert [dose_count(f, 32) for f in DOSES] == [0, 2, 3, 8, 16, 32]  # ESC-50: 32 clips per class in folds 1-4
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        dose_count(1.5, 8)


def test_doses_are_nested_and_per_class():
    pairs = _dirty(_meta())
    order = dose_order(pairs, T, seed=3)
    assert set(order) == set(T) and all(len(o) == 8 for o in order.values())
    previous = np.array([], dtype=int)
    for f in DOSES:
        kept = dose_clips(pairs, T, f, seed=3)
        assert set(previous) <= set(kept)
        cats = pairs.drop_duplicates("clip").set_index("clip").loc[kept, "category"]
        assert cats.value_counts().reindex(list(T), fill_value=0).tolist() == [dose_count(f, 8)] * 2
        previous = kept
    # the same seed gives the same clips; another seed other clips
    assert np.array_equal(dose_clips(pairs, T, 0.5, 3), dose_clips(pairs, T, 0.5, 3))
    assert not np.array_equal(dose_clips(pairs, T, 0.5, 3), dose_clips(pairs, T, 0.5, 4))


def test_every_dose_has_dirty_pair_count_and_ends_are_unseen_and_dirty():
    meta = _meta()
    pairs, pools = _dirty(meta), _pools()
    n_t_pairs = int(pairs["category"].isin(T).sum())  # 2 classes x 8 clips x 3 captions = 48
    assert n_t_pairs == 48
    for f in DOSES:
        d = dose_pairs(pairs, pools, T, f, seed=0)
        assert len(d) == len(pairs)
        assert not d.duplicated(["clip", "caption"]).any()
        check_training_pairs(d, meta)
        t_rows = d[d["role"] == "target"]
        assert set(t_rows["clip"]) == set(dose_clips(pairs, T, f, 0))
        assert len(t_rows) == 3 * len(set(t_rows["clip"]))  # a dose clip keeps all its class captions
        assert (d["role"] == "filler").sum() == n_t_pairs - len(t_rows)
        assert not d.loc[d["role"] == "filler", "category"].isin(T).any()
    dirty = dose_pairs(pairs, pools, T, 1.0, 0)
    assert (dirty["role"] != "filler").all()
    assert set(map(tuple, dirty[["clip", "caption"]].to_numpy())) == set(
        map(tuple, pairs[["clip", "caption"]].to_numpy())
    )
    unseen = unseen_pairs(pairs, pools, T, 0)
    assert not unseen["category"].isin(T).any() and len(unseen) == len(pairs)


def test_filler_is_new_captions_of_the_clips_own_class_and_nested():
    pairs, pools = _dirty(_meta()), _pools()
    fill = filler_pairs(pairs, pools, T, seed=0)
    # 16 background clips x (12 - 3) unused captions each
    assert len(fill) == 16 * 9
    assert (fill["caption"].str.split(" ").str[0] == fill["category"]).all()
    assert not fill.merge(pairs, on=["clip", "caption"]).shape[0]
    # round robin: the first 16 candidates are 16 different clips
    assert fill["clip"].iloc[:16].nunique() == 16
    small = dose_pairs(pairs, pools, T, 0.5, 0)
    large = dose_pairs(pairs, pools, T, 0.25, 0)
    f_small = set(map(tuple, small.loc[small["role"] == "filler", ["clip", "caption"]].to_numpy()))
    f_large = set(map(tuple, large.loc[large["role"] == "filler", ["clip", "caption"]].to_numpy()))
    assert f_small < f_large


def test_too_small_pools_fail_with_the_counts():
    pairs = _dirty(_meta())
    with pytest.raises(ValueError, match="hold 16 captions not yet paired.*48 are needed"):
        dose_pairs(pairs, _pools(4), T, 0.0, 0)


def test_size_matched_and_validation_clips():
    pairs = _dirty(_meta())
    sub = size_matched(pairs, 40, seed=1)
    assert len(sub) == 40 and not sub.duplicated().any()
    assert len(sub.merge(pairs)) == 40  # a subset of the pairs
    with pytest.raises(ValueError, match="0 < n <= 96"):
        size_matched(pairs, 97, 1)
    val = validation_clips(pairs, T, 0.25, seed=0)
    assert len(val) == 4  # round(0.25 x 16 background clips)
    assert not pairs.set_index("clip").loc[val, "category"].isin(T).any()


def test_fold5_or_missing_columns_are_errors():
    meta = _meta()
    bad = pd.concat([_dirty(meta), pd.DataFrame([(8, "dog", "x")], columns=["clip", "category", "caption"])])
    assert meta.at[8, "fold"] == EVAL_FOLD
    with pytest.raises(ValueError, match="evaluation fold 5 \\(meta rows \\[8\\]\\)"):
        check_training_pairs(bad, meta)
    with pytest.raises(ValueError, match="lacks column"):
        check_training_pairs(_dirty(meta).drop(columns="caption"), meta)


SHARED = shared_data_dir()
needs_real = pytest.mark.skipif(
    SHARED is None or not (SHARED / "esc50").is_dir() or not (SHARED / "captions" / "clotho").is_dir(),
    reason="shared ESC-50 / captions",
)


@needs_real
def test_on_the_real_pair_table():
    """The default profile's dirty pairs (real captions, 4 per clip), both class splits, validation held out."""
    from clap_lib.data import caption_pools as cp
    from clap_lib.data.esc50 import read_esc50_meta

    meta = read_esc50_meta(SHARED / "esc50")
    pools = cp.class_pools(cp.real_caption_table(SHARED / "captions"))
    ok = np.ones(len(meta), dtype=bool)
    dirty = cp.real_pairs(meta, ok, pools, 4, seed=0)
    for split in (split_classes(0), split_classes(0, swap=True)):
        val = validation_clips(dirty, split.target, 0.2, seed=0)
        train = dirty[~dirty["clip"].isin(val)]
        sizes = set()
        previous: set = set()
        for f in DOSES:
            d = dose_pairs(train, pools, split.target, f, seed=0)
            check_training_pairs(d, meta)
            kept = set(d.loc[d["category"].isin(split.target), "clip"])
            assert previous <= kept
            previous = kept
            sizes.add(len(d))
        assert sizes == {len(train)}
        assert len(previous) == 25 * 32  # f = 1: every T training clip
        assert set(ESC50_CLASSES) == set(split.target) | set(split.background)
