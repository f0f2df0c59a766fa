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
page.glue("surv_sentence", report.survival_sentence(surv))

# %% [markdown]
# **In this run**, {glue:text}`surv_sentence` The paper's "clean" training data removes every example whose caption
# holds a word of an ESC-50 class name; below: what that rule does on this run's pairs and on the real AudioCaps and
# Clotho caption files.

# %% [markdown]
# ## Training pairs per training level

# %% tags=["remove-input"]
display(report.whole_table(levels))
display(Markdown("Per target class: the share of its training pairs that survive each level's filter."))
display(report.whole_table(surv, what="target classes"))

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
    display(report.whole_table(sizes.rename(columns={"n_captions": "captions in the pool"}), what="classes"))
    ex = pools.groupby("category").head(2)[["category", "caption", "source"]]
    display(Markdown("Two example captions per class:"))
    display(report.whole_table(ex.set_index("category"), what="example captions"))
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
    display(report.whole_table(fa.summary, what="data sets"))
    display(report.whole_table(fa.per_class, what="classes"))
    display(Markdown("Likely false positives of the literal rule (the class word in another sense):"))
    display(report.whole_table(fa.false_positives, what="(class, wrong sense) pairs"))
    display(Markdown("Likely false negatives (the sound named in other words, kept by the literal rule):"))
    display(report.whole_table(fa.false_negatives, what="(class, word) pairs"))
except FileNotFoundError as e:
    display(Markdown(f"*Caption files not found: {e}*"))

# %% [markdown]
# ## ESC-50's own recordings in the training sets
#
# ESC-50's clips were cut from Freesound recordings (`src_file` in `esc50.csv` is the Freesound sound ID), and two of
# the paper's four CLAP training sets are Freesound recordings too: every FSD50K clip is one (its file name is the
# ID) and every Clotho file was drawn from one. A caption filter cannot see this: a training example that *is* an ESC-50
# test recording stays in "clean" whenever its text names no class word. Below, the shared ID lists
# (`freesound/` in the data folder: every FSD50K clip's and every Clotho v2 file's Freesound ID) joined with ESC-50
# (`clap_lib.data.freesound`, `clap_lib.data.freesound_overlap`), and what the paper's clean rule does with each overlapping training example. The text
# of an FSD50K example is **assumed** to be its label names (the paper does not say what text it paired FSD50K clips
# with); a Clotho file's texts are its five captions, from the Clotho caption files here matched by split and file
# name. The same join runs on your own training data: `python -m clap_lib overlap --ids my.csv` (or `--fsd50k-root`,
# `--clotho-root`).

# %% tags=["remove-input"]
from clap_lib.data import freesound_overlap
from clap_lib.data.esc50 import locate_esc50, read_esc50_meta

FS_KEYS = tuple(
    "n_clips fsd50k fsd50k_classes fsd50k_dev fsd50k_eval clotho clotho_classes clotho_development"
    " clotho_validation clotho_evaluation either training clean_training clean_training_classes no_text_training".split()
)
overlap = None
try:
    overlap = freesound_overlap.shared_overlap(read_esc50_meta(locate_esc50()))
    fs_numbers = overlap.numbers
    surv_parts = overlap.survivors.set_index(["data set", "part"])
    caps = overlap.captions
    report.glue_figure("fig_freesound_overlap", report.figure_overlap(overlap.clips))
except FileNotFoundError as e:  # no shared ID lists: the page says so instead of the numbers
    fs_numbers, surv_parts, caps = {k: float("nan") for k in FS_KEYS}, None, None
    page.glue("fig_freesound_overlap", Markdown(f"*Freesound ID lists not found: {e}*"))
for k in FS_KEYS:
    page.glue(f"fs_{k}", fs_numbers[k])
page.glue("fs_clean_share", fs_numbers["clean_training"] / fs_numbers["n_clips"])
page.glue("fs_training_share", fs_numbers["training"] / fs_numbers["n_clips"])
page.glue("fs_upper", fs_numbers["clean_training"] + fs_numbers["no_text_training"])
nan = float("nan")
for key, (d, part), col in (
    ("fsd_dev_ex", ("fsd50k", "dev"), "overlapping examples"),
    ("fsd_dev_surv", ("fsd50k", "dev"), "surviving clean"),
    ("clo_dev_ex", ("clotho", "development"), "overlapping examples"),
    ("clo_dev_text", ("clotho", "development"), "with a text here"),
    ("clo_dev_surv", ("clotho", "development"), "surviving clean"),
    ("clo_val_ex", ("clotho", "validation"), "overlapping examples"),
):
    page.glue(
        f"fs_{key}",
        int(surv_parts.loc[(d, part), col]) if surv_parts is not None and (d, part) in surv_parts.index else nan,
    )
in_training = (
    None
    if overlap is None
    else (overlap.clips[["in fsd50k dev", "in clotho development", "in clotho validation"]].any(axis=1))
)
for key, by in (("fold", "fold"), ("class", "category")):
    share = in_training.groupby(overlap.clips[by]).mean() if overlap is not None else pd.Series([nan])
    page.glue(f"fs_{key}_min", float(share.min()))
    page.glue(f"fs_{key}_max", float(share.max()))
    if key == "class":
        page.glue("fs_class_none", int((share == 0).sum()) if overlap is not None else nan)
for split in ("development", "validation", "evaluation"):
    page.glue(f"fs_cap_{split}", int(caps.loc[split, "with_captions"]) if caps is not None else nan)
    page.glue(f"fs_files_{split}", int(caps.loc[split, "files"]) if caps is not None else nan)

# %% [markdown]
# **{glue:text}`fs_fsd50k` of the {glue:text}`fs_n_clips` ESC-50 clips ({glue:text}`fs_fsd50k_classes` of 50
# classes) come from recordings that are in FSD50K, {glue:text}`fs_fsd50k_dev` of them in its dev set (the paper's
# training part); {glue:text}`fs_clotho` from recordings in Clotho ({glue:text}`fs_clotho_classes` classes),
# {glue:text}`fs_clotho_development` in its development split.** Together {glue:text}`fs_training` clips
# ({glue:text}`fs_training_share:.3f` of ESC-50) have their recording in a split the paper trains on.
#
# The clean rule removes most of those training examples, not all: of the {glue:text}`fs_fsd_dev_ex` FSD50K dev clips
# that are ESC-50 source recordings, {glue:text}`fs_fsd_dev_surv` keep their label text (labels that describe the
# sound in other words, {numref}`tbl-freesound-texts`); of the {glue:text}`fs_clo_dev_ex` Clotho development files,
# {glue:text}`fs_clo_dev_text` have captions here and {glue:text}`fs_clo_dev_surv` of them keep at least one. The
# Clotho caption files here are v1's: they match {glue:text}`fs_cap_development` of the
# {glue:text}`fs_files_development` v2 development files and {glue:text}`fs_cap_evaluation` of the
# {glue:text}`fs_files_evaluation` evaluation files by file name, and {glue:text}`fs_cap_validation` of the
# {glue:text}`fs_files_validation` validation files (a split v1 did not have), so the
# {glue:text}`fs_clo_val_ex` overlapping validation files have no text here and are counted as unknown, never as
# kept. {numref}`tbl-freesound-survivors` counts every part.

# %% tags=["remove-input"]
if overlap is not None:
    display(
        report.numbered_table(
            report.survivor_table(overlap.survivors),
            "tbl-freesound-survivors",
            "Training examples (FSD50K clips, Clotho files) that are the Freesound recording "
            "of an ESC-50 clip, per data set and part: those with a text here, those the "
            "paper's clean rule keeps (at least one text without an ESC-50 class word), and "
            "their texts.",
        )
    )
    display(
        report.numbered_table(
            report.surviving_text_table(overlap.texts, overlap.matches),
            "tbl-freesound-texts",
            "The most frequent texts of training examples (training parts only) that are an "
            "ESC-50 source recording and that the clean rule keeps, with the ESC-50 classes "
            "of their recordings.",
        )
    )

# %% [markdown]
# ```{glue:figure} fig_freesound_overlap
# :name: fig-freesound-overlap
#
# Per ESC-50 class (sorted) and per fold: the share of clips whose Freesound source recording is in the paper's
# training parts (grey bar; FSD50K dev, Clotho development / validation), in the benchmark test parts, and the share a
# clean-filtered training set still holds (red).
# ```
#
# {numref}`tbl-freesound-folds` and {numref}`tbl-freesound-classes` give the same shares per training set and split.
# Every fold holds it (between {glue:text}`fs_fold_min:.3f` and {glue:text}`fs_fold_max:.3f` of a fold's clips have
# their recording in a training part), so no choice of evaluation fold avoids it; per class it ranges from
# {glue:text}`fs_class_min:.3f` to {glue:text}`fs_class_max:.3f` of the class ({glue:text}`fs_class_none` classes
# have none).

# %% tags=["remove-input"]
if overlap is not None:
    display(
        report.numbered_table(
            report.overlap_shares(overlap.clips, "fold"),
            "tbl-freesound-folds",
            "Per ESC-50 fold: the share of its clips whose source recording each training set "
            "and split holds, and the share a clean-filtered training set still holds.",
        )
    )
    display(
        report.numbered_table(
            report.overlap_shares(overlap.clips, "category"),
            "tbl-freesound-classes",
            "Per ESC-50 class: the share of its 40 clips whose source recording each training "
            "set and split holds, and the share a clean-filtered training set still holds.",
        )
    )

# %% [markdown]
# **What it means for the paper's Table 1 "clean" row.** The paper scores all {glue:text}`fs_n_clips` ESC-50 clips.
# Even after its
# clean filter, the training data still holds the source recordings of {glue:text}`fs_clean_training` of them
# ({glue:text}`fs_clean_share:.3f`, in {glue:text}`fs_clean_training_classes` classes; up to
# {glue:text}`fs_upper` counting the clips whose Clotho examples have no text here): the clean row's evaluation clips
# include recordings seen in training, with texts that describe them in other words, and its gap to the dirty row
# mixes the effect of the class words with this unfiltered audio. The dirty row's training data holds the recordings
# of all {glue:text}`fs_training`. The paper profile's `dedup` training level (beyond the paper,
# `--set trainings=dirty,clean,dedup`) drops every example whose Freesound ID is an ESC-50 source, as WavCaps did;
# LAION-CLAP did not.

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
    display(
        report.whole_table(
            removed[cols]
            .rename(columns={"name": "AudioSet class", "esc50_classes": "ESC-50 class(es)"})
            .set_index("AudioSet class"),
            what="removed AudioSet classes",
        )
    )
except FileNotFoundError as e:
    display(Markdown(f"*AudioSet ontology not found: {e}*"))
