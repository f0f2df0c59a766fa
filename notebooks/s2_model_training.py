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
# # 2 Model and training
#
# CLAP as the paper trains it: an audio backbone (CNN14 from PANNs) and a text backbone (a BERT encoder), each
# followed by an MLP projector into a joint space; the projections are L2-normalised and trained with the
# CLIP loss. In the paper's notation, $x_a$ and $x_t$ are the backbone outputs and $E_a$, $E_t$ the normalised
# projections; $C = \tau\, E_a E_t^\top$ is the logit matrix, clamped to $[-100, 100]$.
#
# ```text
# log-mel --CNN14--> x_a --MLP--> L2 --> E_a \
#                                              C = tau E_a E_t^T --> CLIP loss
# caption --BERT---> x_t --MLP--> L2 --> E_t /
# ```

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

# %%
from IPython.display import HTML, Markdown, display

from clap_lib import report
from clap_lib.experiment import notebook_grid

grid = notebook_grid(artifacts, esc50, profile=profile, seed=seed, split_seed=split_seed,
                     target_classes=target_classes, swap_split=swap_split, width=width, overrides=overrides)
runs = report.load_runs(grid)
T = report.target_classes(grid)
res = grid.results

# %% [markdown]
# ## The recipe: the paper's values and this run's
#
# Every value in the right column is read from this run's configuration (the cache key covers all of them).

# %%
import json

config = json.loads((grid.dir / "config.json").read_text())["config"]
display(report.recipe_table(config))

# %% [markdown]
# ## Model size

# %%
display(report.model_size_table(config))

# %% [markdown]
# ## Audio pretraining
#
# dirty: supervised classification of all 50 ESC-50 classes on folds 1-4; clean: the same without any clip of a
# target class; none: random initialisation. Validation accuracy per epoch (20 % of the pretraining clips):

# %%
report.show(report.figure_pretraining(grid))

# %% [markdown]
# ## CLAP training curves
#
# CLIP loss per epoch on the training and validation pairs; the dotted line marks where the backbones are
# unfrozen.

# %%
report.show(report.figure_training_curves(runs))
