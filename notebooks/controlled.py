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
# # A controlled experiment

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
# Without the controlled stage's records (controlled.enabled false, another profile) the page is one sentence;
# every other text below is shown only with them.
from IPython.display import Markdown, display

from clap_lib import report
from clap_lib.pipeline.controlled import controlled_for
from clap_lib.report import controlled as rc
from clap_lib.report import controlled_text as rt
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
rec = rc.records_for(controlled_for(ctx.grid.dir))
shown = not isinstance(rec, str)
if shown:
    an = rc.analyse(rec, n_boot=ctx.cfg.n_boot, seed=ctx.cfg.seed)
    for key, value in rt.design_numbers(rec).items():
        page.glue(key, value)
else:
    display(Markdown(rec))


def say(text: str) -> None:
    """Markdown text of the page (parsed as MyST: glue, numref and directives work in it)."""
    display(Markdown(text))


# %% tags=["remove-input"]
if shown:
    say("""
The paper compares a *dirty* training level (every caption) with a *clean* one (every caption that names a target
class removed) and reads the fall in accuracy as the effect of leakage. Two things stand in the way of that reading.
The clean rule is literal: captions that describe a target clip without naming its class survive it, and in this
design the clean level still trains on {glue:text}`clean_t_share:.0%` of dirty's pairs of target-class clips, so
clean is not zero-shot. And clean trains on {glue:text}`clean_size_share:.0%` of dirty's pairs, so part of any fall
is data quantity. This chapter adds the two levels that separate them, runs every level over seeds and both class
splits, and gives every number with the interval that says how far it can be trusted.

## The design

* **Class splits.** Split 0 is the grid's target classes T and background classes B; split 1 swaps them. Together
  the {glue:text}`n_splits` splits evaluate all {glue:text}`n_classes` ESC-50 classes, on
  {glue:text}`clips_per_seed` fold-5 clips per seed.
* **Audio pretraining** ({glue:text}`pretrainings`): dirty = the published GPV-F (AudioSet, 527 labels), clean =
  the published GPV-B (speech / noise labels only), none = a random initialisation of the same CRNN; and, where it
  ran, mn04_as = EfficientAT's mn04 (AudioSet, 527 labels, mAP 0.432, the strength of the paper's CNN14; another
  architecture, so its projectors train on its 512-d $x_a$ and nothing of the network itself is fine-tuned).
* **Training levels.** *dirty*: every caption of every training clip. *clean*: the paper's literal rule (its
  residual leakage). *unseen*: no pair of any target-class clip (true zero-shot), filled up with further background
  pairs to dirty's pair count. *matched*: dirty subsampled to clean's pair count (the size-matched control).
* **Seeds**: {glue:text}`n_seeds` ({glue:text}`seeds`); a seed's row pools its runs on the two splits.
* **Dose curves.** A fraction f ({glue:text}`doses`) of each target class's training clips keeps its class
  captions, nested (the clips of a smaller f are among those of a larger one) and at dirty's pair count; f = 0 and
  f = 1 are the unseen and dirty runs. Dose seeds: {glue:text}`dose_seeds`, a subset of the grid's (see *What was
  cut for the time budget*, at the end of this chapter).
* **Recipe.** The two projectors (to d_embed = {glue:text}`d_embed`) are trained on cached backbone features until
  the validation loss on held-out background clips of folds 1-4 stops improving; then the backbone's bi-GRU (whose
  time-mean is $x_a$) is fine-tuned with them on cached outputs of the frozen convolutional trunk, again until the
  validation loss stops improving. No early-stopping decision sees a target clip or fold 5.
* **Statistics.** 95 % intervals resample seeds, then clips within their class (hierarchical bootstrap); two
  training levels of one pretraining are compared by their paired difference on the same seeds and clips. In all,
  {glue:text}`n_runs` runs; random guess {glue:text}`chance:.3f`.
""")
    display(
        report.numbered_table(
            rc.table_pairs(rec),
            "tbl-controlled-pairs",
            "What each training level of the controlled design trains on (means over its runs): pairs, pairs of "
            "target-class clips and their share of dirty's, optimizer steps, where the frozen and GRU phases stopped "
            "(quarter-epochs; best: the one restored).",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Accuracy, with true zero-shot and the size-matched control

{numref}`tbl-controlled-accuracy` is the paper's Table 1 with the two new levels. True zero-shot (*unseen*) against
a random guess:
""")
    say(rt.unseen_sentences(an))
    display(
        report.numbered_table(
            rc.table_accuracy(an),
            "tbl-controlled-accuracy",
            "Accuracy of the controlled design on the fold-5 clips of the target classes of both splits (95 % "
            "hierarchical interval: seeds, then clips within their class). Only unseen is zero-shot: dirty, matched "
            "and, through its residual leakage, clean train on the target classes' clips with their names.",
        )
    )
    say("""
{numref}`tbl-controlled-comparisons` separates leakage from data quantity. *clean - matched* holds the pair count
fixed, so it is the effect of removing the leaking captions; *dirty - matched* holds the captions fixed, so it is
the effect of {glue:text}`dirty_over_clean:.1f` times the pairs; *clean - unseen* is what the clean rule's residual
leakage is worth. A direction is stated only where the interval excludes 0.
""")
    say(rt.contrast_sentences(an))
    display(
        report.numbered_table(
            rc.table_comparisons(an),
            "tbl-controlled-comparisons",
            "Paired differences of accuracy between training levels of one pretraining (same seeds and clips), and "
            "unseen against the random guess (95 % hierarchical intervals, bootstrap p).",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Silhouettes of $x_a$ and $E_a$

What trained: in the grid runs, after the frozen phase, the audio backbone's bi-GRU (whose time-mean is $x_a$) and
both projectors, on cached outputs of the CRNN's convolutional trunk; the trunk (five convolution blocks) and the
text backbone stayed frozen; the dose runs trained the projectors only. Fine-tuning the bi-GRU changes $x_a$
itself, so {numref}`tbl-controlled-silhouettes` gives the silhouette of $x_a$ before and after training, and the
median cosine between a clip's $x_a$ after and before (1: unmoved; a fine-tuning phase that never lowered the
validation loss is undone, leaving $x_a$ exactly as before).
""")
    say(rt.shift_sentences(an))
    display(
        report.numbered_table(
            rc.table_silhouettes(an),
            "tbl-controlled-silhouettes",
            "Cosine silhouette of the fold-5 clips of the target classes in x_a (before and after training) and E_a, "
            "mean of the per-clip samples (95 % hierarchical intervals), and the median cosine of x_a after vs "
            "before.",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Topological similarity S

S = max_k S_k of $E_a$ and $E_t$ is one number per run, so {numref}`tbl-controlled-topology` gives its mean over
the runs (seeds and splits) with an interval over runs, beside its chance level (the permutation null), its excess
over chance and S with each label itself excluded from its neighbours (the variant the paper's printed values
match).
""")
    display(
        report.numbered_table(
            rc.table_topology(an),
            "tbl-controlled-topology",
            "S(E_a, E_t) per condition: mean over runs (95 % percentile bootstrap interval over runs), its chance "
            "level, its excess over chance and S without self.",
        )
    )

# %% tags=["remove-input"]
if shown and an.doses.empty:
    say("## The dose curve\n\nThese records hold no dose runs (see what was cut, at the end of this chapter).\n")
elif shown:
    report.glue_figure("fig_controlled_dose", rc.figure_doses(an))
    say("""
## The dose curve

How much training leakage does zero-shot accuracy need? {numref}`fig-controlled-dose` and
{numref}`tbl-controlled-doses` follow accuracy from f = 0 (unseen) to f = 1 (dirty), each dose against f = 0 on
the same seeds and clips.

```{glue:figure} fig_controlled_dose
:name: fig-controlled-dose

Zero-shot accuracy against the share f of each target class's training clips that keep their class captions, per
audio pretraining ({glue:text}`dose_interval`; dashed: the random guess). Every dose trains on dirty's pair count.
```
""")
    say(rt.dose_sentences(an))
    display(
        report.numbered_table(
            rc.table_doses(an),
            "tbl-controlled-doses",
            "Accuracy at each dose f per audio pretraining, and its paired difference from f = 0 (95 % hierarchical "
            "intervals over the dose seeds, then clips; bootstrap p).",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## Which classes the clean rule left leaking

Per split and seed, a target class either lost every pair to the clean rule or kept some (captions that describe
its clips without naming it). {numref}`tbl-controlled-clean-classes` compares the accuracy of the two groups under
clean. The classes differ in more than their surviving pairs (how distinct they sound, how often captions name
them), so this describes where the residual leakage sits; it is not a causal estimate.
""")
    say(rt.clean_split_sentences(an))
    display(
        report.numbered_table(
            rc.table_clean_split(an),
            "tbl-controlled-clean-classes",
            "Accuracy under the clean training level of the target classes that kept no pair after the clean rule "
            "and of those that kept some (per split and seed; 95 % hierarchical intervals).",
            empty="these records have no clean runs",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("""
## The paper's correlations, with their real weight

The paper's claim is that accuracy follows the silhouette of $E_a$ and that log accuracy follows S. Here both are
Pearson correlations over this design's condition means (pretraining x training level). n counts conditions of one
design: they share seeds, clips and backbones, and the levels were chosen to differ, so they are not independent
samples, and the permutation p treats them as if they were. The interval resamples the training seeds (the same
draw for every condition) and says how much r moves with them; it cannot say how the relation generalises beyond
these conditions.
""")
    say(rt.correlation_sentences(an))
    display(
        report.numbered_table(
            rc.table_correlations(an),
            "tbl-controlled-correlations",
            "Pearson r over the condition means of the controlled design, with its 95 % interval over resamples of "
            "the seeds and a permutation p over conditions.",
            empty="a correlation needs at least 3 conditions",
        )
    )

# %% tags=["remove-input"]
if shown:
    say("## What was cut for the time budget\n\n" + rt.cuts_text(rec.design))
