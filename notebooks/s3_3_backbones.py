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
# # 3.3 What the audio backbones bring

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
from clap_lib.config.profiles import STRONGER_CLEAN
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

sep = report.separability(grid)
if sep is not None:
    s = sep.set_index("backbone")
    page.glue("probe_dirty", float(s.loc["dirty", "probe"]) if "dirty" in s.index else float("nan"))
    page.glue("probe_clean", float(s.loc["clean", "probe"]) if "clean" in s.index else float("nan"))
    page.glue("probe_none", float(s.loc["none", "probe"]) if "none" in s.index else float("nan"))
    from clap_lib.analysis.backbone_analysis import distance_to_random

    d = distance_to_random(sep, "clean") if {"dirty", "clean", "none"} <= set(s.index) else {"probe": float("nan")}
    pos = d["probe"]
    page.glue(
        "clean_pos",
        f"{pos:.2f} of the way from random (0) to dirty (1)"
        if pos == pos
        else "nowhere in particular (dirty and random differ by less than 0.05 on the probe)",
    )
else:
    for k in ("probe_dirty", "probe_clean", "probe_none", "clean_pos"):
        page.glue(k, float("nan") if k != "clean_pos" else "not computed")
stronger = STRONGER_CLEAN
page.glue(
    "probe_stronger",
    f"{float(s.loc[stronger, 'probe']):.3f}" if sep is not None and stronger in s.index else "not computed in this run",
)
page.glue("stronger_epochs", cfg.pretrain.epochs)

# %% [markdown]
# **In this run**, before any CLAP training, a linear probe on $x_a$ classifies all 50 ESC-50 classes with accuracy
# {glue:text}`probe_dirty:.3f` for the dirty backbone, {glue:text}`probe_clean:.3f` for the clean one and
# {glue:text}`probe_none:.3f` for the random one: on the probe, the clean backbone sits
# {glue:text}`clean_pos`. Class clusters are there before the contrastive training starts.
#
# GPV-B is a weaker "clean" than the paper's: CNN14 trained on AudioSet without the ESC-50 classes still learns from
# hundreds of other labels, while GPV-B learned speech / noise only. So the run also trains GPV-B further on the 25
# background classes $B$ (folds 1-4, {glue:text}`stronger_epochs` epochs), a stronger clean level that has seen ESC-50
# labels but none of the target classes': its probe accuracy is {glue:text}`probe_stronger` (row "GPV-B + B" of
# {numref}`tbl-separability`). Here it is an extra row of the backbone tables and of the audit; as the clean level of
# the whole grid (Tables 1-3 with it) it is one setting away, `--set weights.clean=file:gpv_b+train:background`.
#
# The paper's argument: zero-shot accuracy is inherited from the class clusters the audio backbone learned in its
# supervised pretraining. This page measures those clusters directly (separability of $x_a$,
# {numref}`tbl-separability`), shows {numref}`figure-4` (T-SNE of $x_a$ per pretraining and of $x_t$), and whether the
# projection keeps them ({numref}`tbl-silhouette-change`).

# %% [markdown]
# ## The backbones of this run

# %% tags=["remove-input"]
display(report.whole_table(report.provenance_table(grid)))

# %% [markdown]
# ## Backbone separability
#
# $x_a$ of every ESC-50 clip (all 2000, 50 classes): the cosine silhouette of all clips at once (brackets: 95 %
# bootstrap interval, clips resampled within their class), and with the official 5-fold cross-validation, each fold
# held out once, a linear probe (logistic regression, the scaler fitted on the training folds only) and 1-NN
# (cosine, neighbours from the training folds; brackets: 95 % t interval over the five folds). This is the direct
# measure of "class clusters inherited from the backbone" that {numref}`table-2`'s silhouette approximates.

# %% tags=["remove-input"]
t = report.separability_table(grid)
display(
    report.numbered_table(
        t,
        "tbl-separability",
        "Separability of each backbone's x_a on all 2000 ESC-50 clips, "
        "silhouette of all clips (95 % bootstrap interval over clips), probe and 1-NN with the official 5-fold "
        "cross-validation (95 % t interval over folds).",
    )
    if t is not None
    else Markdown("*Not computed for this run.*")
)

# %% [markdown]
# ## The ESC-50 to AudioSet mapping of the shortcut
#
# Each ESC-50 class and the AudioSet classes (ontology names) whose probabilities score it in the shortcut of Section
# 3.1; no AudioSet class is used twice, and classes without a counterpart are excluded from the shortcut.

# %% tags=["remove-input"]
import pandas as pd

from clap_lib.analysis.backbone_analysis import esc50_mapping_table
from clap_lib.data.ontology import esc50_audioset_names, esc50_audioset_reasons

labels = None
if cfg.backbone == "crnn":
    from clap_lib.models import backbones

    labels = backbones.spec("crnn").head_labels("gpv_f")
mapping = esc50_mapping_table(esc50_audioset_names(), esc50_audioset_reasons(), labels or ()).set_index("ESC-50 class")
if labels is None:
    mapping = mapping.drop(columns="in the network's 527 labels")
with pd.option_context("display.max_colwidth", None):
    display(mapping)

# %% [markdown]
# ## T-SNE of $x_a$ per pretraining and of $x_t$

# %% tags=["remove-input"]
report.glue_figure("fig4", report.figure4(runs, T))

# %% [markdown]
# ```{glue:figure} fig4
# :name: figure-4
#
# T-SNE of $x_a$ for each audio pretraining (taken from its run with dirty training data) and of $x_t$ of the label
# prompts: the clusters the backbones bring before any projection.
# ```

# %% [markdown]
# ## Silhouette before and after the projection

# %% tags=["remove-input"]
display(
    report.numbered_table(
        report.silhouette_change_table(res),
        "tbl-silhouette-change",
        "Silhouette of x_a and of E_a per combination, and what the projection changes.",
    )
)
