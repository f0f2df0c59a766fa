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
# # Explore the embeddings
#
# Everything here works in the static HTML (no kernel): T-SNE scatter plots with the class, file and fold of every
# point on hover (click a legend entry to hide a class, double-click to show only it), and the linked widgets below.

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

from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.report.interactive import show, tsne_scatter

run = runs.get(("dirty", "dirty")) or next(iter(runs.values()))

# %% [markdown]
# ## $E_a$ and $x_a$ of the fold-5 clips, dirty pretraining and dirty training data

# %% tags=["remove-input"]
e = run.emb
names = [ESC50_CLASSES[int(t)] for t in e["clip_target"]]
folds = e["clip_fold"] if "clip_fold" in e else [5] * len(names)
show(tsne_scatter(run.tsne["E_a"], names, e["clip_file"], folds, f"E_a, {run.name}", class_order=list(ESC50_CLASSES)))

# %% tags=["remove-input"]
show(tsne_scatter(run.tsne["x_a"], names, e["clip_file"], folds, f"x_a, {run.name}", class_order=list(ESC50_CLASSES)))

# %% [markdown]
# ## Linked widgets: every combination and space, $S_k$ at any $k$, and any two classes

# %% tags=["remove-input"]
report.explorer(runs, T)
