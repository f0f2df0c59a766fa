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
# # 3.2 Text topology
#
# The paper's second result: the neighbourhood structure of the label embeddings. The topological similarity
# $S = \max_k S_k$, with $S_k = \frac{1}{n}\sum_i |N_k(p_i) \cap N_k(q_i)| / k$ and $N_k$ the $k$ nearest
# neighbours of a point including itself, compares two clouds with matched points. It is computed on label-wise
# means of the audio embeddings of $T$ and on the label embeddings of $T$. **Table 3** and **Figure 3**.

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
# ## Table 3: topological similarity

# %%
display(report.table3(res))
k_cols = {f"{key}_k": f"k* {label}" for key, label in report.TOPO.items()}
display(res[["pretraining", "training", *k_cols]].rename(columns=k_cols).set_index(["pretraining", "training"]))
report.show_paper(report.paper_comparison(res, (3,), paper_tables))

# %% [markdown]
# $S_1 = 1$ and $S_n = 1$ for any pair of clouds, and the chance level of $S_k$ for independent clouds is
# $(1 + (k-1)^2/(n-1))/k$, about 0.5 at $k = 2$. $S$ is therefore taken over $k = 2 \dots n/2$ (the paper does
# not state its range) and must be read against the chance curve below, not against 0.

# %%
report.show(report.figure_sk_curves(runs))

# %% [markdown]
# ## $S(E_a, E_t)$ follows log accuracy

# %%
display(report.correlation_table(grid.correlations))
report.show_paper(report.paper_correlation_table(paper_tables))

# %% [markdown]
# ## Figure 3: T-SNE of the label embeddings $E_t$
#
# The 50 label prompts, target classes in red.

# %%
report.show(report.figure3(runs, T))
