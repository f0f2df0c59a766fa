"""The hand-written caption bank of the "lab" profile, and the zero-shot prompts.

Why a caption bank
------------------
The paper trains CLAP on captioned audio (Clotho, AudioCaps, FSD50K, MACS). The lab profile has only
ESC-50 audio, which comes with class labels but no captions. So every ESC-50 training clip is paired with
each of the six captions of its class in `CAPTION_BANK`. The bank is a documented stand-in, written by
hand for this project (no caption data set was copied). It imitates the style of AudioCaps and Clotho:
short (4-12 words), descriptive, present tense, lower case, one sound event per caption, and varied in
structure ("a dog barks twice", "dogs barking loudly in a yard", "a hound howls in the distance"), not one
template repeated.

Why each class mixes two kinds of caption
-----------------------------------------
Real captions describe a sound in many ways. Some use the class word ("a rooster crows"), others use a
synonym or only the sound it makes ("a cockerel crows at dawn"). The paper's "clean" training set removes
every caption that contains a word of an ESC-50 class name. That filter catches only the first kind.
Audio of a filtered class still reaches training through captions of the second kind. This is the
*residual leakage* that the experiment measures (`n_target_clip_pairs` in `experiment.training_pairs`).
The bank reproduces the mix on purpose. For every class:

* captions 1-4 contain at least one word of the class name in some inflected form ("dogs", "knocks",
  "sneezes", "poured"), so the leakage filter (`filtering.leakage_filter`) removes them when the class is
  a target class;
* captions 5-6 contain no word of the class name in any form. They use synonyms or related words only
  ("puppy", "hound", "cockerel", "infant", "hoover"), so they survive the filter and leak the class's
  audio into "clean" training.

A few captions (14 of 300, listed by `cross_class_mentions()`) also name context that happens to be
another class's word: "a small dog yaps at a passing car" (car_horn), "a train horn blows as it
approaches" (car_horn), "a person drinking from a glass" (glass_breaking), "a cockerel crows at dawn"
(the verb "crows" is the plural of the class noun crow). Real captions do this too. When that other class
is a target, the filter also removes these captions of background classes, so the clean set loses some
background pairs as well. Some class words are shared by two classes ("door" and "wood" belong to both
door_wood_knock and door_wood_creaks, "water" to water_drops and pouring_water, "clock" to clock_alarm and
clock_tick); a caption matching its sibling class through such a shared word is not counted as a mention
of another class. `tests/test_captions.py` checks the whole layout against the real filter.

Every caption in the bank is unique, so a caption string identifies its class. The captions live in
`clap_lib/resources/caption_bank.json` (class -> list of 6, ESC-50 order); this module loads and checks it.
Since the real AudioCaps / Clotho captions became the default source (`clap_lib.data.caption_pools`), the
bank is the `captions=bank` alternative.

Zero-shot prompts follow public CLAP: "this is a sound of {label}", where the label is the class name with
underscores replaced by spaces ("this is a sound of door wood knock").
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources

from clap_lib.data.esc50 import ESC50_CLASSES

PROMPT_TEMPLATE = "this is a sound of {label}"

N_CAPTIONS_PER_CLASS = 6
N_NAMING = 4  # captions [0, N_NAMING) name the class; the rest use synonyms/related words only
BANK_FILE = "resources/caption_bank.json"  # package data (pyproject: resources/*)


def _load_bank() -> dict[str, tuple[str, ...]]:
    """The bank from its data file, checked: the 50 ESC-50 classes in ESC-50 order, 6 strings each."""
    raw = json.loads(resources.files(__package__).joinpath(BANK_FILE).read_text(encoding="utf-8"))
    if list(raw) != list(ESC50_CLASSES):
        raise ValueError(f"{BANK_FILE}: classes must be the 50 ESC-50 classes in ESC-50 order, got {list(raw)[:5]}...")
    bad = [
        c
        for c, caps in raw.items()
        if len(caps) != N_CAPTIONS_PER_CLASS or not all(isinstance(x, str) and x for x in caps)
    ]
    if bad:
        raise ValueError(f"{BANK_FILE}: classes {bad} need exactly {N_CAPTIONS_PER_CLASS} non-empty captions")
    return {c: tuple(caps) for c, caps in raw.items()}


CAPTION_BANK: dict[str, tuple[str, ...]] = _load_bank()
"""ESC-50 class name -> its 6 captions. Captions 1-4 name the class; 5-6 do not. Treat as read-only."""


def _check_bank_class(class_name: str) -> str:
    if not isinstance(class_name, str) or class_name not in CAPTION_BANK:
        raise ValueError(
            f"unknown ESC-50 class {class_name!r}: the caption bank has no entry for it. Valid names are "
            f"the 50 ESC-50 class names, lower case with underscores (e.g. 'dog', 'door_wood_knock'); "
            f"see sorted(clap_lib.data.captions.CAPTION_BANK) for the full list."
        )
    return class_name


def captions_for(class_name: str) -> tuple[str, ...]:
    """The 6 bank captions of an ESC-50 class; ValueError naming the class if it is not one."""
    return CAPTION_BANK[_check_bank_class(class_name)]


def prompt_for(class_name: str) -> str:
    """The zero-shot text prompt of a class, as in public CLAP: 'this is a sound of door wood knock'."""
    return PROMPT_TEMPLATE.format(label=class_name.replace("_", " "))


def bank_fingerprint() -> str:
    """A short hash of the whole bank, for cache keys: editing any caption changes it."""
    blob = json.dumps(CAPTION_BANK, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
