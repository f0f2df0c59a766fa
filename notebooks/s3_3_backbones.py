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
# # 3.3 Backbones
#
# Where do the clusters come from? **Figure 4** shows the backbone spaces: $x_a$ for each audio pretraining
# (dirty: all 50 classes; clean: every target class removed; none: random initialisation) and $x_t$ of the text
# backbone. If the projection does not create clusters, the silhouette of $x_a$ is at least that of $E_a$.

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
# ## Figure 4: T-SNE of $x_a$ per pretraining and of $x_t$
#
# $x_a$ is taken from each pretraining's run with dirty training data (after CLAP training; the backbone is
# fine-tuned only in the short unfrozen phase).

# %%
report.show(report.figure4(runs, T))

# %% [markdown]
# ## Silhouette before and after the projection

# %%
t2 = res[["pretraining", "training", "sil_x_a", "sil_E_a"]].copy()
t2["sil_x_a - sil_E_a"] = t2["sil_x_a"] - t2["sil_E_a"]
display(t2.set_index(["pretraining", "training"]).round(3))
n_hold = int((t2["sil_x_a - sil_E_a"] >= 0).sum())
display(Markdown(f"The silhouette of $x_a$ is at least that of $E_a$ in **{n_hold} of {len(t2)}** combinations."))
