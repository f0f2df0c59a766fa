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
# # One combination

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
pretraining = "dirty"  # dirty, clean or none
training = "dirty"  # dirty, clean or strict

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

run = runs[(pretraining, training)]
display(Markdown(f"## Audio pretraining **{pretraining}**, training data **{training}**"))
if training == "dirty":
    display(Markdown(report.dirty_training_note(cfg.profile, [training])))

# %% [markdown]
# ## Numbers

# %% tags=["remove-input"]
display(report.run_summary(run))

# %% [markdown]
# ## Training curve

# %% tags=["remove-input"]
report.show(report.figure_training_curves({(pretraining, training): run}))

# %% [markdown]
# ## T-SNE of the four spaces

# %% tags=["remove-input"]
report.show(report.figure_run_spaces(run, T))

# %% [markdown]
# ## $S_k$ curves

# %% tags=["remove-input"]
report.show(report.figure_sk_curves({(pretraining, training): run}))

# %% [markdown]
# ## Per-class accuracy and silhouette ($E_a$, target classes)

# %% tags=["remove-input"]
display(report.per_class_table(run, T))
