"""Real-caption pools per ESC-50 class, and the seeded (clip, caption) pairs drawn from them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clap_lib.data.caption_pools import (
    CAPTIONS_ENV,
    class_pools,
    locate_captions,
    pool_captions,
    pool_sizes,
    pools_fingerprint,
    real_caption_table,
    real_pairs,
    wrong_sense_hits,
)
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.paths import shared_data_dir

SHARED = shared_data_dir()
REAL = SHARED / "captions" if SHARED else None
needs_real = pytest.mark.skipif(
    REAL is None or not all((REAL / s).is_dir() for s in ("audiocaps", "clotho")),
    reason=f"AudioCaps / Clotho captions not at {REAL}",
)

TABLE = pd.DataFrame(
    {
        "source": ["audiocaps"] * 6 + ["clotho"] * 3,
        "item_id": ["a", "b", "c", "d", "e", "f", "x.wav", "x.wav", "y.wav"],
        "caption": [
            "A dog barks while a cat meows",
            "Puppies whimper",
            "Someone fires a gun in the distance",
            "A fire crackles in the fireplace",
            "A man speaks",
            "A dog barks while a cat meows",
            "Applause from a large crowd",
            "A soda can is opened",
            "Opening a drawer slowly",
        ],
    }
)


def test_pools_by_hand():
    pools = class_pools(TABLE)
    got = {(c, t) for c, t in zip(pools["category"], pools["caption"])}
    assert got == {
        ("dog", "A dog barks while a cat meows"),
        ("cat", "A dog barks while a cat meows"),
        ("dog", "Puppies whimper"),
        ("crackling_fire", "A fire crackles in the fireplace"),
        ("clapping", "Applause from a large crowd"),
        ("can_opening", "A soda can is opened"),
    }
    # a caption of two classes is in both pools and no other; the duplicate text is kept once
    assert (pools["caption"] == "A dog barks while a cat meows").sum() == 2
    row = pools[(pools["category"] == "dog") & (pools["caption"] == "Puppies whimper")].iloc[0]
    assert row["source"] == "audiocaps" and row["matched_words"] == ("puppy", "whimper")
    assert pools[pools["category"] == "cat"]["matched_words"].iloc[0] == ("cat", "meow")
    assert list(pools["category"]) == sorted(pools["category"], key=ESC50_CLASSES.index)  # ESC-50 order
    # wrong senses are kept out: the gunfire caption is no fire, the drawer no can
    assert wrong_sense_hits("Someone fires a gun in the distance", "crackling_fire") == ("gunfire / firing",)
    assert wrong_sense_hits("Opening a drawer slowly", "can_opening") == ("opening a door / drawer / lid",)


def test_pool_sizes_name_every_class_including_empty_ones():
    sizes = pool_sizes(class_pools(TABLE))
    assert list(sizes.index) == list(ESC50_CLASSES)
    assert sizes.loc["dog"].to_dict() == {"n_captions": 2, "audiocaps": 2, "clotho": 0}
    assert sizes.loc["clapping"].to_dict() == {"n_captions": 1, "audiocaps": 0, "clotho": 1}
    assert sizes.loc["rain", "n_captions"] == 0 and (sizes["n_captions"] == 0).sum() == 45


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match=r"unknown ESC-50 class 'wolf'.*dog"):
        class_pools(TABLE, ["dog", "wolf"])


def _meta() -> pd.DataFrame:
    # 3 dog clips (folds 1, 2, 5), 2 cat clips, 1 rain clip
    return pd.DataFrame(
        {
            "filename": [f"{i}.wav" for i in range(6)],
            "fold": [1, 2, 5, 1, 3, 4],
            "category": ["dog", "dog", "dog", "cat", "cat", "rain"],
        }
    )


def _pools() -> pd.DataFrame:
    rows = [("dog", f"dog caption {k}") for k in range(5)] + [("cat", "cat caption 0"), ("cat", "cat caption 1")]
    return pd.DataFrame(rows, columns=["category", "caption"]).assign(source="audiocaps", matched_words=[()] * 7)


def test_real_pairs_sample_without_replacement_and_report_short_and_empty_pools():
    meta, pools = _meta(), _pools()
    ok = np.array([True, True, True, True, False, True])
    with pytest.warns(UserWarning, match="empty caption pools: rain"):
        pairs = real_pairs(meta, ok, pools, captions_per_clip=3, seed=0)
    assert list(pairs.columns) == ["clip", "category", "caption"]
    # fold-5 clip 2 and the unreadable clip 4 get nothing; the cat pool holds 2 < 3 captions; rain none
    assert pairs.groupby("clip").size().to_dict() == {0: 3, 1: 3, 3: 2}
    for clip, g in pairs.groupby("clip"):
        own_pool = set(pools.loc[pools["category"] == meta.at[clip, "category"], "caption"])
        assert g["caption"].is_unique and set(g["caption"]) <= own_pool
    assert pairs.attrs["info"] == {"captions_per_clip": 3, "short_pools": {"cat": 2}, "empty_pools": ["rain"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = real_pairs(meta, ok, pools, 3, seed=0)
        other = real_pairs(meta, ok, pools, 3, seed=1)
        # a clip's draw does not depend on the other clips
        alone = real_pairs(meta, np.array([True, False, False, False, False, False]), pools, 3, seed=0)
    pd.testing.assert_frame_equal(pairs, again)
    assert not pairs.equals(other)
    assert list(alone["caption"]) == list(pairs.loc[pairs["clip"] == 0, "caption"])
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="captions_per_clip"):
            real_pairs(meta, ok, pools, bad, seed=0)


def test_fingerprint_follows_the_pool_content():
    pools = _pools()
    assert pools_fingerprint(pools) == pools_fingerprint(pools.copy())
    changed = pools.copy()
    changed.loc[0, "caption"] = "dog caption X"
    assert pools_fingerprint(changed) != pools_fingerprint(pools)
    assert len(pools_fingerprint(pools)) == 16


def test_locate_captions(tmp_path, monkeypatch):
    (tmp_path / "audiocaps").mkdir()
    with pytest.raises(FileNotFoundError, match="must hold audiocaps and clotho"):
        locate_captions(tmp_path)
    (tmp_path / "clotho").mkdir()
    assert locate_captions(tmp_path) == tmp_path
    monkeypatch.setenv(CAPTIONS_ENV, str(tmp_path))
    assert locate_captions() == tmp_path


def _write_caption_files(root, audiocaps_splits=("train", "val"), clotho_splits=("development", "evaluation")):
    """Tiny AudioCaps / Clotho caption files in the official layouts (text only), two rows per split."""
    (root / "audiocaps").mkdir()
    (root / "clotho").mkdir()
    for s in audiocaps_splits:
        pd.DataFrame(
            {
                "audiocap_id": [f"{s}1", f"{s}2"],
                "youtube_id": [f"{s}A", f"{s}B"],
                "start_time": [0, 30],
                "caption": [f"a dog barks ({s})", f"rain falls ({s})"],
            }
        ).to_csv(root / "audiocaps" / f"{s}.csv", index=False)
    for s in clotho_splits:
        pd.DataFrame(
            {
                "file_name": [f"{s}1.wav", f"{s}2.wav"],
                **{f"caption_{i}": [f"a cat meows {i} ({s})", f"wind blows {i} ({s})"] for i in range(1, 6)},
            }
        ).to_csv(root / "clotho" / f"clotho_captions_{s}.csv", index=False)


def test_pool_captions_of_the_all_splits_table_are_the_real_caption_table(tmp_path):
    from clap_lib.data.filter_audit import all_caption_table

    _write_caption_files(tmp_path)
    every = all_caption_table(tmp_path)
    assert set(every["split"]) == {"train", "val", "development", "evaluation"}  # non-vacuous: more than the pools
    pd.testing.assert_frame_equal(pool_captions(every), real_caption_table(tmp_path))


def test_pool_captions_need_the_pool_splits(tmp_path):
    from clap_lib.data.filter_audit import all_caption_table

    _write_caption_files(tmp_path, audiocaps_splits=("val",))
    with pytest.raises(FileNotFoundError, match="no audiocaps 'train' captions"):
        pool_captions(all_caption_table(tmp_path))


@needs_real
def test_real_pools():
    table = real_caption_table(REAL)
    assert table.groupby("source").size().to_dict() == {"audiocaps": 49838, "clotho": 14465}
    assert table.groupby("source")["item_id"].nunique().to_dict() == {"audiocaps": 49838, "clotho": 2893}
    pools = class_pools(table)
    sizes = pool_sizes(pools)
    assert (sizes["n_captions"] > 0).all(), sizes[sizes["n_captions"] == 0].index.tolist()
    assert sizes.loc["dog", "n_captions"] > 2000 and sizes.loc["brushing_teeth", "n_captions"] >= 5
    # pooled captions describe their class: none is a wrong sense of it
    assert not any(wrong_sense_hits(t, c) for c, t in zip(pools["category"], pools["caption"]))
    assert pools.duplicated(["category", "caption"]).sum() == 0
