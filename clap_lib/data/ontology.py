"""The AudioSet ontology, and the documented mapping ESC-50 class -> AudioSet classes.

The ontology (``ontology.json``, 632 classes) is read from a path parameter, else ``$CLAP_ONTOLOGY``,
else ``<shared data>/audioset/ontology.json``. It is a DAG, not a tree: a class can have several
parents (Bleat is under Goat and Sheep, Growling under Dog, Cat, Canidae and Roaring cats).

The mapping (:data:`ESC50_AUDIOSET`) names, for each ESC-50 class, the AudioSet classes that are that
sound, by their display names exactly as in the ontology, with a short reason. Rules (tested): every
ESC-50 class appears; no AudioSet class is used by two ESC-50 classes; every name exists in the ontology.
Classes with no AudioSet counterpart map to ``()`` and are listed in :data:`ESC50_UNMAPPED`.

AudioSet *labels* (the 527 classes of the released segments, e.g. the output layer of the GPV-F network)
are the ontology names spelt with spaces and commas as ``_``; :func:`label_key` makes both
spellings compare equal.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.paths import shared_data_dir

__all__ = ["ONTOLOGY_ENV", "AudioSetClass", "Ontology", "locate_ontology", "load_ontology", "descendants",
           "label_key", "ESC50_AUDIOSET", "ESC50_UNMAPPED", "esc50_audioset_names",
           "esc50_audioset_reasons", "ESC50_SYNONYMS", "EXCLUDED_DESCENDANTS", "NAME_WORDS_NOT_USED",
           "NAME_QUALIFIERS"]

ONTOLOGY_ENV = "CLAP_ONTOLOGY"


@dataclass(frozen=True)
class AudioSetClass:
    """One ontology entry (``restrictions``: ``abstract`` / ``blacklist`` classes have no released label)."""

    id: str
    name: str
    description: str
    child_ids: tuple[str, ...]
    restrictions: tuple[str, ...]


@dataclass(frozen=True)
class Ontology:
    """The ontology in file order; look-ups by id and by display name, and children by id."""

    classes: tuple[AudioSetClass, ...]
    path: str = ""

    def __post_init__(self) -> None:
        by_id = {c.id: c for c in self.classes}
        by_name = {c.name: c for c in self.classes}
        if len(by_id) != len(self.classes) or len(by_name) != len(self.classes):
            raise ValueError(f"ontology {self.path or '(in memory)'}: ids and names must be unique")
        missing = sorted({k for c in self.classes for k in c.child_ids} - by_id.keys())
        if missing:
            raise ValueError(f"ontology {self.path or '(in memory)'}: child ids {missing[:5]} are not classes")
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @property
    def by_id(self) -> Mapping[str, AudioSetClass]:
        return self._by_id  # type: ignore[attr-defined]

    @property
    def by_name(self) -> Mapping[str, AudioSetClass]:
        return self._by_name  # type: ignore[attr-defined]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    def get(self, key: str) -> AudioSetClass:
        """The class with id or display name ``key``; KeyError naming it otherwise."""
        if key in self.by_id:
            return self.by_id[key]
        if key in self.by_name:
            return self.by_name[key]
        raise KeyError(f"{key!r} is neither an id nor a display name of the AudioSet ontology "
                       f"({len(self.classes)} classes{', ' + self.path if self.path else ''})")

    def children(self, key: str) -> tuple[AudioSetClass, ...]:
        return tuple(self.by_id[i] for i in self.get(key).child_ids)

    def parents(self, key: str) -> tuple[AudioSetClass, ...]:
        cid = self.get(key).id
        return tuple(c for c in self.classes if cid in c.child_ids)


def locate_ontology(path: str | Path | None = None) -> Path:
    """``path`` (a file or the folder holding ``ontology.json``), else ``$CLAP_ONTOLOGY``, else shared data."""
    shared = shared_data_dir()
    for cand, why in ((path, "parameter"), (os.environ.get(ONTOLOGY_ENV), f"${ONTOLOGY_ENV}"),
                      (shared and shared / "audioset" / "ontology.json", "shared data folder")):
        if cand in (None, ""):
            continue
        p = Path(cand)
        p = p / "ontology.json" if p.is_dir() else p
        if p.is_file():
            return p
        raise FileNotFoundError(f"AudioSet ontology not found at {p} (from the {why}); get ontology.json from "
                                "https://github.com/audioset/ontology")
    raise FileNotFoundError(f"AudioSet ontology not found: no path given, ${ONTOLOGY_ENV} unset and no shared "
                            "data folder (audioset/ontology.json)")


def load_ontology(path: str | Path | None = None) -> Ontology:
    """Read ``ontology.json`` (see :func:`locate_ontology` for where it is looked for)."""
    p = locate_ontology(path)
    data = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(d, dict) and "id" in d and "name" in d for d in data):
        raise ValueError(f"{p}: expected a JSON list of objects with at least `id` and `name`")
    return Ontology(tuple(AudioSetClass(id=str(d["id"]), name=str(d["name"]), description=str(d.get("description", "")),
                                        child_ids=tuple(d.get("child_ids", ())),
                                        restrictions=tuple(d.get("restrictions", ()))) for d in data), str(p))


def descendants(onto: Ontology, class_id: str) -> tuple[str, ...]:
    """Ids of every class below ``class_id`` (id or display name), depth-first, each once, itself excluded."""
    out: list[str] = []
    seen = {onto.get(class_id).id}
    stack = list(reversed(onto.get(class_id).child_ids))
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue  # a DAG: a class reached through two parents is listed once
        seen.add(cid)
        out.append(cid)
        stack.extend(reversed(onto.by_id[cid].child_ids))
    return tuple(out)


def label_key(name: str) -> str:
    """One spelling for an ontology name and its released-label form: ``"Baby cry, infant cry"`` and
    ``"Baby_cry_infant_cry"`` both give ``"baby_cry_infant_cry"`` (lower case, runs of spaces, commas and
    underscores -> one ``_``)."""
    return re.sub(r"[\s,_]+", "_", name.strip()).lower()


#: ESC-50 class -> ((AudioSet display name, ...), reason). Why each choice, in one line.
ESC50_AUDIOSET: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType({
    "dog": (("Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)", "Bay", "Canidae, dogs, wolves"),
            "Dog and its vocalisations; Growling (also under Cat) goes to dog, the commoner source"),
    "rooster": (("Crowing, cock-a-doodle-doo",), "the rooster's call; the generic chicken class goes to hen"),
    "pig": (("Pig", "Oink"), "the animal and its call"),
    "cow": (("Cattle, bovinae", "Moo"), "the animal and its call (Cowbell, a child of Cattle, is a bell)"),
    "frog": (("Frog", "Croak"), "the animal and its call"),
    "cat": (("Cat", "Purr", "Meow", "Caterwaul", "Cat communication"),
            "Cat and its calls; Hiss is left out (also snake, steam, spray)"),
    "hen": (("Chicken, rooster", "Cluck"), "the chicken class and the hen's cluck (Crowing is the rooster's)"),
    "insects": (("Insect", "Mosquito", "Fly, housefly", "Bee, wasp, etc.", "Buzz"),
                "Insect and its members except Cricket, an ESC-50 class of its own; Buzz is a child of Fly and Bee"),
    "sheep": (("Sheep", "Bleat"), "the animal and its call (Bleat is also under Goat)"),
    "crow": (("Crow", "Caw"), "the bird and its call"),
    "rain": (("Rain", "Raindrop", "Rain on surface"), "Rain and its children"),
    "sea_waves": (("Ocean", "Waves, surf"), "the sea and its waves"),
    "crackling_fire": (("Fire", "Crackle", "Wildfire"), "Fire and its children"),
    "crickets": (("Cricket",), "the insect"),
    "chirping_birds": (("Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet", "Squawk", "Pigeon, dove",
                        "Coo", "Owl", "Hoot", "Gull, seagull", "Bird flight, flapping wings"),
                       "Bird and its members except Crow and Caw (ESC-50 crow)"),
    "water_drops": (("Drip",), "a drop of water falling (Raindrop goes to rain)"),
    "wind": (("Wind", "Howl (wind)", "Rustling leaves", "Wind noise (microphone)"), "Wind and its children"),
    "pouring_water": (("Pour", "Trickle, dribble", "Gush", "Fill (with liquid)", "Water tap, faucet"),
                      "pouring and its children, filling, water from a tap"),
    "toilet_flush": (("Toilet flush",), "same sound"),
    "thunderstorm": (("Thunderstorm", "Thunder"), "the storm and its thunder"),
    "crying_baby": (("Baby cry, infant cry",), "same sound (adult Crying, sobbing is not a baby)"),
    "sneezing": (("Sneeze",), "same sound"),
    "clapping": (("Clapping", "Applause"), "hand claps, alone or by a crowd"),
    "breathing": (("Breathing", "Wheeze", "Gasp", "Pant", "Snort", "Sigh"),
                  "Breathing and its children except Snoring (ESC-50 snoring), and a sigh"),
    "coughing": (("Cough", "Throat clearing"), "Cough and its child"),
    "footsteps": (("Walk, footsteps", "Run", "Shuffle"), "human locomotion heard as steps"),
    "laughing": (("Laughter", "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle"),
                 "Laughter and its children"),
    "brushing_teeth": (("Toothbrush", "Electric toothbrush"), "the brush and its electric kind"),
    "snoring": (("Snoring",), "same sound"),
    "drinking_sipping": ((), "no AudioSet class for drinking or sipping (Gargling, Chewing are other sounds)"),
    "door_wood_knock": (("Knock", "Tap"), "knocking and tapping (both children of Door)"),
    "mouse_click": (("Clicking",), "a computer mouse clicks; the AudioSet Mouse is the rodent"),
    "keyboard_typing": (("Typing", "Computer keyboard", "Typewriter"), "Typing and its children"),
    "door_wood_creaks": (("Door", "Creak", "Squeak"),
                         "a door and its creaks and squeaks (Knock and Tap go to door_wood_knock)"),
    "can_opening": ((), "no AudioSet class for opening a can (Fizz, Burst, pop are broader)"),
    "washing_machine": ((), "no AudioSet class for a washing machine"),
    "vacuum_cleaner": (("Vacuum cleaner",), "same sound"),
    "clock_alarm": (("Alarm clock",), "same sound"),
    "clock_tick": (("Clock", "Tick", "Tick-tock"), "Clock and its ticking"),
    "glass_breaking": (("Glass", "Shatter"), "glass and its breaking (Chink, clink is glasses touching)"),
    "helicopter": (("Helicopter",), "same sound"),
    "chainsaw": (("Chainsaw",), "same sound"),
    "siren": (("Siren", "Civil defense siren", "Police car (siren)", "Ambulance (siren)",
               "Fire engine, fire truck (siren)"), "Siren and its children"),
    "car_horn": (("Vehicle horn, car horn, honking", "Toot", "Air horn, truck horn"), "vehicle horns"),
    "engine": (("Engine", "Light engine (high frequency)", "Medium engine (mid frequency)",
                "Heavy engine (low frequency)", "Engine knocking", "Engine starting", "Idling",
                "Accelerating, revving, vroom"),
               "Engine and its engine-sound children (Chainsaw is ESC-50 chainsaw)"),
    "train": (("Rail transport", "Train", "Train whistle", "Train horn", "Railroad car, train wagon",
               "Train wheels squealing", "Subway, metro, underground"), "Rail transport and its children"),
    "church_bells": (("Church bell", "Change ringing (campanology)", "Chime"),
                     "church bells, their ringing and chimes (Bell itself also holds bicycle and cow bells)"),
    "airplane": (("Aircraft", "Aircraft engine", "Jet engine", "Propeller, airscrew", "Fixed-wing aircraft, airplane"),
                 "Aircraft and its children except Helicopter (ESC-50 helicopter)"),
    "fireworks": (("Fireworks", "Firecracker"), "Fireworks and its child"),
    "hand_saw": (("Sawing",), "sawing (AudioSet has no hand-saw class; power saws are Chainsaw / Power tool)"),
})

#: ESC-50 classes with no AudioSet counterpart.
ESC50_UNMAPPED: tuple[str, ...] = tuple(c for c in ESC50_CLASSES if not ESC50_AUDIOSET[c][0])


def esc50_audioset_names() -> dict[str, tuple[str, ...]]:
    """ESC-50 class -> AudioSet display names (ontology spelling), every ESC-50 class, in ESC-50 order."""
    return {c: ESC50_AUDIOSET[c][0] for c in ESC50_CLASSES}


def esc50_audioset_reasons() -> dict[str, str]:
    """ESC-50 class -> the one-line reason for its AudioSet classes."""
    return {c: ESC50_AUDIOSET[c][1] for c in ESC50_CLASSES}


#: Descendants of a mapped class that are not that class's sound, so neither the caption pools nor the strict
#: word set use them (the AudioSet cleaning still drops them, as descendants). Name -> why.
EXCLUDED_DESCENDANTS: Mapping[str, str] = MappingProxyType({
    "Hiss": "under Cat, but also a snake, steam or a spray",
    "Clip-clop": "under Clicking: horse hooves",
    "Clickety-clack": "under Clicking: a train on its rails, a typewriter",
    "Cowbell": "under Cattle: a bell",
    "Yak": "under Cattle: 'yak' in a caption is chatter",
    "Dental drill, dentist's drill": "under Engine (via Light engine): a drill",
    "Lawn mower": "under Engine: a machine of its own",
    "Doorbell": "under Door: a bell or buzzer",
    "Ding-dong": "under Door (via Doorbell): a bell",
    "Slam": "under Door: not a creak",
    "Sliding door": "under Door: not a creak",
    "Chink, clink": "under Glass: glasses touching, not breaking",
    "Wind chime": "under Chime: chimes the wind moves, no church bell",
})

#: Words of AudioSet display names that are never a class word on their own (too generic, or another sense
#: dominates in captions): a one-word name part made of one of them is not used ("Tap", "Door", "Run").
NAME_WORDS_NOT_USED: frozenset[str] = frozenset("""
    bay run shuffle tap door glass clock squeak snort buzz fly crowing clicking
""".split())

#: Qualifiers dropped from AudioSet name parts ("Light engine (high frequency)" -> "engine").
NAME_QUALIFIERS: frozenset[str] = frozenset("""
    etc high mid low frequency light medium heavy surface microphone noise
""".split())

#: Everyday words and phrases for each class's sound that captions use (synonyms, verb forms, related nouns),
#: beyond the words of the class and AudioSet names. A phrase of several words matches a caption holding all
#: of them (caption pools); only one-word entries join the strict word set (a word such as "air" of "air horn"
#: would remove far too much on its own). Matching is whole-token and stemmed (:mod:`clap_lib.data.filtering`).
ESC50_SYNONYMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "dog": ("puppy", "pup", "hound", "bark", "barking", "woof", "growl", "growling", "howl", "yelp", "yap", "whimper",
            "bow wow"),
    "rooster": ("rooster", "cockerel", "cock doodle"),
    "pig": ("piglet", "hog", "swine", "oink"),
    "cow": ("cattle", "moo", "calf", "bull"),
    "frog": ("toad", "croak", "ribbit"),
    "cat": ("kitten", "kitty", "meow", "miaow", "mew", "purr", "caterwaul"),
    "hen": ("chicken", "cluck", "poultry"),
    "insects": ("insect", "bee", "wasp", "hornet", "bumblebee", "mosquito", "housefly", "gnat", "cicada", "beetle"),
    "sheep": ("lamb", "bleat", "baa", "ewe"),
    "crow": ("caw", "raven"),
    "rain": ("raindrop", "drizzle", "downpour", "rainfall", "rainstorm"),
    "sea_waves": ("waves", "surf", "ocean", "sea", "seashore", "seaside", "breakers"),
    "crackling_fire": ("fire", "campfire", "bonfire", "fireplace", "flames", "crackle", "wildfire"),
    "crickets": ("cricket",),
    "chirping_birds": ("bird", "birdsong", "chirp", "tweet", "warble", "songbird", "sparrow", "pigeon", "dove", "coo",
                       "owl", "hoot", "seagull", "gull", "squawk", "flapping wings"),
    "water_drops": ("drip", "droplet", "drops water", "drop water"),
    "wind": ("gust", "breeze", "windy", "rustling leaves"),
    "pouring_water": ("pour", "trickle", "gush", "faucet", "water tap", "tap water", "filling water"),
    "toilet_flush": ("toilet", "flush"),
    "thunderstorm": ("thunder", "thunderclap", "lightning", "storm"),
    "crying_baby": ("baby cry", "infant cry", "baby wail", "baby whine", "baby scream", "baby fuss", "baby sob",
                    "toddler cry"),
    "sneezing": ("sneeze", "achoo"),
    "clapping": ("clap", "applause", "applaud"),
    "breathing": ("breath", "breathe", "inhale", "exhale", "pant", "gasp", "wheeze", "sigh"),
    "coughing": ("cough", "throat clearing"),
    "footsteps": ("footstep", "steps", "walk", "walking", "stomp", "shuffling feet"),
    "laughing": ("laugh", "laughter", "giggle", "chuckle", "chortle", "snicker", "cackle"),
    "brushing_teeth": ("toothbrush", "brush teeth"),
    "snoring": ("snore",),
    "drinking_sipping": ("drink", "sip", "slurp", "gulp", "swallow"),
    "door_wood_knock": ("knock", "tap door"),
    "mouse_click": ("mouse click", "computer mouse"),
    "keyboard_typing": ("type", "typing", "keyboard", "typewriter", "keystroke"),
    "door_wood_creaks": ("creak", "creaky", "hinge", "squeak door"),
    "can_opening": ("soda can", "tin can", "beer can", "aluminum can", "can opener", "pull tab"),
    "washing_machine": ("washing machine", "washer", "laundry", "spin cycle"),
    "vacuum_cleaner": ("vacuum", "hoover"),
    "clock_alarm": ("alarm clock", "alarm beep", "alarm ring"),
    "clock_tick": ("tick", "tock", "clock"),
    "glass_breaking": ("shatter", "glass break", "glass smash", "glass crash"),
    "helicopter": ("chopper", "rotor"),
    "chainsaw": ("chainsaw", "chain saw"),
    "siren": ("siren",),
    "car_horn": ("honk", "honking", "toot", "vehicle horn", "truck horn", "air horn"),
    "engine": ("motor", "rev", "revving", "idle", "idling", "vroom", "engine start"),
    "train": ("locomotive", "railroad", "railway", "subway", "metro", "tram"),
    "church_bells": ("bell", "chime", "carillon", "toll", "church bell"),
    "airplane": ("aeroplane", "plane", "aircraft", "jet", "airliner", "propeller"),
    "fireworks": ("firework", "firecracker"),
    "hand_saw": ("saw", "sawing", "handsaw"),
})
