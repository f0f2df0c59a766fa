"""The hand-written caption bank: layout, style limits, and its contract with the leakage filter."""

from __future__ import annotations

import pytest

from clap_lib.data.captions import (
    CAPTION_BANK,
    N_CAPTIONS_PER_CLASS,
    N_NAMING,
    PROMPT_TEMPLATE,
    bank_fingerprint,
    captions_for,
    prompt_for,
)
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.filtering import leakage_filter

MIN_WORDS, MAX_WORDS = 4, 12  # a bank caption's length in words


# how the bank is built, checked below (the library only reads the bank)
def naming_captions(class_name: str) -> tuple[str, ...]:
    """Captions 1-4 of a class: each contains a word of its class name (the filter removes them)."""
    return captions_for(class_name)[:N_NAMING]


def synonym_captions(class_name: str) -> tuple[str, ...]:
    """Captions 5-6 of a class: synonyms/related words only (they survive the filter: residual leakage)."""
    return captions_for(class_name)[N_NAMING:]


def cross_class_mentions(class_names=None) -> dict[str, tuple[str, ...]]:
    """Bank captions that mention a word of a class other than their own: {caption: (other classes, ...)}.

    Matching is the project's leakage filter. Tokens that match the caption's own class are set aside
    first, so a class word shared by two classes ("door" of door_wood_knock and door_wood_creaks) is not
    a mention of the other one. `class_names` (default: every class) limits the other classes checked.
    """
    others = tuple(CAPTION_BANK) if class_names is None else tuple(class_names)
    owner: dict[str, str] = {}
    rest: dict[str, str] = {}  # caption without the tokens that match its own class
    for own, caps in CAPTION_BANK.items():
        for cap in caps:
            tokens = cap.split()
            rest[cap] = " ".join(t for t, kept in zip(tokens, leakage_filter(tokens, [own]).keep) if kept)
            owner[cap] = own
    caps = list(rest)
    hits: dict[str, list[str]] = {}
    for other in others:
        for cap, kept in zip(caps, leakage_filter([rest[c] for c in caps], [other]).keep):
            if not kept and owner[cap] != other:
                hits.setdefault(cap, []).append(other)
    return {cap: tuple(v) for cap, v in hits.items()}


ESC50 = (
    "dog",
    "rooster",
    "pig",
    "cow",
    "frog",
    "cat",
    "hen",
    "insects",
    "sheep",
    "crow",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crickets",
    "chirping_birds",
    "water_drops",
    "wind",
    "pouring_water",
    "toilet_flush",
    "thunderstorm",
    "crying_baby",
    "sneezing",
    "clapping",
    "breathing",
    "coughing",
    "footsteps",
    "laughing",
    "brushing_teeth",
    "snoring",
    "drinking_sipping",
    "door_wood_knock",
    "mouse_click",
    "keyboard_typing",
    "door_wood_creaks",
    "can_opening",
    "washing_machine",
    "vacuum_cleaner",
    "clock_alarm",
    "clock_tick",
    "glass_breaking",
    "helicopter",
    "chainsaw",
    "siren",
    "car_horn",
    "engine",
    "train",
    "church_bells",
    "airplane",
    "fireworks",
    "hand_saw",
)
ALL_CAPTIONS = [cap for caps in CAPTION_BANK.values() for cap in caps]


def test_bank_has_exactly_the_esc50_classes():
    assert set(CAPTION_BANK) == set(ESC50) == set(ESC50_CLASSES)
    assert len(CAPTION_BANK) == 50


@pytest.mark.parametrize("cls", ESC50)
def test_six_unique_captions_of_sensible_length(cls):
    caps = captions_for(cls)
    assert isinstance(caps, tuple) and len(caps) == N_CAPTIONS_PER_CLASS == 6
    assert len(set(caps)) == 6
    for cap in caps:
        assert isinstance(cap, str) and cap == cap.strip() and "  " not in cap
        assert MIN_WORDS <= len(cap.split()) <= MAX_WORDS, cap
        assert cap == cap.lower(), f"captions are lower case: {cap!r}"


def test_captions_are_unique_across_the_whole_bank():
    # Training encodes each distinct caption once and the clean filter keys on the caption string.
    assert len(ALL_CAPTIONS) == len(set(ALL_CAPTIONS)) == 300


def test_captions_are_varied_not_one_template():
    starts = {" ".join(cap.split()[:2]) for cap in ALL_CAPTIONS}
    assert len(starts) > 100
    assert not any("sound of" in cap for cap in ALL_CAPTIONS)


@pytest.mark.parametrize("cls", ESC50)
def test_filter_removes_naming_captions_and_keeps_synonym_captions(cls):
    caps = captions_for(cls)
    res = leakage_filter(list(caps), [cls])
    keep = [bool(k) for k in res.keep]
    assert keep == [False] * N_NAMING + [True] * (6 - N_NAMING), (
        f"{cls}: expected captions 1-{N_NAMING} removed and the rest kept; got {[(c, k) for c, k in zip(caps, keep)]}"
    )
    assert naming_captions(cls) == caps[:N_NAMING] and synonym_captions(cls) == caps[N_NAMING:]


def test_filtering_every_class_keeps_exactly_the_synonym_captions():
    res = leakage_filter(ALL_CAPTIONS, list(ESC50))
    kept = {cap for cap, k in zip(ALL_CAPTIONS, res.keep) if k}
    synonym = {cap for cls in ESC50 for cap in synonym_captions(cls)}
    # a synonym caption survives unless it mentions another class ("a cockerel crows" hits crow)
    assert kept == synonym - set(cross_class_mentions())
    assert len(kept) >= 95


def test_cross_class_mentions_are_few_and_real():
    cross = cross_class_mentions()
    assert len(cross) == 14  # the number the module docstring states
    owner = {cap: cls for cls, caps in CAPTION_BANK.items() for cap in caps}
    for cap, others in cross.items():
        assert others and owner[cap] not in others
        for other in others:
            assert not leakage_filter([cap], [other]).keep[0]
    # shared class words are not "another class": door_wood_knock's door captions match door_wood_creaks
    assert "someone knocks on a door" not in cross
    assert cross["a small dog yaps at a passing car"] == ("car_horn",)
    assert cross["a cockerel crows at dawn"] == ("crow",)  # a verb that is another class's noun


def test_bank_fingerprint_is_stable_and_tracks_edits(monkeypatch):
    fp = bank_fingerprint()
    assert fp == bank_fingerprint() and len(fp) == 16
    monkeypatch.setitem(CAPTION_BANK, "dog", CAPTION_BANK["dog"][:5] + ("a dog whines",))
    assert bank_fingerprint() != fp


def test_prompt_for():
    assert PROMPT_TEMPLATE == "this is a sound of {label}"
    assert prompt_for("door_wood_knock") == "this is a sound of door wood knock"
    assert prompt_for("dog") == "this is a sound of dog"
    assert all("_" not in prompt_for(c) for c in ESC50)


@pytest.mark.parametrize("bad", ["unicorn", "Dog", "door wood knock", ""])
def test_unknown_class_error_names_it(bad):
    with pytest.raises(ValueError) as err:
        captions_for(bad)
    msg = str(err.value)
    assert repr(bad) in msg and "CAPTION_BANK" in msg


def test_bank_is_loaded_from_its_package_data_file_unchanged():
    import json
    from importlib import resources

    from clap_lib.data.captions import BANK_FILE

    raw = json.loads(resources.files("clap_lib.data").joinpath(BANK_FILE).read_text(encoding="utf-8"))
    assert {c: tuple(v) for c, v in raw.items()} == CAPTION_BANK
    assert list(raw) == list(ESC50_CLASSES)
    # the hash of the bank as it was when it lived in captions.py: moving it to JSON changed no caption
    assert bank_fingerprint() == "9c8f9303749a6fb3"


def test_bank_loader_rejects_a_malformed_file(monkeypatch, tmp_path):
    import clap_lib.data.captions as C

    class Fake:
        def __init__(self, text):
            self.text = text

        def joinpath(self, _):
            return self

        def read_text(self, encoding="utf-8"):
            return self.text

    import json

    bank = {c: list(v) for c, v in CAPTION_BANK.items()}
    bank["dog"] = bank["dog"][:5]
    monkeypatch.setattr(C.resources, "files", lambda _pkg: Fake(json.dumps(bank)))
    with pytest.raises(ValueError, match="dog"):
        C._load_bank()
    del bank["dog"]
    with pytest.raises(ValueError, match="ESC-50 order"):
        C._load_bank()
