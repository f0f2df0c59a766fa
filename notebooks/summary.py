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
# # Summary: the paper's claim on this run

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

from clap_lib.pipeline.controlled import controlled_for
from clap_lib.report import controlled as rc
from clap_lib.report import controlled_pages as cp
from clap_lib.report import controlled_text as rt
from clap_lib.report.claims import claims_table, page_claims

# the claims as the claims page computes them (the controlled records when this run has them); the controlled
# experiment's headline when it has them
found = controlled_for(ctx.grid.dir)
pc = page_claims(ctx, found)
claims = pc.claims
verdicts = {c.id: c.verdict for c in claims}
page.glue("n_hold", sum(v == "holds" for v in verdicts.values()))
page.glue("n_claims", len(claims))
page.glue("claims_source", pc.source)
ctl = cp.controlled_on_page(found, cfg.n_boot, cfg.seed)

acc = res.set_index(["pretraining", "training"])["accuracy"]
page.glue("acc_dd", acc.get(("dirty", "dirty"), float("nan")))
page.glue("acc_nc", acc.get(("none", "clean"), float("nan")))
page.glue("r_sil", report.correlation_sentence(grid.correlations.get("acc_vs_sil_E_a"), "the silhouette of E_a"))
page.glue("dirty_note", report.dirty_training_note(cfg.profile, res["training"]))

# %% [markdown]
# **The paper's claim**: zero-shot accuracy of audio-text contrastive models on ESC-50 comes from class clusters the
# audio backbone inherited from supervised pretraining on the very classes, not from a learned audio-text alignment.
#
# **This run**: accuracy {glue:text}`acc_dd:.3f` with a dirty backbone and dirty training data, {glue:text}`acc_nc:.3f`
# with neither; across combinations
# {glue:text}`r_sil`;
# {glue:text}`n_hold` of {glue:text}`n_claims` claims hold ([claims](claims.ipynb); which data they are decided on is
# said with their verdicts below). {glue:text}`dirty_note` This
# run's {numref}`table-1` (Section 3.1, repeated here unnumbered) beside the paper's:

# %% tags=["remove-input"]
display(report.table1(res))
report.show_paper(report.paper_comparison(res, (1,)))

# %% [markdown]
# The claims' verdicts ([details](claims.ipynb)). {glue:text}`claims_source`

# %% tags=["remove-input"]
display(report.whole_table(claims_table(claims).set_index("id")[["statement", "verdict"]]))

# %% tags=["remove-input"]
if ctl is not None:
    display(
        Markdown(
            "## The controlled experiment\n\n"
            + cp.lead(ctl.rec, "Table 1", "tbl-controlled-accuracy")
            + "\n"
            + cp.ZERO_SHOT_NOTE
            + "\nPer audio pretraining, true zero-shot against a random guess, and the two paired differences that "
            "separate leakage from data quantity (a direction only where the 95 % interval excludes the null):\n\n"
            + rt.headline_sentences(ctl.an)
            + "\nThe controlled Table 1 ({numref}`tbl-table1-controlled` in Section 3.1, repeated here unnumbered):\n"
        )
    )
    display(report.whole_table(rc.table_accuracy(ctl.an)))

# %% [markdown]
# ## Findings beyond the paper

# %% tags=["remove-input"]
from clap_lib.data import freesound_overlap
from clap_lib.data.esc50 import locate_esc50, read_esc50_meta

SUM_FS_KEYS = "n_clips fsd50k fsd50k_classes fsd50k_dev clotho clotho_development training clean_training".split()
SUM_FS_KEYS += ["clean_training_classes"]
try:
    fs_numbers = freesound_overlap.shared_overlap(read_esc50_meta(locate_esc50())).numbers
except FileNotFoundError:  # no shared Freesound ID lists: the finding reads nan
    fs_numbers = dict.fromkeys(SUM_FS_KEYS, float("nan"))
for k in SUM_FS_KEYS:
    page.glue(f"sum_fs_{k}", fs_numbers[k])

# %% [markdown]
# - **ESC-50's own recordings are in the paper's training sets, and its clean filter cannot see them**
#   ([Section 2.2](s2_2_datasets.ipynb)). ESC-50's clips were cut from Freesound recordings; {glue:text}`sum_fs_fsd50k`
#   of the {glue:text}`sum_fs_n_clips` clips ({glue:text}`sum_fs_fsd50k_classes` classes) come from recordings in
#   FSD50K ({glue:text}`sum_fs_fsd50k_dev` in its dev set), {glue:text}`sum_fs_clotho` from recordings in Clotho
#   ({glue:text}`sum_fs_clotho_development` in development); {glue:text}`sum_fs_training` in a split the paper trains
#   on. After the clean rule (FSD50K clips paired with their label names, an assumption; Clotho files with their
#   captions) the training data still holds the recordings of {glue:text}`sum_fs_clean_training` clips in
#   {glue:text}`sum_fs_clean_training_classes` classes: the evaluation clips of Table 1's "clean" row include
#   recordings seen in training.

# %% [markdown]
# The mechanism in one figure, {numref}`figure-4` of Section 3.3 (repeated here): the class clusters of $x_a$ per
# pretraining, before the projection.

# %% tags=["remove-input"]
report.show(report.figure4(runs, T))

# %% [markdown]
# ## All results

# %% tags=["remove-input"]
display(report.results_frame(res).round(4))
display(report.correlation_table(grid.correlations))

# %% [markdown]
# ## Over several seeds
#
# With seed repeats (`python -m clap_lib book build --seeds 0,1,2`, trained before the book is executed), each cell
# is the mean over seeds with an interval over seeds and test clips.

# %% tags=["remove-input"]
if ctx.per_seed is not None:
    from clap_lib.analysis.uncertainty import seed_intervals
    from clap_lib.config.levels import TABLE_METRICS

    iv = seed_intervals(ctx.per_seed, metric_cols=list(TABLE_METRICS))
    display(Markdown("**Tables 1 and 2 over seeds**"))
    display(
        report.long_table(
            iv, {"accuracy": "zero-shot accuracy", "sil_x_a": "silhouette of x_a", "sil_E_a": "silhouette of E_a"}
        )
    )
    display(Markdown("**Table 3 over seeds**"))
    display(report.long_table(iv, report.TOPO))
else:
    display(Markdown("This book was built from one seed (`--seeds` not given)."))

# %% [markdown]
# ## Run facts

# %% tags=["remove-input"]
import pandas as pd

with pd.option_context("display.max_colwidth", None):
    display(report.run_facts(grid))
