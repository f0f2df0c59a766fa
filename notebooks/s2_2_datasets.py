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
# # 2.2 Training data and the leakage filter

# %% tags=["parameters"]
# Parameters (papermill `-p name value`). The defaults are the default run (profile "gpvad").
profile = "gpvad"  # gpvad (published AudioSet-trained CRNNs), lab (CNN14 pretrained here) or paper
artifacts = "artifacts"  # cache / output folder of the run
grid = ""  # the grid folder to show (the book build passes it); "": the latest grid under artifacts
seed = 0  # training seed
split_seed = 0  # seed of the target / background class split
target_classes = ""  # comma-separated target classes T; empty: 5 per category drawn with split_seed
swap_split = False  # swap T and B (evaluate the other 25 classes)
width = None  # CNN14 width multiplier (lab / paper profiles); None: the profile default
# overrides: any other parameters, key=value pairs separated by semicolons (clap.frozen_epochs=10; captions=bank)
overrides = ""  # see the line above
seeds = ""  # seed repeats trained before the book (book build --seeds 0,1,2); "" for none

# %% tags=["remove-input"]
from IPython.display import Markdown, display

from clap_lib import report
from clap_lib.report import page

ctx = page.context(
    profile=profile,
    artifacts=artifacts,
    grid=grid,
    seed=seed,
    split_seed=split_seed,
    target_classes=target_classes,
    swap_split=swap_split,
    width=width,
    overrides=overrides,
    seeds=seeds,
)
cfg, grid, res, T = ctx.cfg, ctx.grid, ctx.res, ctx.T
runs = ctx.runs()

import pandas as pd

from clap_lib.data import caption_pools, filter_audit
from clap_lib.data.ontology import load_ontology
from clap_lib.paper.datasets import audioset_classes_removed

levels = report.pair_level_table(grid)
page.glue("n_levels", len(levels))
surv = report.surviving_table(grid)
page.glue("surv_clean", float(surv["clean"].mean()) if "clean" in surv else float("nan"))
page.glue("surv_strict", float(surv["strict"].mean()) if "strict" in surv else float("nan"))

# %% [markdown]
# **In this run**, the paper's literal "clean" rule leaves on average {glue:text}`surv_clean:.3f` of each target
# class's training pairs in the training set (audio of T described in other words), and the stricter rule
# {glue:text}`surv_strict:.3f` (nan: that level was not run). The paper's "clean" training data removes every
# example whose caption holds a word of an ESC-50 class name; below: what that rule does on this run's pairs and on
# the real AudioCaps and Clotho caption files.

# %% [markdown]
# ## Training pairs per training level

# %% tags=["remove-input"]
display(levels)
display(Markdown("Per target class: the share of its training pairs that survive each level's filter."))
display(surv)

# %% [markdown]
# ## The real caption pools
#
# With `captions=real` each ESC-50 training clip (folds 1-4) is paired with a seeded sample of real AudioCaps (train)
# and Clotho (development) captions that describe its class's sound, matched through the AudioSet ontology (the
# class's AudioSet classes, their descendants, and a short list of everyday words; whole tokens, stemmed).

# %% tags=["remove-input"]
all_captions = None
try:
    # every split of the caption files, read once: the pools here and the filter audit below
    all_captions = filter_audit.all_caption_table()
    table = caption_pools.pool_captions(all_captions)
    pools = caption_pools.class_pools(table)
    sizes = caption_pools.pool_sizes(pools)
    display(sizes.rename(columns={"n_captions": "captions in the pool"}))
    ex = pools.groupby("category").head(2)[["category", "caption", "source"]]
    display(Markdown("Two example captions per class:"))
    display(ex.set_index("category"))
except FileNotFoundError as e:
    display(Markdown(f"*Caption files not found: {e}*"))

# %% [markdown]
# ## The filter audit on the real caption files
#
# Per ESC-50 class: captions removed by the literal rule and by the strict rule in AudioCaps and Clotho, the share of
# audio files that lose all their captions, and the likely false positives (a class word in another sense) and false
# negatives (the sound named in other words), found by documented patterns.

# %% tags=["remove-input"]
try:
    # read again only when the first read failed (to show why here too)
    fa = filter_audit.audit_captions(all_captions if all_captions is not None else filter_audit.all_caption_table())
    display(fa.summary)
    with pd.option_context("display.max_rows", 60):
        display(fa.per_class)
    display(Markdown("Likely false positives of the literal rule (the class word in another sense):"))
    display(fa.false_positives)
    display(Markdown("Likely false negatives (the sound named in other words, kept by the literal rule):"))
    display(fa.false_negatives)
except FileNotFoundError as e:
    display(Markdown(f"*Caption files not found: {e}*"))

# %% [markdown]
# ## AudioSet cleaning (the paper profile's clean pretraining)
#
# The AudioSet classes removed for clean pretraining: each ESC-50 class's AudioSet classes with their ontology
# descendants, and why each goes; beside the names-only rule.

# %% tags=["remove-input"]
try:
    onto = load_ontology()
    from clap_lib.data.ontology import locate_ontology
    from clap_lib.paper.datasets import read_ontology

    classes = read_ontology(locate_ontology())
    removed = audioset_classes_removed(classes, ontology=locate_ontology())
    by_name = audioset_classes_removed(classes, ontology=locate_ontology(), expand=False)
    display(
        Markdown(
            f"{len(removed)} of {len(classes)} ontology classes are removed ({len(by_name)} by the names-only rule)."
        )
    )
    cols = [c for c in ("name", "esc50_classes", "reason") if c in removed]
    with pd.option_context("display.max_rows", None):
        display(
            removed[cols]
            .rename(columns={"name": "AudioSet class", "esc50_classes": "ESC-50 class(es)"})
            .set_index("AudioSet class")
        )
except FileNotFoundError as e:
    display(Markdown(f"*AudioSet ontology not found: {e}*"))
