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
#
# The detail of one (audio pretraining, training data) combination. The book executes this page once per
# combination with papermill (`-p pretraining ... -p training ...`).

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

pretraining = "dirty"  # dirty, clean or none
training = "dirty"  # dirty or clean

# %%
from IPython.display import Markdown, display

from clap_lib import report
from clap_lib.experiment import notebook_grid

grid = notebook_grid(artifacts, esc50, pretraining=pretraining, training=training, profile=profile, seed=seed,
                     split_seed=split_seed, target_classes=target_classes, swap_split=swap_split, width=width,
                     overrides=overrides)
runs = report.load_runs(grid)
run = runs[(pretraining, training)]
T = report.target_classes(grid)
display(Markdown(f"## Audio pretraining **{pretraining}**, training data **{training}**"))

# %% [markdown]
# ## Numbers

# %%
display(report.run_summary(run))

# %% [markdown]
# ## Training curve

# %%
report.show(report.figure_training_curves(runs))

# %% [markdown]
# ## T-SNE of the four spaces

# %%
report.show(report.figure_run_spaces(run, T))

# %% [markdown]
# ## $S_k$ curves

# %%
report.show(report.figure_sk_curves(runs))

# %% [markdown]
# ## Per-class zero-shot accuracy and silhouette ($E_a$, target classes)

# %%
display(report.per_class_table(run, T))
