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

import json

config = json.loads((grid.dir / "config.json").read_text())["config"]
page.glue("profile", cfg.profile)
page.glue("n_combos", len(res))

# %% [markdown]
# **This run** (profile {glue:text}`profile`) trains {glue:text}`n_combos` CLAP models, one per combination of audio
# pretraining and training data, with the recipe below; every value in its right column is read from the run's
# configuration, and the cache key of every stage covers it.
#
# CLAP as the paper trains it: an audio backbone and a text backbone (a BERT encoder), each followed by an MLP
# projector into a joint space; the projections are L2-normalised and trained with the CLIP loss. In the paper's
# notation, $x_a$ and $x_t$ are the backbone outputs and $E_a$, $E_t$ the normalised projections;
# $C = \tau\, E_a E_t^\top$ is the logit matrix, clamped to $[-100, 100]$.
#
# ```text
# log-mel --audio backbone--> x_a --MLP--> L2 --> E_a \
#                                                        C = tau E_a E_t^T --> CLIP loss
# caption --BERT-------------> x_t --MLP--> L2 --> E_t /
# ```

# %% [markdown]
# ## The recipe: the paper's values and this run's

# %% tags=["remove-input"]
display(
    report.numbered_table(
        report.recipe_table(config), "tbl-recipe", "The CLAP recipe: the paper's values and this run's."
    )
)

# %% [markdown]
# ## Model size
#
# Parameter counts of the parts, from the configuration with random weights (no weight file is read).

# %% tags=["remove-input"]
display(report.model_size_table(config))

# %% [markdown]
# ## The audio backbones
#
# Where each pretraining level's backbone comes from. Published weights are loaded strictly (every key and shape);
# a backbone trained here shows its validation accuracy per epoch below.

# %% tags=["remove-input"]
display(report.whole_table(report.provenance_table(grid)))
report.show(report.figure_pretraining(grid))

# %% [markdown]
# ## The front end and this ESC-50 copy
#
# The ESC-50 copy here is 16 kHz (the original is 44.1 kHz). Resampled to the front end's rate, the mel bands above
# 8 kHz hold only resampler noise; the table lists them for this run's front end.

# %% tags=["remove-input"]

a = cfg.audio
if a.front_end == "gpvad":
    from clap_lib.models.frontend import crnn_front_end, mel_band_edges, mel_bands_above

    fe = crnn_front_end(a)
    empty = mel_bands_above(8000.0, fe)
    edges = mel_band_edges(fe)
    display(
        Markdown(
            f"{len(empty)} of {a.n_mels} mel bands lie above 8 kHz (lower edge >= 8 kHz): bands "
            f"{int(empty[0]) if len(empty) else '-'}-{int(empty[-1]) if len(empty) else '-'}, "
            f"{edges[empty[0], 0]:.0f}-{edges[empty[-1], 2]:.0f} Hz."
            if len(empty)
            else "No mel band lies above 8 kHz."
        )
    )
else:
    display(
        Markdown(
            f"Front end up to {a.fmax:g} Hz at {a.sample_rate} Hz: "
            + ("no band above 8 kHz." if a.fmax <= 8000 else "bands above 8 kHz are empty here.")
        )
    )

# %% [markdown]
# ### The band-limited control
#
# What do those empty bands do to a network? The control runs the dirty network again on the same log-mels with the
# bands above 8 kHz set to $\log(\epsilon)$, what an exactly band-limited signal gives, and compares with the run.

# %% tags=["remove-input"]
bc = report.band_control(grid)
if bc is not None:
    display(
        Markdown(
            f"Bands {bc['bands'][0]}-{bc['bands'][-1]} ({bc['band_edges_hz'][0]:.0f}-"
            f"{bc['band_edges_hz'][1]:.0f} Hz) at $\\log(\\epsilon)$ = {bc['floor']:.1f}: the control's x_a has a cosine of "
            f"{bc['x_a_cosine_median']:.3f} with the run's (median over {bc['n_clips']} clips; 5th percentile "
            f"{bc['x_a_cosine_p5']:.3f})."
        )
    )
    display(
        report.numbered_table(
            report.band_control_table(grid),
            "tbl-band-control",
            "The dirty network as run and with the empty mel bands above 8 kHz at log(eps).",
        )
    )
else:
    display(
        Markdown("*No band-limited control in this run (its front end has no band above 8 kHz, or no dirty network).*")
    )

# %% [markdown]
# ## CLAP training curves
#
# CLIP loss per epoch on the training and validation pairs; the dotted line marks where the backbones are unfrozen.

# %% tags=["remove-input"]
report.show(report.figure_training_curves(runs))
