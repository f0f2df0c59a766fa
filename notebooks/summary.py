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
# # Results summary
#
# All numbers of this run in one table, the correlations, and what ran and how long it took.

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
seeds = ""  # e.g. 0,1,2 to repeat the grid over these training seeds (trains what is not cached)

# %%
from IPython.display import HTML, Markdown, display

from clap_lib import report
from clap_lib.experiment import notebook_grid

grid = notebook_grid(artifacts, esc50, profile=profile, seed=seed, split_seed=split_seed,
                     target_classes=target_classes, swap_split=swap_split, width=width, overrides=overrides)
runs = report.load_runs(grid)
T = report.target_classes(grid)
res = grid.results

# %%
display(report.results_frame(res).round(4))

# %%
display(report.correlation_table(grid.correlations))

# %% [markdown]
# ## Run facts

# %%
import pandas as pd

with pd.option_context("display.max_colwidth", None):
    display(report.run_facts(grid))

# %% [markdown]
# ## Over several seeds
#
# With the `seeds` parameter (e.g. `-p seeds 0,1,2`, or `python -m clap_lib run --seeds 0,1,2`) the grid is repeated
# over training seeds and each metric is shown as mean ± sample standard deviation [min, max] per combination.

# %%
if seeds:
    from clap_lib.cli import config_from_params
    from clap_lib.experiment import TABLE_METRICS, run_seeds
    from clap_lib.uncertainty import seed_summary

    cfg = config_from_params(profile, seed, split_seed, target_classes, swap_split, width, overrides)
    per_seed = run_seeds(cfg, tuple(int(s) for s in str(seeds).split(",") if s.strip()), esc50, artifacts,
                         progress=False, quiet=True)
    summary = seed_summary(per_seed, metric_cols=list(TABLE_METRICS))
    display(Markdown("**Tables 1 and 2 over seeds**"))
    display(report.seed_table(summary, {"accuracy": "accuracy", "sil_x_a": "silhouette x_a",
                                        "sil_E_a": "silhouette E_a"}))
    display(Markdown("**Table 3 over seeds**"))
    display(report.seed_table(summary, report.TOPO))
else:
    display(Markdown("This book was built from one seed (`seeds` parameter empty)."))
