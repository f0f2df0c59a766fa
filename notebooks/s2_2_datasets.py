# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2.2 Datasets and leakage filtering
#
# The paper's *clean* training data removes "every example whose caption contains a word of an ESC-50 class
# name". `clap_lib.filtering` makes the rule precise: class names are split on `_` and spaces and lower-cased;
# stop words are ignored; words are compared whole, after stemming (so "dogs" and "barking" match "dog" and
# "bark"), except a short list of nouns whose stem would also match unrelated verbs ("engine" vs "engineer",
# "train" vs "training"), which are compared by their singular.
#
# This page runs the rule on the **real AudioCaps and Clotho captions** (a result the paper does not give) and
# on this run's lab captions.

# %% tags=["parameters"]
# Parameters (papermill `-p name value`). The defaults are the default run ("lab" profile).
profile = "lab"  # lab (CPU scale, real ESC-50) or paper
artifacts = "artifacts"  # cache / output folder of the run
esc50 = None  # ESC-50 root; None: $CLAP_ESC50, then ../shared/data/esc50
seed = 0  # training seed
split_seed = 0  # seed of the target / background class split
target_classes = ""  # comma-separated target classes T; empty: 5 per category drawn with split_seed
swap_split = False  # swap T and B (evaluate the other 25 classes)
width = None  # CNN14 width multiplier; None: the profile default
# overrides: any other parameters, key=value pairs separated by semicolons (clap.frozen_epochs=10; width=0.25)
overrides = ""  # see the line above

captions_root = None  # folder holding audiocaps/ and clotho/ caption files; None: ../shared/data/captions
ontology = None  # AudioSet ontology.json; None: ../shared/data/audioset/ontology.json

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from clap_lib import report
from clap_lib.paths import shared_data_dir
from clap_lib.datasets import audioset_classes_removed, read_audiocaps, read_clotho, read_ontology
from clap_lib.experiment import notebook_grid
from clap_lib.esc50 import ESC50_CLASSES

grid = notebook_grid(artifacts, esc50, profile=profile, seed=seed, split_seed=split_seed,
                     target_classes=target_classes, swap_split=swap_split, width=width, overrides=overrides)
runs = report.load_runs(grid)
T = report.target_classes(grid)

# %% [markdown]
# ## The filter on real captions: AudioCaps and Clotho, all 50 ESC-50 class names
#
# Text only (the audio is not available here), so "audio files" are the caption groups of each clip.

# %%
base = Path(captions_root) if captions_root else (shared_data_dir() or Path("missing")) / "captions"
if (base / "audiocaps").is_dir() and (base / "clotho").is_dir():
    pairs = pd.concat([read_audiocaps(base / "audiocaps", require_audio=False),
                       read_clotho(base / "clotho", require_audio=False)], ignore_index=True)
    summary, top_words = report.caption_leakage(pairs, ESC50_CLASSES)
    display(summary)
    display(Markdown("The class words that remove most captions (captions removed by each word):"))
    display(top_words)
else:
    display(Markdown(f"**Caption files not found under `{base}`** (expected `audiocaps/train.csv` ... and "
                     "`clotho/clotho_captions_development.csv` ...): set the `captions_root` parameter."))

# %% [markdown]
# ## The clean audio pretraining of the paper profile: which AudioSet classes go
#
# The paper's *clean* pretraining drops every AudioSet segment with a label whose name holds a word of an ESC-50
# class name. The same word filter on the names of the AudioSet ontology lists those classes (names only: a class
# such as "Bark" or "Howl" that names no ESC-50 class word stays, residual leakage the rule cannot see).

# %%
onto = Path(ontology) if ontology else (shared_data_dir() or Path("missing")) / "audioset" / "ontology.json"
if onto.is_file():
    classes = read_ontology(onto)
    removed = audioset_classes_removed(classes, ESC50_CLASSES)
    display(Markdown(f"{len(removed)} of {len(classes)} AudioSet ontology classes are removed:"))
    with pd.option_context("display.max_rows", None):
        display(removed.assign(matched_words=removed["matched_words"].map(", ".join))[["name", "matched_words", "mid"]])
else:
    display(Markdown(f"**AudioSet ontology not found at `{onto}`**: set the `ontology` parameter."))

# %% [markdown]
# ## The lab's training captions
#
# Every training clip (folds 1-4) is paired with each of its class's 6 captions. *clean* applies the filter with
# the words of the target classes $T$ only; the target clips that remain are paired with synonym captions
# ("a hound howls in the distance"), the residual leakage that word filtering cannot see.

# %%
display(report.lab_caption_counts(runs))
display(Markdown("Captions removed by each class word of $T$ (distinct lab captions):"))
display(report.lab_removed_per_word(runs))
