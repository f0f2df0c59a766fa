"""Real training captions for ESC-50 clips: per class, the AudioCaps / Clotho captions that describe its sound.

Source (text only): AudioCaps ``train.csv`` and Clotho ``clotho_captions_development.csv`` under a captions
root (``audiocaps/`` and ``clotho/`` below it): the ``captions_root`` parameter, else ``$CLAP_CAPTIONS``, else
``<shared data>/captions``. Evaluation splits are never read.

A caption joins the pool of class ``c`` when it matches a phrase of :func:`clap_lib.data.filtering.class_vocabulary`
(``c``'s name, the names of its AudioSet classes, its everyday synonyms; whole tokens, stemmed) and none of
``c``'s wrong-sense patterns (:data:`WRONG_SENSE`: "gunfire" is no crackling fire, "opening a drawer" no
can opening). A caption matching several classes joins each of their pools, and only those. Classes whose
pool is empty are named by :func:`pool_sizes` and by the info of :func:`real_pairs`, never dropped silently.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from clap_lib.data.esc50 import ESC50_CLASSES, train_eval_masks
from clap_lib.data.filtering import class_vocabulary, match_key, singularize, stem, tokenize
from clap_lib.data.paths import shared_data_dir
from clap_lib.paper.datasets import read_audiocaps, read_clotho

__all__ = [
    "CAPTIONS_ENV",
    "POOL_SOURCES",
    "POOL_SPLITS",
    "WRONG_SENSE",
    "locate_captions",
    "real_caption_table",
    "pool_captions",
    "class_pools",
    "pool_sizes",
    "pools_fingerprint",
    "real_pairs",
    "wrong_sense_hits",
]

CAPTIONS_ENV = "CLAP_CAPTIONS"
POOL_SOURCES: tuple[str, ...] = ("audiocaps", "clotho")  # AudioCaps train, Clotho development
#: The one split of each source the pools draw from (the evaluation splits stay unread).
POOL_SPLITS: Mapping[str, str] = MappingProxyType({"audiocaps": "train", "clotho": "development"})

_NOT = r"^(?!.*\b(?:{})\b)"  # "the caption does not hold any of these words"

#: ESC-50 class -> ((pattern name, regex on the lower-cased caption), ...): captions that hold the class's
#: word in another sense. A caption matching one is kept out of that class's pool, and the filter audit
#: (clap_lib.data.filter_audit) counts it as a likely false positive of the removal rules.
WRONG_SENSE: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {
        "dog": (("hot dog", r"\bhot ?dogs?\b"),),
        "pig": (("guinea pig", r"\bguinea pigs?\b"),),
        "crow": (("a rooster crows", r"\b(?:roosters?|cocks?|cockerels?)\b.*\bcrow"),),
        "sea_waves": (("sound / radio waves", r"\b(?:sound|radio|sine|shock|electromagnetic) waves?\b"),),
        "crackling_fire": (
            (
                "gunfire / firing",
                r"\bgun ?fire\b|\bfir(?:e|es|ed|ing)\b.*\b(?:guns?|shots?|gunshots?|rifles?|weapons?|"
                r"cannons?|rounds)\b|\b(?:guns?|rifles?|cannons?|weapons?)\b.*\bfir(?:e|es|ed|ing)\b|"
                r"\bopens? fire\b|\bmachine ?guns?\b",
            ),
            ("fire truck / alarm", r"\bfire (?:trucks?|engines?|alarms?|hydrants?|stations?|sirens?|departments?)\b"),
            ("fireworks", r"\bfire ?(?:works?|crackers?)\b"),
            (
                "crackling of static / paper / frying",
                r"\b(?:static|radio|electric\w*|paper|plastic|wrappers?|speakers?|vinyl|record|frying|bacon|oil|grease)\b"
                r".*\bcrackl|\bcrackl\w*\b.*\b(?:static|radio|paper|plastic|wrappers?|speakers?|vinyl|frying|bacon|"
                r"oil|grease)\b",
            ),
        ),
        "chirping_birds": (
            (
                "chirping insects / frogs / devices",
                r"\b(?:crickets?|insects?|cicadas?|frogs?|smoke (?:alarm|detector)s?|electronic)\b",
            ),
        ),
        "water_drops": (
            (
                "something dropped",
                r"\bdrop(?:s|ped|ping)? (?:a|an|the|some|something|objects?|items?|coins?|"
                r"keys?|things?|down|off)\b|\b(?:is|are|being|gets?|was|were|been) "
                r"dropped\b|\bdropped\b",
            ),
            (
                "running water",
                _NOT.format("drops?|dripp?\\w*|droplets?") + r".*\b(?:running|flowing|"
                r"streams?|rivers?|waterfall)\b",
            ),
        ),
        "wind": (("wind-up / wind instrument", r"\bwind(?:s|ing)?[ -]up\b|\bwind instruments?\b"),),
        "pouring_water": (("pouring rain", r"\bpouring (?:down )?rain\b|\brain\w* (?:is |are )?pour\w*|\bdownpour\b"),),
        "crying_baby": (
            (
                "a baby not crying",
                _NOT.format("cry|cries|crying|cried|wail\\w*|sob\\w*|whin\\w*|scream\\w*|fuss\\w*|weep\\w*")
                + r".*\bbab(?:y|ies)\b",
            ),
            ("crying adults / birds", _NOT.format("bab(?:y|ies)|infants?|toddlers?") + r".*\bcr(?:y|ies|ying|ied)\b"),
        ),
        "clapping": (("thunder clap", r"\bthunder ?claps?\b|\bclaps? of thunder\b"),),
        "brushing_teeth": (("brushing other things", _NOT.format("teeth|tooth|toothbrush\\w*") + r".*\bbrush"),),
        "door_wood_knock": (
            ("woods (a forest)", r"\bwoods\b"),
            ("a door that is not knocked", _NOT.format("knock\\w*|tap\\w*|rap\\w*|bang\\w*") + r".*\bdoors?\b"),
            ("engine knocking", r"\bengines?\b.*\bknock|\bknock\w*\b.*\bengines?\b"),
        ),
        "door_wood_creaks": (
            ("woods (a forest)", r"\bwoods\b"),
            ("a door that does not creak", _NOT.format("creak\\w*|squeak\\w*|hinges?") + r".*\bdoors?\b"),
        ),
        "mouse_click": (
            (
                "a mouse, the rodent",
                r"\b(?:mouse|mice)\b.*\b(?:squeak\w*|scurr\w*|chew\w*|rodents?|cats?)\b|"
                r"\b(?:squeak\w*|scurr\w*)\b.*\b(?:mouse|mice)\b",
            ),
            ("clicks of other things", _NOT.format("mouse|mice|computer") + r".*\bclick"),
        ),
        "keyboard_typing": (
            ("'type of'", r"\btypes? of\b"),
            (
                "a musical keyboard",
                r"\bkeyboards?\b.*\b(?:music\w*|melod\w*|notes?|songs?|chords?|piano)\b"
                r"|\b(?:music\w*|melod\w*|songs?|piano)\b.*\bkeyboards?\b",
            ),
        ),
        "can_opening": (
            (
                "opening a door / drawer / lid",
                r"\bopen(?:s|ed|ing)?\b.*\b(?:doors?|drawers?|windows?|cabinets?|"
                r"cupboards?|gates?|lids?|box(?:es)?|bags?|zippers?|curtains?|"
                r"closets?|trunks?|umbrellas?|envelopes?|books?|packages?)\b",
            ),
        ),
        "washing_machine": (
            (
                "other machines",
                r"\b(?:sewing|slot|vending|coffee|espresso|fax|pinball|arcade|drum|fog|"
                r"smoke|time|gum) machines?\b|\bmachine ?guns?\b",
            ),
            (
                "washing hands / dishes",
                r"\bwash\w*\b.*\b(?:hands?|dish\w*|face|hair|cars?|sinks?|pots?|"
                r"pans?)\b",
            ),
        ),
        "clock_alarm": (("car / fire / smoke alarm", r"\b(?:car|fire|smoke|burglar|security|house) alarms?\b"),),
        "clock_tick": (("an alarm clock ringing", r"\balarm clocks?\b"),),
        "glass_breaking": (
            ("glasses", r"\bglasses\b"),
            (
                "brakes spelt 'breaks'",
                r"\b(?:cars?|bus(?:es)?|trucks?|trains?|vehicles?|bikes?|bicycles?|"
                r"tires?|wheels?)\b.*\bbreak(?:s|ing)?\b|\bbreak(?:s|ing)? "
                r"(?:squeal|screech|hiss)\w*",
            ),
            ("waves breaking", r"\bwaves?\b.*\bbreak|\bbreak\w*\b.*\bwaves?\b"),
        ),
        "hand_saw": (
            ("hands", r"\bhands\b|\bby hand\b|\bhand (?:dryer|held|clap\w*|rub\w*|wash\w*)\b"),
            ("a power saw", r"\bchain ?saws?\b|\b(?:power|electric|circular|table|buzz) ?saws?\b"),
        ),
        "car_horn": (
            ("a goose honks", r"\b(?:goose|geese)\b"),
            (
                "other horns",
                r"\b(?:train|french|fog|ship|boat|bike|bicycle)s? horns?\b|\bhorns? (?:section|player|"
                r"music)\b|\b(?:trumpets?|saxophones?|tubas?)\b",
            ),
            ("a car without a horn", _NOT.format("horns?|honk\\w*|beep\\w*|toot\\w*") + r".*\bcars?\b"),
        ),
        "engine": (("fire engine", r"\bfire engines?\b"),),
        "church_bells": (
            (
                "other bells",
                r"\b(?:bicycle|bike|door|jingle|sleigh|cow|hand|school|phone|telephone|"
                r"dinner|shop|store|wind|warning|alarm|crossing|trolley|tram) ?bells?\b|"
                r"\bwind ?chimes?\b|"
                r"\bbells?\b.*\b(?:bicycle|bike|trolley|tram|train|crossing)\b|"
                r"\b(?:bicycle|bike|trolley|tram|train|crossing)\b.*\bbells?\b",
            ),
            (
                "a church without bells",
                _NOT.format("bells?|chim\\w*|toll\\w*|ring\\w*|peal\\w*") + r".*\bchurch(?:es)?\b",
            ),
        ),
        "airplane": (("a jet of water / steam", r"\bjets? of\b|\b(?:water|steam|air) jets?\b"),),
    }
)

_COMPILED: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    c: tuple((name, re.compile(rx)) for name, rx in pats) for c, pats in WRONG_SENSE.items()
}


def wrong_sense_hits(caption: str, class_name: str) -> tuple[str, ...]:
    """Names of the :data:`WRONG_SENSE` patterns of ``class_name`` that ``caption`` matches."""
    text = caption.lower()
    return tuple(name for name, rx in _COMPILED.get(class_name, ()) if rx.search(text))


def locate_captions(captions_root: str | Path | None = None) -> Path:
    """The captions root (holding ``audiocaps/`` and ``clotho/``): parameter, ``$CLAP_CAPTIONS``, shared data."""
    shared = shared_data_dir()
    for cand, why in (
        (captions_root, "parameter"),
        (os.environ.get(CAPTIONS_ENV), f"${CAPTIONS_ENV}"),
        (shared and shared / "captions", "shared data folder"),
    ):
        if cand in (None, ""):
            continue
        p = Path(cand)
        if all((p / s).is_dir() for s in POOL_SOURCES):
            return p
        raise FileNotFoundError(
            f"captions root {p} (from the {why}) must hold {' and '.join(POOL_SOURCES)}/; "
            "AudioCaps: github.com/cdjkim/audiocaps, Clotho: zenodo.org/record/3490684"
        )
    raise FileNotFoundError(f"no captions root: no parameter, ${CAPTIONS_ENV} unset and no shared data folder")


def real_caption_table(captions_root: str | Path | None = None) -> pd.DataFrame:
    """AudioCaps train + Clotho development captions: columns source, item_id (AudioCaps youtube_id, Clotho
    file_name: one audio file), caption; file order."""
    root = locate_captions(captions_root)
    ac = read_audiocaps(root / "audiocaps", [POOL_SPLITS["audiocaps"]], require_audio=False)
    cl = read_clotho(root / "clotho", [POOL_SPLITS["clotho"]], require_audio=False)
    return pd.concat(
        [
            pd.DataFrame({"source": "audiocaps", "item_id": ac["youtube_id"], "caption": ac["caption"]}),
            pd.DataFrame({"source": "clotho", "item_id": cl["audio_id"], "caption": cl["caption"]}),
        ],
        ignore_index=True,
    )


def pool_captions(captions: pd.DataFrame) -> pd.DataFrame:
    """:func:`real_caption_table` cut out of a table of every split already read (columns source, split,
    item_id, caption: :func:`clap_lib.data.filter_audit.all_caption_table`), so that a page showing both the pools
    and the filter audit reads the caption files once. A pool split absent from the table is an error, as
    its missing file is for :func:`real_caption_table`."""
    parts = []
    for source, split in POOL_SPLITS.items():
        part = captions[(captions["source"] == source) & (captions["split"] == split)]
        if part.empty:
            raise FileNotFoundError(f"no {source} {split!r} captions in the table: the pools need that split's file")
        parts.append(part[["source", "item_id", "caption"]])
    return pd.concat(parts, ignore_index=True)


def _phrase_index(classes: Sequence[str]) -> tuple[dict[tuple[str, str], set[int]], list[tuple[str, tuple, tuple]]]:
    """(word key -> ids of the phrases holding it, [(class, phrase keys, phrase words), ...] by phrase id)."""
    phrases = [(c, tuple(match_key(w) for w in p), p) for c in classes for p in class_vocabulary(c)]
    by_key: dict[tuple[str, str], set[int]] = {}
    for i, (_, keys, _words) in enumerate(phrases):
        for k in keys:
            by_key.setdefault(k, set()).add(i)
    return by_key, phrases


def class_pools(captions: pd.DataFrame, classes: Sequence[str] = ESC50_CLASSES) -> pd.DataFrame:
    """Per class, the captions of ``captions`` (:func:`real_caption_table`) that describe its sound.

    Returns columns category, caption, source, matched_words (the vocabulary phrases that matched, e.g.
    ``("bark", "puppy")`` or ``("jet engine",)``, in vocabulary order), one row per (class, distinct caption
    text), classes in ``classes`` order and captions in table order; a caption text seen in both sources keeps
    its first source.
    """
    for c in classes:
        if c not in ESC50_CLASSES:
            raise ValueError(f"unknown ESC-50 class {c!r}; allowed: {', '.join(ESC50_CLASSES)}")
    table = captions.drop_duplicates("caption")
    texts = list(table["caption"].astype(str))
    sources = list(table["source"])
    by_key, phrases = _phrase_index(classes)
    token_lists = [tokenize(t) for t in texts]
    keys_of: dict[str, tuple[tuple[str, str], ...]] = {}
    for tok in {t for toks in token_lists for t in toks}:
        ks = tuple(k for k in (("noun", singularize(tok)), ("stem", stem(tok))) if k in by_key)
        if ks:
            keys_of[tok] = ks
    rows: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {c: [] for c in classes}
    for text, src, toks in zip(texts, sources, token_lists):
        present = {k for t in toks for k in keys_of.get(t, ())}
        if not present:
            continue
        candidates = {i for k in present for i in by_key[k]}
        hits: dict[str, list[str]] = {}
        for i in sorted(candidates):
            cls, keys, words = phrases[i]
            if all(k in present for k in keys):
                hits.setdefault(cls, []).append(" ".join(words))
        for cls, matched in hits.items():
            if not wrong_sense_hits(text, cls):
                rows[cls].append((text, src, tuple(matched)))
    out = [(c, t, s, w) for c in classes for t, s, w in rows[c]]
    return pd.DataFrame(out, columns=["category", "caption", "source", "matched_words"])


def pool_sizes(pools: pd.DataFrame, classes: Sequence[str] = ESC50_CLASSES) -> pd.DataFrame:
    """Per class (every one of ``classes``, 0 when empty): n_captions and the count per source."""
    counts = pools.groupby(["category", "source"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=list(classes), columns=list(POOL_SOURCES), fill_value=0).astype(int)
    counts.insert(0, "n_captions", counts.sum(axis=1))
    counts.index.name = "category"
    return counts


def pools_fingerprint(pools: pd.DataFrame) -> str:
    """A short hash of the pools' (category, caption) rows, for cache keys."""
    blob = pools[["category", "caption"]].to_csv(index=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def real_pairs(
    meta: pd.DataFrame, ok: np.ndarray, pools: pd.DataFrame, captions_per_clip: int, seed: int
) -> pd.DataFrame:
    """Each training clip (folds 1-4, ``ok`` True) x a seeded sample of ``captions_per_clip`` captions of its
    class's pool, without replacement within a clip: columns clip (row of ``meta``), category, caption.

    Each clip draws from its own generator (``seed``, clip row), so a clip's captions do not depend on the
    other clips. When a pool holds fewer captions, the clip gets all of them. ``pairs.attrs["info"]`` says so:
    captions_per_clip, short_pools (class -> pool size, for pools smaller than captions_per_clip) and
    empty_pools (classes whose clips get no pair; also warned about, naming them).
    """
    if not isinstance(captions_per_clip, (int, np.integer)) or captions_per_clip < 1:
        raise ValueError(f"captions_per_clip must be a whole number >= 1, got {captions_per_clip!r}")
    train, _ = train_eval_masks(meta)
    clips = np.flatnonzero(train & np.asarray(ok, dtype=bool))
    pool_of = {c: g["caption"].to_numpy() for c, g in pools.groupby("category", sort=False)}
    rows: list[tuple[int, str, str]] = []
    for i in clips:
        cat = meta.at[i, "category"]
        pool = pool_of.get(cat, np.array([], dtype=object))
        k = min(int(captions_per_clip), len(pool))
        pick = np.random.default_rng([int(seed), int(i)]).choice(len(pool), size=k, replace=False) if k else []
        rows.extend((int(i), cat, str(pool[j])) for j in pick)
    pairs = pd.DataFrame(rows, columns=["clip", "category", "caption"])
    used = list(dict.fromkeys(meta.loc[clips, "category"]))
    sizes = {c: len(pool_of.get(c, ())) for c in used}
    empty = [c for c in used if sizes[c] == 0]
    if empty:
        warnings.warn(
            f"empty caption pools: {', '.join(empty)}: their training clips get no real caption", stacklevel=2
        )
    pairs.attrs["info"] = {
        "captions_per_clip": int(captions_per_clip),
        "short_pools": {c: n for c, n in sizes.items() if 0 < n < captions_per_clip},
        "empty_pools": empty,
    }
    return pairs
