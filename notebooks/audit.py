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
# # Leakage audit for any embedding model
#
# `clap_lib.audit` runs the paper's diagnostics on the ESC-50 embeddings of *any* model: cosine silhouette (overall
# and per class), T-SNE, zero-shot accuracy when label-text embeddings are given, the topological similarity of
# audio label means and text embeddings, and where the model sits between this project's *none* (0) and
# *dirty* (1) backbones. From the command line:
#
# ```bash
# .venv/bin/python -m clap_lib.audit my_model_esc50.npz --references artifacts/grid/<key>/results.csv \
#     --classes references --fold 5 --out audit_report/
# ```
#
# writes `audit.html` and `audit.json`. The input is an `.npz` with `audio` (clips x dims) and `files` (ESC-50
# file names), optionally `text` and `labels`; see the module docstring for CSV/parquet/npy and for how to
# export a public CLAP model's embeddings (LAION-CLAP, Microsoft CLAP). Below, the audit is run on this run's own
# backbones and on the text backbone alone.

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

# %%
import pandas as pd

from clap_lib.audit import audit

rows, results = [], {}
for (p, t), run in runs.items():
    if t != "dirty":
        continue
    e = run.emb
    # the audio backbone x_a of this pretraining, with the text backbone's x_t of the 50 label prompts
    r = audit(e["x_a"], e["clip_target"], text=e["x_t"], label_names=[str(s) for s in e["labels"]],
              references=res, classes=T, seed=seed, tsne=False)
    results[p] = r
    rows.append({"embeddings": f"x_a, pretraining {p}", "silhouette": r.silhouette,
                 "S(audio means, x_t)": r.topo_S, "chance S": r.topo_chance, "permutation p": r.topo_p})
display(pd.DataFrame(rows).set_index("embeddings").round(3))

# %% [markdown]
# Where each backbone sits between the references (0 = like *none*, 1 = like *dirty*), per metric; left empty
# (NaN) where *dirty* and *none* differ by less than 0.05, too little to place anything between them:

# %%
for p, r in results.items():
    if r.positions is not None:
        display(Markdown(f"**x_a, pretraining {p}**"))
        display(r.positions.round(3))

# %% [markdown]
# ## The text backbone alone
#
# $x_t$ of the 50 label prompts, computed by the text backbone before any CLAP training: how separable are the
# label names themselves, and which ones are neighbours?

# %%
e = next(iter(runs.values())).emb
display(report.label_neighbours(e["x_t"], [str(s) for s in e["labels"]], top=15))
