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
# # A ladder of backbones

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
# Without the ladder's records (no controlled stage, or one run without the ladder) the page is one sentence; every
# other text below is shown only with them.
from IPython.display import Markdown, display

from clap_lib import report
from clap_lib.pipeline.controlled import controlled_for
from clap_lib.report import ladder as rl
from clap_lib.report import ladder_figures as lf
from clap_lib.report import ladder_text as lt
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
rec = rl.records_for(controlled_for(ctx.grid.dir))
shown = not isinstance(rec, str)
if shown:
    an = rl.analyse(rec, n_boot=ctx.cfg.n_boot, n_perm=ctx.cfg.n_perm, seed=ctx.cfg.seed)
    numbers = lt.ladder_numbers(rec)
    notes = lt.seed_notes(numbers["n_seeds"])
    for key, value in numbers.items():
        page.glue(key, value)
else:
    display(Markdown(rec))


def say(text: str) -> None:
    """Markdown text of the page (parsed as MyST: glue, numref and directives work in it)."""
    display(Markdown(text))


# %% tags=["remove-input"]
if shown:
    say("""
The paper's conclusion is that "zero-shot accuracy depends essentially on the clustering quality of the unimodal
backbone". That is a claim about backbones, so its test is a regression across backbones: take many audio networks
whose training labels are known, measure how well each one's $x_a$ separates the sound classes, train CLAP on each,
and ask whether accuracy follows separability, and whether what a network was trained on (its label exposure)
predicts accuracy beyond its separability. The paper's own correlation rests on six points, its three audio
pretrainings under two training levels, which share their three backbones. This ladder has
{glue:text}`n_networks` networks, {glue:text}`n_networks_run` of them with CLAP runs, so every correlation below has
one point per network.

## The networks

* **Published** ({glue:text}`n_published`): the CRNNs of GPVAD and Datadriven-GPVAD, used as their authors trained
  them. Their exposure is what their training saw: all 527 AudioSet labels (GPV-F and the two teachers, labels
  that name most ESC-50 classes), or speech / non-speech targets only (GPV-B, VAD-C and the students).
* **Random** ({glue:text}`n_random_crnn`): the CRNN at random initialisation, one network per init seed; no labels.
* **Trained here, the pretraining dose** ({glue:text}`n_dose`): from each start ({glue:text}`dose_starts`), the
  CRNN's bi-GRU trained here as a classifier of ESC-50 folds 1-4: the background classes B plus a share g
  ({glue:text}`doses`) of each target class's clips (nested: the clips of a smaller g are among those of a larger
  one; g = 0 holds no clip of T). Only the bi-GRU trains, on cached outputs of the start's frozen convolutional
  trunk, until the validation accuracy stops improving: a whole-network training per dose did not fit the run's
  time, so this dose moves the top of the network only.
* **Another architecture** ({glue:text}`n_other_arch`: {glue:text}`other_archs`): EfficientAT's mn04_as (all 527
  AudioSet labels, at the paper's strength) and its random initialisation.

For every network, $x_a$ is computed once for all ESC-50 clips, and CLAP (its two projectors; the backbone stays
frozen) is trained on it at two training levels of class split 0: *unseen*, no pair of any clip of the target
classes T (true zero-shot), and *dirty*, every caption (T's clips and their class names seen in training, so its
accuracy is not zero-shot; it shows what the backbone allows once T has been seen). Each over
{glue:text}`seeds_text`, {glue:text}`n_runs` runs in all; accuracy is on the {glue:text}`n_eval_clips` fold-5 clips of
T (random guess {glue:text}`chance:.3f`).

All the CRNN numbers come from ESC-50 resampled to 16 kHz, the CRNN front end's rate: the mel bands above 8 kHz are
empty for these networks, so what they can separate is bounded by what ESC-50 holds below 8 kHz.
""")

# %% tags=["remove-input"]
if shown:
    say("""
## What each network's $x_a$ separates

{numref}`tbl-ladder-networks` gives, per network, its label exposure, two measures of how well its $x_a$ separates
the 50 ESC-50 classes on all {glue:text}`n_sep_clips` clips with the official 5-fold cross-validation (before any
CLAP training), and its accuracy at both training levels. The *linear probe* (logistic regression trained on four
folds, scored on the fifth; random guess {glue:text}`sep_chance:.3f`) is the primary measure: it asks what a linear
read-out, which is what CLAP's projector is, can get from $x_a$. The *silhouette* (cosine) is the paper's clustering
measure. The participation ratio is how many dimensions the variance of $x_a$ effectively spans.
{glue:text}`accuracy_note`
""")
    say(lt.dimension_sentences(an))
    display(
        report.numbered_table(
            rl.table_networks(an),
            "tbl-ladder-networks",
            "The ladder, least label exposure first: separability of x_a on all ESC-50 clips (probe: 95 % interval "
            "over the folds; silhouette: 95 % bootstrap interval over clips), participation ratio of x_a (of its "
            "dimension) and CLAP's accuracy on the fold-5 clips of T at each training level "
            f"({notes['table_note']}).",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Accuracy against the random guess

Before asking what accuracy follows, is there any to explain? Per training level, each network's accuracy interval
against the random guess:
""")
    say(lt.chance_sentences(an))

# %% tags=["remove-input"]
if shown:
    report.glue_figure("fig_ladder_probe", lf.figure_scatter(an, "probe"))
    report.glue_figure("fig_ladder_silhouette", lf.figure_scatter(an, "silhouette"))
    say("""
## Accuracy against separability, across networks

{numref}`fig-ladder-probe` sets each network's accuracy against the linear probe of its $x_a$, one panel per
training level; {numref}`fig-ladder-silhouette` does the same with the silhouette. {numref}`tbl-ladder-correlations`
gives Pearson's r (linear) and Spearman's r (ranks) over the network means. Their 95 % intervals come from a
bootstrap: {glue:text}`bootstrap_note`. The intervals describe these networks; networks chosen otherwise could relate
otherwise.

```{glue:figure} fig_ladder_probe
:name: fig-ladder-probe

CLAP's accuracy on T ({glue:text}`bars_note`) against the linear probe accuracy of x_a on all
ESC-50 clips, per training level. Colour: label exposure; squares: mn04; dashed: the random guess; line: least
squares through the network means.
```

```{glue:figure} fig_ladder_silhouette
:name: fig-ladder-silhouette

As the figure above, against the cosine silhouette of x_a on all ESC-50 clips.
```
""")
    say(lt.correlation_sentences(an))
    display(
        report.numbered_table(
            rl.table_correlations(an),
            "tbl-ladder-correlations",
            "Accuracy against the separability of x_a across networks: Pearson and Spearman r over the network "
            f"means, 95 % intervals of a bootstrap ({notes['correlation_note']}).",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Does exposure matter beyond separability?

If accuracy depends on the backbone only through how well its $x_a$ separates the classes, then once the probe is
known, what the network was trained on should add nothing. {numref}`tbl-ladder-regression` fits, over the network
means, `accuracy ~ probe + exposure` by least squares, with exposure coded two ways: the share of the target
classes' labels in the network's training (0 for random and speech networks, g for the dose, 1 for AudioSet's 527
labels), and the exposure kind as categories against *none*. The F-test compares the fits with and without
exposure. Exposure and separability go together on this ladder, which widens the intervals: an interval that
includes 0 says exposure adds nothing this ladder can detect, not that it adds nothing.
""")
    say(lt.regression_sentences(an))
    display(
        report.numbered_table(
            rl.table_regressions(an),
            "tbl-ladder-regression",
            "Least squares of accuracy on the linear probe and label exposure over the network means: the exposure "
            "coefficients (95 % t intervals), the F-test of exposure beyond the probe and R2 without and with it.",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Does the blind audit see the exposure?

The leakage audit scores each network by the silhouette of its $x_a$ alone, without being told how it was trained.
{numref}`tbl-ladder-audit` ranks the networks by that score beside their known exposure rank (none 0, speech 1,
ESC-50 B labels 2 plus the dose g, AudioSet's 527 labels 3). Kendall's tau-b measures the agreement of the two orders
(1: the same order; ties allowed); its p is the share of random orders of the scores that agree as well.
""")
    say(lt.audit_sentence(an))
    display(
        report.numbered_table(
            rl.table_audit(an),
            "tbl-ladder-audit",
            "The networks in the order of the blind audit's score (silhouette of x_a, highest first) beside their "
            "known label exposure and its rank.",
            empty="the audit ranking needs 3 networks or more with different scores and exposures",
        )
    )

# %% tags=["remove-input"]
dosed = shown and not rl.dose_networks(an).empty
if shown and not dosed:
    say("## The pretraining dose\n\nThese records hold no network of the pretraining dose.\n")
elif dosed:
    report.glue_figure("fig_ladder_dose", lf.figure_doses(an))
    say("""
## The pretraining dose

The dose networks share one start and one recipe; what varies is the share g of each target class's clips, with
their labels, added to the background classes in training. {numref}`fig-ladder-dose` and {numref}`tbl-ladder-dose`
follow the probe of $x_a$ and CLAP's accuracy along g. Only the start's bi-GRU trained, so a dose changes the top of the
network, not its convolutional trunk.

```{glue:figure} fig_ladder_dose
:name: fig-ladder-dose

The pretraining dose: linear probe accuracy of x_a on all ESC-50 clips (95 % interval over folds) and CLAP's
accuracy on T at each training level ({glue:text}`interval_note`) against g, the share of each target class's
clips in the backbone's training, one line per start. Dashed: the random guess.
```
""")
    say(lt.dose_sentences(an))
    display(
        report.numbered_table(
            rl.table_doses(an),
            "tbl-ladder-dose",
            "The pretraining dose per start: the untrained start (g: -) and its bi-GRU trained on B plus a share g of "
            "T; separability of x_a (95 % intervals over folds) and accuracy at each level (95 % intervals).",
        )
    )
