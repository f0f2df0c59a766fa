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
# # 3.1 Zero-shot accuracy and audio clusters
#
# The paper's first result: zero-shot accuracy falls as leakage is removed from the training data and from the
# audio pretraining, and it follows how well the classes cluster in the audio embedding space. This page
# computes **Table 1** (accuracy), **Table 2** (silhouette of $x_a$ and $E_a$), their Pearson correlation and
# **Figure 2** (T-SNE of $E_a$) from this run's artifacts.

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
paper_tables = None  # CSV of the paper's Tables 1-3 (clap_lib/paper_tables_template.csv); None: $CLAP_PAPER_TABLES

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
# ## Table 1: zero-shot accuracy
#
# Fold-5 clips of the target classes $T$, classified among $T$'s labels by cosine similarity of $E_a$ to the
# $E_t$ of "this is a sound of {label}". Rows: audio pretraining; columns: CLAP training data.

# %%
display(report.table1(res))
display(Markdown(f"{len(T)} target classes, {int(res['n_eval_clips'].iloc[0])} fold-5 clips; "
                 f"random guess = 1/{len(T)}."))

# %% [markdown]
# ## Table 2: silhouette of the audio embeddings
#
# Cosine silhouette of the fold-5 clips of $T$, labelled by class, in the backbone space $x_a$ and in the
# projected space $E_a$ (1 = tight, separate clusters; 0 = overlapping; < 0 = mixed).

# %%
display(report.table2(res))

# %% [markdown]
# ### Next to the paper's Tables 1 and 2

# %%
report.show_paper(report.paper_comparison(res, (1, 2), paper_tables))

# %% [markdown]
# ## Accuracy follows the silhouette of $E_a$
#
# Pearson correlation over the combinations of this run (the paper reports one over its 6 combinations).

# %%
display(report.correlation_table(grid.correlations))
report.show_paper(report.paper_correlation_table(paper_tables))
report.show(report.figure_metric_bars(res, {"accuracy": "zero-shot accuracy", "sil_x_a": "silhouette x_a",
                                      "sil_E_a": "silhouette E_a"}))

# %% [markdown]
# ## Figure 2: T-SNE of $E_a$
#
# One panel per combination; fold-5 clips of the target classes in colour, background classes in grey.

# %%
report.show(report.figure2(runs, T))
