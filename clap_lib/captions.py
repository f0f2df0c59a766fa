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

Every caption in the bank is unique, so a caption string identifies its class.

Zero-shot prompts follow public CLAP: "this is a sound of {label}", where the label is the class name with
underscores replaced by spaces ("this is a sound of door wood knock").
"""
from __future__ import annotations

import hashlib
import json

PROMPT_TEMPLATE = "this is a sound of {label}"

N_CAPTIONS_PER_CLASS = 6
N_NAMING = 4  # captions [0, N_NAMING) name the class; the rest use synonyms/related words only
MIN_WORDS, MAX_WORDS = 4, 12

CAPTION_BANK: dict[str, tuple[str, ...]] = {
    # --- animals ---------------------------------------------------------------------------------
    "dog": (
        "a dog barks twice",
        "dogs barking loudly in a yard",
        "a small dog yaps at a passing car",
        "a dog growls and then barks",
        "a puppy yelps repeatedly",
        "a hound howls in the distance",
    ),
    "rooster": (
        "a rooster calls loudly in the early morning",
        "roosters call back and forth on a farm",
        "a rooster calls out repeatedly at sunrise",
        "a rooster squawks among clucking chickens",
        "a cockerel crows at dawn",
        "a farmyard cockerel gives a shrill call",
    ),
    "pig": (
        "a pig grunts and snorts",
        "pigs squeal inside a barn",
        "a pig oinks while eating",
        "several pigs grunting in a muddy pen",
        "a hog snuffles and grunts loudly",
        "piglets squeal while feeding",
    ),
    "cow": (
        "a cow moos in a field",
        "cows mooing loudly on a farm",
        "a cow lows softly in a barn",
        "a distant cow moos twice",
        "cattle bellow in a pasture",
        "a calf moos for its mother",
    ),
    "frog": (
        "a frog croaks near a pond",
        "frogs croaking loudly at night",
        "a chorus of frogs by the water",
        "a single frog ribbits repeatedly",
        "a toad croaks in the darkness",
        "toads call rhythmically in a marsh",
    ),
    "cat": (
        "a cat meows loudly",
        "a cat purrs and then hisses",
        "two cats yowl at each other",
        "a hungry cat mewing for food",
        "a kitten mews softly",
        "a stray kitty meows plaintively",
    ),
    "hen": (
        "a hen clucks in a coop",
        "hens cluck and scratch around a yard",
        "a hen cackles after laying an egg",
        "several hens clucking quietly",
        "a chicken clucks softly",
        "chickens squawk and flap their wings",
    ),
    "insects": (
        "insects buzz around a flower",
        "an insect buzzes close to the microphone",
        "flying insects hum on a summer day",
        "a swarm of insects drones steadily",
        "a bee buzzes close by",
        "flies buzz around in a hot room",
    ),
    "sheep": (
        "a sheep bleats in a field",
        "sheep baaing on a hillside",
        "a flock of sheep bleat together",
        "a sheep lets out a long bleat",
        "a lamb bleats for its mother",
        "ewes and lambs baa on a farm",
    ),
    "crow": (
        "a crow caws loudly",
        "crows cawing in the treetops",
        "a crow calls harshly over a field",
        "several crows squawk and caw",
        "a raven caws overhead",
        "ravens croak from a tall tree",
    ),
    # --- natural soundscapes and water -----------------------------------------------------------
    "rain": (
        "rain falls steadily on a roof",
        "heavy rain patters on a metal roof",
        "rain pattering against a window",
        "light rain falls on leaves",
        "a downpour drums on a tin roof",
        "showers patter softly on the pavement",
    ),
    "sea_waves": (
        "waves crash onto a rocky shore",
        "the sea laps gently against the beach",
        "ocean waves roll in and recede",
        "waves rush up the sand and retreat",
        "the ocean surf crashes on the shore",
        "the tide surges onto a pebbly beach",
    ),
    "crackling_fire": (
        "a fire crackles in a fireplace",
        "a crackling campfire pops and hisses",
        "logs crackle as a fire burns",
        "a fire burns steadily with occasional pops",
        "burning logs pop and hiss",
        "flames snap and sizzle in a hearth",
    ),
    "crickets": (
        "crickets trill on a warm summer night",
        "a cricket chirps steadily in the grass",
        "a chorus of crickets at dusk",
        "crickets singing in a field",
        "grasshoppers stridulate in tall grass",
        "a katydid trills steadily after dark",
    ),
    "chirping_birds": (
        "birds chirp in the trees",
        "small birds chirping in the morning",
        "a bird sings and chirps brightly",
        "many birds twitter in a garden",
        "sparrows twitter in a hedge",
        "a robin sings a cheerful melody",
    ),
    "water_drops": (
        "water drips from a tap",
        "drops of water fall into a sink",
        "water drops plink into a bucket",
        "a drop falls into a puddle",
        "a leaky faucet drips steadily",
        "droplets plop into a shallow basin",
    ),
    "wind": (
        "wind blows hard across a field",
        "strong wind howls around a house",
        "the wind whistles through trees",
        "gusty winds buffet the microphone",
        "a strong gust roars past",
        "a breeze rustles dry leaves",
    ),
    "pouring_water": (
        "water is poured into a glass",
        "someone pours water into a pot",
        "water pouring from a jug",
        "pouring liquid into a metal bowl",
        "someone fills a jug from a tap",
        "liquid glugs from a bottle into a mug",
    ),
    "toilet_flush": (
        "a toilet flushes and refills",
        "someone flushes a toilet",
        "a toilet flush followed by running water",
        "the toilet tank flushes loudly",
        "a lavatory cistern empties and refills",
        "the commode empties with a loud gurgle",
    ),
    "thunderstorm": (
        "a thunderstorm rumbles in the distance",
        "a thunderstorm with heavy rain",
        "thunder rolls during a violent thunderstorm",
        "a thunderstorm passes overhead with loud cracks",
        "thunder rumbles far away",
        "lightning strikes and thunder roars",
    ),
    # --- human, non-speech sounds ----------------------------------------------------------------
    "crying_baby": (
        "a baby cries loudly",
        "a baby crying in a crib",
        "an infant crying and fussing",
        "a baby wails and cries for its mother",
        "an infant wails inconsolably",
        "a newborn sobs and whimpers",
    ),
    "sneezing": (
        "a person sneezes loudly",
        "someone sneezing several times",
        "a man sneezes and sniffles",
        "a woman sneezes twice in a row",
        "a man lets out a loud achoo",
        "someone goes achoo and sniffles",
    ),
    "clapping": (
        "people clapping after a performance",
        "a person claps their hands slowly",
        "an audience claps enthusiastically",
        "rhythmic clapping from a small group",
        "a crowd applauds and cheers",
        "a room bursts into applause",
    ),
    "breathing": (
        "a person breathing heavily",
        "someone breathes in and out slowly",
        "heavy breathing close to the microphone",
        "a man breathes deeply through his nose",
        "a person inhales and exhales slowly",
        "someone pants heavily after a run",
    ),
    "coughing": (
        "a man coughs several times",
        "someone coughing loudly and repeatedly",
        "a person coughs and clears their throat",
        "a dry cough repeated twice",
        "a woman hacks and splutters",
        "someone clears their throat harshly",
    ),
    "footsteps": (
        "footsteps on a wooden floor",
        "footsteps echo down a hallway",
        "slow footsteps crunch on gravel",
        "a person's footsteps approach and fade",
        "someone walks briskly across a hard floor",
        "heavy boots stomp along a corridor",
    ),
    "laughing": (
        "a man laughs heartily",
        "people laughing at a joke",
        "a woman laughs and then giggles",
        "a child laughing happily",
        "a group of friends giggle",
        "a man chuckles and snickers",
    ),
    "brushing_teeth": (
        "someone brushes their teeth",
        "a person brushing teeth at a sink",
        "brushing teeth vigorously then spitting",
        "a toothbrush scrubs against teeth",
        "a person scrubs their molars and spits",
        "bristles scrub back and forth before rinsing",
    ),
    "snoring": (
        "a man snores loudly",
        "someone snoring in deep sleep",
        "a person snores and snorts while sleeping",
        "loud snoring from a sleeping person",
        "a sleeper wheezes and rumbles through the nose",
        "a man sleeps with heavy nasal rasps",
    ),
    "drinking_sipping": (
        "someone sips a hot drink",
        "a person drinking from a glass",
        "sipping coffee slowly from a mug",
        "a man drinks and swallows loudly",
        "someone gulps down a cold beverage",
        "a person slurps tea noisily",
    ),
    # --- interior / domestic sounds --------------------------------------------------------------
    "door_wood_knock": (
        "someone knocks on a door",
        "knocking on a wooden door three times",
        "a knock at the front door",
        "a fist knocks on solid wood",
        "someone raps firmly at the entrance",
        "a visitor bangs on the front gate",
    ),
    "mouse_click": (
        "a computer mouse clicks repeatedly",
        "clicking a mouse button quickly",
        "a mouse click followed by silence",
        "someone clicks a mouse several times",
        "someone taps a computer button rapidly",
        "a trackpad button snaps under a finger",
    ),
    "keyboard_typing": (
        "someone typing on a keyboard",
        "fast typing on a computer",
        "keys clatter as a person types",
        "a mechanical keyboard clacks steadily",
        "fingers tap quickly on laptop keys",
        "someone writes an email on a laptop",
    ),
    "door_wood_creaks": (
        "a door creaks slowly",
        "an old wooden door creaking",
        "a floor of old wood creaks underfoot",
        "a door creaks and then slams shut",
        "a rusty hinge squeaks slowly",
        "an old gate groans as it swings",
    ),
    "can_opening": (
        "someone opening a can of soda",
        "a tin can opens with a hiss",
        "a can is opened and fizzes",
        "opening a beverage can with a pop",
        "a soda tab pops with a fizz",
        "someone pulls the ring tab on a tin",
    ),
    "washing_machine": (
        "a washing machine spins loudly",
        "a machine churns laundry in a drum",
        "a washing machine fills and sloshes",
        "the spin cycle of a washing machine",
        "a laundry appliance tumbles clothes",
        "a front loader rumbles through its spin cycle",
    ),
    "vacuum_cleaner": (
        "a vacuum cleaner runs on a carpet",
        "someone vacuums the floor",
        "a loud vacuum whines steadily",
        "a vacuum cleaner is switched on and off",
        "a hoover whirs across the carpet",
        "someone hoovers a rug with a loud hum",
    ),
    "clock_alarm": (
        "an alarm clock rings loudly",
        "an alarm beeps repeatedly in a bedroom",
        "a clock alarm buzzes in the morning",
        "an old clock rings its alarm bell",
        "a bedside buzzer beeps to wake someone",
        "an electronic beeper sounds repeatedly at dawn",
    ),
    "clock_tick": (
        "a clock ticks steadily",
        "a wall clock ticking in a quiet room",
        "the tick of a clock",
        "clocks ticking in a shop",
        "a pendulum swings with a steady tock",
        "a timepiece keeps a slow rhythmic beat",
    ),
    "glass_breaking": (
        "glass shatters on the floor",
        "a glass breaks into pieces",
        "breaking glass followed by tinkling shards",
        "a wine glass smashes on tiles",
        "a window shatters into pieces",
        "a bottle smashes on a hard floor",
    ),
    # --- exterior / urban noises -----------------------------------------------------------------
    "helicopter": (
        "a helicopter flies overhead",
        "a helicopter hovers with thumping blades",
        "a distant helicopter approaches",
        "helicopter rotors thump loudly",
        "a chopper hovers overhead",
        "rotor blades whir above a field",
    ),
    "chainsaw": (
        "a chainsaw revs and cuts wood",
        "a chainsaw idles then roars",
        "someone starts a chainsaw",
        "chainsaws buzzing in a forest",
        "a lumberjack fells a tree with a roaring motor",
        "a petrol cutter whines through a log",
    ),
    "siren": (
        "a siren wails in the distance",
        "an ambulance siren passes by",
        "police sirens blare down a street",
        "a siren rises and falls",
        "an ambulance wails down the street",
        "an emergency vehicle races past wailing",
    ),
    "car_horn": (
        "a car horn honks twice",
        "a horn blares in heavy traffic",
        "cars honking their horns",
        "a driver sounds the car horn impatiently",
        "a motorist honks impatiently",
        "a truck beeps loudly in traffic",
    ),
    "engine": (
        "an engine idles in a garage",
        "a car engine starts and revs",
        "an engine runs smoothly",
        "a diesel engine rumbles loudly",
        "a motor idles and then revs",
        "a truck motor rumbles at low speed",
    ),
    "train": (
        "a train passes on the tracks",
        "a train horn blows as it approaches",
        "a freight train rumbles by",
        "trains clatter through a station",
        "a locomotive chugs along the rails",
        "railway carriages clatter over points",
    ),
    "church_bells": (
        "church bells ring out",
        "a bell tolls slowly",
        "bells chime from a church tower",
        "a church bell rings several times",
        "cathedral chimes peal at noon",
        "chimes ring out from a steeple",
    ),
    "airplane": (
        "an airplane flies overhead",
        "an airplane takes off",
        "a distant airplane drones",
        "airplanes pass over a runway",
        "a jet flies low overhead",
        "an aircraft roars during takeoff",
    ),
    "fireworks": (
        "fireworks explode in the sky",
        "fireworks pop and boom",
        "loud fireworks bang repeatedly",
        "a fireworks display with booming explosions",
        "rockets whistle and burst overhead",
        "firecrackers pop in rapid succession",
    ),
    "hand_saw": (
        "someone uses a hand saw",
        "a saw cuts back and forth through wood",
        "sawing a plank by hand",
        "a saw rasps through a board",
        "a carpenter rasps steadily through a plank",
        "a carpenter cuts lumber with a manual blade",
    ),
}
"""ESC-50 class name -> its 6 captions. Captions 1-4 name the class; 5-6 do not. Treat as read-only."""


def _check_bank_class(class_name: str) -> str:
    if not isinstance(class_name, str) or class_name not in CAPTION_BANK:
        raise ValueError(
            f"unknown ESC-50 class {class_name!r}: the caption bank has no entry for it. Valid names are "
            f"the 50 ESC-50 class names, lower case with underscores (e.g. 'dog', 'door_wood_knock'); "
            f"see sorted(clap_lib.captions.CAPTION_BANK) for the full list."
        )
    return class_name


def captions_for(class_name: str) -> tuple[str, ...]:
    """The 6 bank captions of an ESC-50 class; ValueError naming the class if it is not one."""
    return CAPTION_BANK[_check_bank_class(class_name)]


def naming_captions(class_name: str) -> tuple[str, ...]:
    """Captions 1-4 of a class: each contains a word of its class name (the filter removes them)."""
    return captions_for(class_name)[:N_NAMING]


def synonym_captions(class_name: str) -> tuple[str, ...]:
    """Captions 5-6 of a class: synonyms/related words only (they survive the filter: residual leakage)."""
    return captions_for(class_name)[N_NAMING:]


def prompt_for(class_name: str) -> str:
    """The zero-shot text prompt of a class, as in public CLAP: 'this is a sound of door wood knock'."""
    return PROMPT_TEMPLATE.format(label=class_name.replace("_", " "))


def cross_class_mentions(class_names=None) -> dict[str, tuple[str, ...]]:
    """Bank captions that mention a word of a class other than their own: {caption: (other classes, ...)}.

    Matching is the project's leakage filter. Tokens that match the caption's own class are set aside
    first, so a class word shared by two classes ("door" of door_wood_knock and door_wood_creaks) is not
    a mention of the other one. `class_names` (default: every class) limits the other classes checked.
    """
    from .filtering import leakage_filter  # imported lazily: the bank itself needs no filter

    others = tuple(CAPTION_BANK) if class_names is None else tuple(_check_bank_class(c) for c in class_names)
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


def bank_fingerprint() -> str:
    """A short hash of the whole bank, for cache keys: editing any caption changes it."""
    blob = json.dumps(CAPTION_BANK, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
