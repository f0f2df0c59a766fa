"""The leakage filter: remove training captions that mention a word of a target class name.

The paper removes "captions containing a word of an ESC-50 class name" without saying how a word is
matched. This module is the project's definition of that rule.

Class words
    Each class name is split on ``_`` and spaces and lower-cased; words in :data:`STOP_WORDS` are
    dropped (``can_opening`` -> ``opening``); duplicates are removed keeping first occurrence.

Caption tokens (:func:`tokenize`)
    The caption is lower-cased, curly apostrophes become ``'``, a possessive ``'s`` is dropped
    (``dog's`` -> ``dog``), other apostrophes are deleted (``don't`` -> ``dont``), and the text is
    split on every character that is not a letter or digit (spaces, hyphens, underscores, all other
    punctuation). Only whole tokens are compared: ``hotdog`` never matches ``dog``.

Matching rule: a caption leaks class word ``w`` iff some caption token ``t`` matches ``w``:
    * if ``w`` is in :data:`NOUN_ONLY_WORDS`: ``singularize(t) == singularize(w)`` (see
      :func:`singularize`), so ``trains``/``tooth``/``mice``/``glasses`` match but ``training``,
      ``engineer``, ``winding``, ``firing``, ``fireworks`` (vs ``fire``) and ``wooden`` do not;
    * otherwise: equal Snowball English stems, ``stem(t) == stem(w)``, so ``coughs``~``coughing``,
      ``laughing``~``laughs``, ``crackles``~``crackling``, ``cries``~``crying``.
A caption is removed iff it leaks at least one class word.

Training levels (:func:`filter_level`, names in :data:`clap_lib.config.levels.TRAININGS`)
    ``dirty`` keeps every caption; ``clean`` is the rule above on the target classes' names (the paper's
    literal rule); ``strict`` (beyond the paper) applies the same rule to the ontology-expanded word set of
    each target class (:func:`strict_words`): its class words, the one-word entries of its vocabulary
    (:func:`class_vocabulary`: the words of its AudioSet classes' names, clap_lib.data.ontology, and its everyday
    synonyms). It removes a superset of ``clean``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import snowballstemmer

from clap_lib.config.levels import CAPTION_TRAININGS, TRAININGS
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.ontology import ESC50_SYNONYMS, NAME_QUALIFIERS, NAME_WORDS_NOT_USED, esc50_audioset_names

__all__ = [
    "STOP_WORDS",
    "NOUN_ONLY_WORDS",
    "IRREGULAR_SINGULARS",
    "tokenize",
    "class_words",
    "singularize",
    "stem",
    "match_key",
    "FilterResult",
    "leakage_filter",
    "GroupedFilterResult",
    "filter_grouped",
    "class_vocabulary",
    "strict_words",
    "filter_level",
    "level_pairs",
]


#: English function words never used as class words (articles, pronouns, prepositions,
#: conjunctions, auxiliary and modal verbs, negation). Deliberately small and explicit: it holds
#: no content word of any ESC-50 class name except the modal "can" of ``can_opening``.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a an the
    i me my mine you your yours he him his she her hers it its we us our ours they them their theirs
    this that these those who whom whose which what there here
    of in on at by for with from to into onto over under through across after before during near
    off out up down about against along around behind between beyond inside outside upon within
    without as than via
    and or but nor so yet if while because then also not no
    is are was were be been being am do does did has have had
    can could will would shall should may might must
""".split()
)

#: Class words that are nouns only: matched by singular form, never by stem (see module docstring).
NOUN_ONLY_WORDS: frozenset[str] = frozenset(
    """
    dog rooster pig cow frog cat hen insects sheep crow sea waves fire crickets birds toilet
    thunderstorm baby footsteps teeth mouse keyboard door wood machine cleaner clock glass
    helicopter chainsaw siren car horn engine train church bells airplane fireworks hand wind alarm
""".split()
)

#: Irregular plural -> singular; singular forms map to themselves.
IRREGULAR_SINGULARS: dict[str, str] = {
    "teeth": "tooth",
    "tooth": "tooth",
    "mice": "mouse",
    "mouse": "mouse",
    "feet": "foot",
    "foot": "foot",
    "geese": "goose",
    "goose": "goose",
    "men": "man",
    "man": "man",
    "women": "woman",
    "woman": "woman",
    "children": "child",
    "child": "child",
}

_STEMMER = snowballstemmer.stemmer("english")
_APOSTROPHES = re.compile(r"[\u2019\u2018\u02bc`]")
_POSSESSIVE = re.compile(r"'s\b")
_TOKEN = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """Lower-cased letter/digit tokens of ``text`` (possessive ``'s`` dropped, see module docstring)."""
    text = _APOSTROPHES.sub("'", text.lower())
    text = _POSSESSIVE.sub("", text).replace("'", "")
    return _TOKEN.findall(text)


def class_words(class_names: Sequence[str]) -> list[str]:
    """Content words of ``class_names``: split on ``_``/spaces, lower-cased, stop words dropped,
    deduplicated in order of first appearance.

    Raises ValueError if ``class_names`` is empty or a name yields no content word.
    """
    if isinstance(class_names, str):
        raise TypeError(f"class_names must be a sequence of names, not the string {class_names!r}")
    if len(class_names) == 0:
        raise ValueError("class_names is empty: the leakage filter needs at least one class name")
    words: list[str] = []
    for name in class_names:
        content = [w for w in re.split(r"[_\s]+", str(name).lower()) if w and w not in STOP_WORDS]
        if not content:
            raise ValueError(f"class name {name!r} yields no content word (only stop words/blank)")
        words.extend(w for w in content if w not in words)
    return words


def singularize(word: str) -> str:
    """Singular form of a lower-case noun, by these rules in order:

    irregular map (:data:`IRREGULAR_SINGULARS`); ``-ies`` -> ``-y`` (words longer than 4 letters);
    ``-es`` dropped after ``ss``/``x``/``z``/``ch``/``sh`` (``glasses`` -> ``glass``); a final ``-s``
    dropped unless the word ends in ``-ss``, ``-us`` or ``-is`` or is at most 2 letters; else unchanged.
    """
    if word in IRREGULAR_SINGULARS:
        return IRREGULAR_SINGULARS[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and len(word) > 2 and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@cache
def stem(word: str) -> str:
    """Snowball (English) stem of ``word``."""
    return _STEMMER.stemWord(word)


def match_key(word: str) -> tuple[str, str]:
    """The key a token or class word is compared by: ``("noun", singular)`` or ``("stem", stem)``.

    For a class word the kind is fixed by :data:`NOUN_ONLY_WORDS`; a token has both keys and matches
    the class word whose key equals its key of the same kind.
    """
    return ("noun", singularize(word)) if word in NOUN_ONLY_WORDS else ("stem", stem(word))


@dataclass(frozen=True)
class FilterResult:
    """Outcome of :func:`leakage_filter` over ``n_total`` captions.

    keep: bool array, True = caption kept (it leaks no class word).
    removed_per_word: class word -> number of captions it hit (every class word present, 0 if none;
        a caption hitting two words counts for both, so the values can sum to more than n_removed).
    matched_words: per caption, the class words it hit, in class-word order (empty if kept).
    """

    keep: np.ndarray
    removed_per_word: dict[str, int]
    matched_words: list[tuple[str, ...]]

    @property
    def n_total(self) -> int:
        return int(self.keep.size)

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    @property
    def n_removed(self) -> int:
        return self.n_total - self.n_kept


def leakage_filter(captions: Sequence[str], class_names: Sequence[str]) -> FilterResult:
    """Apply the leakage rule (module docstring) of ``class_names`` to every caption.

    Each class word's key is computed once and each distinct corpus token is keyed once.
    """
    words = class_words(class_names)
    index_of: dict[tuple[str, str], list[int]] = {}
    for i, w in enumerate(words):
        index_of.setdefault(match_key(w), []).append(i)

    token_lists: list[list[str]] = []
    for j, cap in enumerate(captions):
        if not isinstance(cap, str):
            raise TypeError(f"caption {j} is {type(cap).__name__} {cap!r}, expected str")
        token_lists.append(tokenize(cap))

    hits_of: dict[str, tuple[int, ...]] = {}
    for tok in {t for toks in token_lists for t in toks}:
        hit = index_of.get(("noun", singularize(tok)), []) + index_of.get(("stem", stem(tok)), [])
        if hit:
            hits_of[tok] = tuple(hit)

    counts = [0] * len(words)
    matched: list[tuple[str, ...]] = []
    for toks in token_lists:
        hit_set = {i for t in toks if t in hits_of for i in hits_of[t]}
        for i in hit_set:
            counts[i] += 1
        matched.append(tuple(words[i] for i in sorted(hit_set)))
    keep = np.fromiter((not m for m in matched), dtype=bool, count=len(matched))
    return FilterResult(keep=keep, removed_per_word=dict(zip(words, counts)), matched_words=matched)


@dataclass(frozen=True)
class GroupedFilterResult:
    """:func:`leakage_filter` result plus per-audio-file (group) counts.

    n_groups: distinct groups; n_groups_any_removed: groups with >= 1 removed caption;
    n_groups_all_removed: groups whose every caption was removed.
    """

    result: FilterResult
    n_groups: int
    n_groups_any_removed: int
    n_groups_all_removed: int


def filter_grouped(
    captions: Sequence[str], groups: Sequence[Hashable], class_names: Sequence[str]
) -> GroupedFilterResult:
    """:func:`leakage_filter` for datasets with several captions per audio file.

    ``groups[i]`` identifies the audio file of ``captions[i]`` (any hashable id, e.g. a file name).
    """
    if len(groups) != len(captions):
        raise ValueError(f"groups has {len(groups)} entries but captions has {len(captions)}")
    res = leakage_filter(captions, class_names)
    gid_of: dict[Hashable, int] = {}
    gids = np.fromiter((gid_of.setdefault(g, len(gid_of)) for g in groups), dtype=np.int64, count=len(groups))
    n_caps = np.bincount(gids, minlength=len(gid_of))
    n_removed = np.bincount(gids, weights=(~res.keep).astype(float), minlength=len(gid_of))
    return GroupedFilterResult(
        result=res,
        n_groups=len(gid_of),
        n_groups_any_removed=int((n_removed > 0).sum()),
        n_groups_all_removed=int((n_removed == n_caps).sum()),
    )


# --- vocabulary and training levels ---------------------------------------------------------------


def _check_esc50(class_name: str) -> str:
    if class_name not in ESC50_CLASSES:
        raise ValueError(f"unknown ESC-50 class {class_name!r}; allowed: {', '.join(ESC50_CLASSES)}")
    return class_name


@cache
def class_vocabulary(class_name: str) -> tuple[tuple[str, ...], ...]:
    """The phrases (tuples of words) that describe an ESC-50 class's sound, first appearance order:

    1. its name's words, stop words kept (``("can", "opening")``: only together);
    2. each comma-separated part of its AudioSet names (clap_lib.data.ontology), tokenized, without stop words
       and :data:`~clap_lib.data.ontology.NAME_QUALIFIERS`; a one-word part in
       :data:`~clap_lib.data.ontology.NAME_WORDS_NOT_USED` or that is another class's class word is left out
       (hen's "Chicken, rooster" gives ``("chicken",)`` only);
    3. its everyday synonyms (:data:`~clap_lib.data.ontology.ESC50_SYNONYMS`).

    A caption matches a phrase when every word of it matches a caption token (the :func:`match_key` rule);
    of phrases with equal keys ("walk", "walking") the first is kept.
    """
    _check_esc50(class_name)
    own = set(class_words([class_name]))
    others = {w for c in ESC50_CLASSES if c != class_name for w in class_words([c])} - own
    phrases: list[tuple[str, ...]] = [tuple(re.split(r"[_\s]+", class_name))]
    for name in esc50_audioset_names()[class_name]:
        for part in name.split(","):
            words = tuple(w for w in tokenize(part) if w not in STOP_WORDS and w not in NAME_QUALIFIERS)
            if len(words) == 1 and (words[0] in NAME_WORDS_NOT_USED or words[0] in others):
                continue
            if words:
                phrases.append(words)
    phrases.extend(tuple(tokenize(p)) for p in ESC50_SYNONYMS[class_name])
    seen: set[tuple[tuple[str, str], ...]] = set()
    out: list[tuple[str, ...]] = []
    for p in phrases:
        key = tuple(match_key(w) for w in p)
        if p and key not in seen:  # "walking" after "walk" would match the same captions
            seen.add(key)
            out.append(p)
    return tuple(out)


@cache
def _strict_words_one(class_name: str) -> tuple[str, ...]:
    words = class_words([class_name]) + [p[0] for p in class_vocabulary(class_name) if len(p) == 1]
    return tuple(w for w in dict.fromkeys(words) if w not in STOP_WORDS)


def strict_words(target_classes: Sequence[str]) -> list[str]:
    """The strict level's words for ``target_classes``: each class's words plus the one-word phrases of its
    :func:`class_vocabulary`, deduplicated in order (a multi-word phrase such as "air horn" adds no word)."""
    if isinstance(target_classes, str):
        raise TypeError(f"target_classes must be a sequence of names, not the string {target_classes!r}")
    return list(dict.fromkeys(w for c in target_classes for w in _strict_words_one(_check_esc50(c))))


def filter_level(captions: Sequence[str], target_classes: Sequence[str], level: str) -> FilterResult:
    """The captions a training level keeps (``dirty``: all, ``clean``: the paper's rule on the target classes'
    names, ``strict``: that rule on :func:`strict_words`). ValueError for a level not in TRAININGS."""
    if level not in TRAININGS:
        raise ValueError(f"unknown training level {level!r}; allowed: {', '.join(TRAININGS)}")
    if level not in CAPTION_TRAININGS:
        raise ValueError(
            f"training level {level!r} drops examples by Freesound ID, not by caption: the paper "
            f"profile's training sets only; caption levels: {', '.join(CAPTION_TRAININGS)}"
        )
    if level == "dirty":
        n = len(captions)
        return FilterResult(keep=np.ones(n, dtype=bool), removed_per_word={}, matched_words=[()] * n)
    words = class_words(target_classes) if level == "clean" else strict_words(target_classes)
    return leakage_filter(captions, words)


def level_pairs(pairs: pd.DataFrame, target_classes: Sequence[str], level: str) -> tuple[pd.DataFrame, dict]:
    """(the pairs whose caption the level keeps, info) for a pairs table with ``category`` and ``caption``.

    info: level, n_pairs (kept), n_removed, removed_per_word, and surviving_T: for each target class, the
    fraction of its pairs that survive (NaN when it has none): the leakage the filter leaves.
    """
    res = filter_level(list(pairs["caption"].astype(str)), target_classes, level)
    cat = pairs["category"].to_numpy()
    surviving = {}
    for c in target_classes:
        mine = cat == c
        surviving[c] = float(res.keep[mine].mean()) if mine.any() else float("nan")
    info = {
        "level": level,
        "n_pairs": res.n_kept,
        "n_removed": res.n_removed,
        "removed_per_word": res.removed_per_word,
        "surviving_T": surviving,
    }
    return pairs[res.keep], info
