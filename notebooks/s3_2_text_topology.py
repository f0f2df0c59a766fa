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
# # 3.2 Text embeddings and topology

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
from IPython.display import display

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

from clap_lib.analysis import topology

r_top = grid.correlations.get("logacc_vs_topo_Ea_Et", {})
page.glue("r_topo", r_top.get("r", float("nan")))
page.glue("p_topo", r_top.get("p", float("nan")))
edge = int(sum(res.get(f"{k}_k_edge", 0).astype(bool).sum() for k in report.TOPO))
page.glue("n_edge", edge)
page.glue("n_S", len(res) * len(report.TOPO))

# %% [markdown]
# **In this run**, log accuracy against $S(E_a, E_t)$ gives Pearson r = {glue:text}`r_topo:.2f`
# (p = {glue:text}`p_topo:.3f`). In {glue:text}`n_edge` of the {glue:text}`n_S` values of $S$ below, the maximising
# $k^*$ sits on the edge of the window $k = 2 \dots n/2$: there $S$ is set by the window, not by the data, so each $S$
# is shown with its chance level and with an edge-free summary, the largest excess of $S_k$ over its chance curve.
#
# The paper measures how much of the neighbourhood structure the projection keeps with the topological similarity
# $S = \max_k S_k$, $S_k$ being the mean overlap of the $k$-nearest-neighbour sets of the same items in two spaces.

# %% [markdown]
# ## Topological similarity
#
# $S(x_a, E_a)$ on clips (x_a and E_a of each fold-5 clip of T), $S(x_t, E_t)$ on the label prompts, $S(E_a, E_t)$
# on label-wise means of $E_a$ against $E_t$ (the paper's definitions). {numref}`tbl-topology-chance` then puts each
# value beside its chance level, and {numref}`fig-sk-curves` shows the curves $S_k$ they are the maxima of.

# %% tags=["remove-input"]
display(
    report.numbered_table(
        report.table3(res), "table-3", "Topological similarity S = max_k S_k between the spaces, per combination."
    )
)
report.show_paper(report.paper_comparison(res, (3,)))

# %% tags=["remove-input"]
# The controlled experiment's Table 3 beside this run's; nothing without its records.
from IPython.display import Markdown

from clap_lib.analysis.controlled_paper import claims_frame
from clap_lib.pipeline.controlled import controlled_for
from clap_lib.report import claims as rcl
from clap_lib.report import controlled as rc
from clap_lib.report import controlled_pages as cp

rec = rc.records_for(controlled_for(ctx.grid.dir))
if not isinstance(rec, str):
    display(Markdown(cp.lead(rec, "Table 3", "tbl-controlled-topology")))
    display(
        report.numbered_table(
            cp.table_topology_spaces(rec, cfg.n_boot, cfg.seed),
            "tbl-table3-controlled",
            "Topological similarity S = max_k S_k between the spaces in the controlled design: the mean over its "
            "runs (seeds and class splits; 95 % percentile bootstrap interval over runs), its edge-free excess over "
            "chance and S with each item excluded from its own neighbourhood.",
        )
    )
    report.show_paper(rcl.paper_topology_comparison(claims_frame(rec.runs, rec.clips, cfg.n_boot, cfg.seed)))

# %% [markdown]
# ## $S$ against chance, $k^*$ and the window's edge

# %% tags=["remove-input"]
display(
    report.numbered_table(
        report.topo_table(res),
        "tbl-topology-chance",
        "S beside its chance level "
        "(permutation null of the maximum), the k that attains it and whether k* is on the "
        "window's edge.",
    )
)

# %% [markdown]
# ## Which definition of $S$ did the paper use?
#
# With $N_k$ holding the point itself (as the paper defines it), two neighbourhoods of size 2 always share that
# point, so $S_2 \ge 1/2$ for *any* two clouds. Every one of the paper's six $S(E_a, E_t)$ values is at most 0.50
# (as low as 0.38), so the paper cannot have maximised over a range containing $k = 2$ with the point included. The
# table checks each variant (self included or excluded, several $k$ ranges) against the paper's printed values: its
# lower bound, and where the paper's values fall in the variant's null distribution for $n = 50$ labels.

# %% tags=["remove-input"]
display(topology.paper_variant_consistency().round(3))

# %% [markdown]
# The same variants on this run's $E_a$ (label means) and $E_t$, dirty pretraining and dirty training data:

# %% tags=["remove-input"]
from clap_lib.analysis.metrics import label_means
from clap_lib.pipeline.evaluation import eval_selection

run = runs.get(("dirty", "dirty")) or next(iter(runs.values()))
sel = eval_selection(run.emb, cfg.split)
means, _ = label_means(sel["E_a"], sel["y"])
display(topology.S_variants(means, sel["E_t"], seed=cfg.seed).round(3))

# %% [markdown]
# ## $S_k$ curves with their chance curve

# %% tags=["remove-input"]
report.glue_figure("fig_sk", report.figure_sk_curves(runs))

# %% [markdown]
# ```{glue:figure} fig_sk
# :name: fig-sk-curves
#
# $S_k$ against $k$ for each pair of spaces and combination, with the chance curve (dashed) and $k^*$ ringed.
# ```

# %% [markdown]
# ## $S(E_a, E_t)$ follows log accuracy

# %% tags=["remove-input"]
display(report.correlation_table(grid.correlations))

# %% [markdown]
# ## T-SNE of the label embeddings $E_t$

# %% tags=["remove-input"]
report.glue_figure("fig3", report.figure3(runs, T))

# %% [markdown]
# ```{glue:figure} fig3
# :name: figure-3
#
# T-SNE of the label embeddings $E_t$ of the 50 label prompts, one panel per combination, target classes in red.
# ```
