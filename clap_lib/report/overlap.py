"""ESC-50's source recordings in FSD50K and Clotho (clap_lib.data.freesound_overlap): the share tables and the figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clap_lib.data.freesound_overlap import share_table, surviving_texts

__all__ = ["OVERLAP_SHARES", "overlap_shares", "survivor_table", "surviving_text_table", "figure_overlap"]

#: clip_table column -> its label in the book (a share of ESC-50 clips)
OVERLAP_SHARES: dict[str, str] = {
    "in fsd50k dev": "in FSD50K dev",
    "in fsd50k eval": "in FSD50K eval",
    "in clotho development": "in Clotho development",
    "in clotho validation": "in Clotho validation",
    "in clotho evaluation": "in Clotho evaluation",
    "clean training": "trained on after clean",
}


def overlap_shares(clips: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per ESC-50 class (`by="category"`) or fold: the share of its clips whose recording each training set and
    split holds, and the share a clean-filtered training set still holds (:data:`OVERLAP_SHARES`); last row:
    every clip."""
    t = share_table(clips, by, list(OVERLAP_SHARES)).rename(columns=OVERLAP_SHARES)
    t.index = [str(i).replace("_", " ") for i in t.index]
    t.index.name = "ESC-50 class" if by == "category" else "ESC-50 fold"
    return t


def survivor_table(survivors: pd.DataFrame) -> pd.DataFrame:
    """:func:`clap_lib.data.freesound_overlap.survivor_counts` for the book (one row per data set and part)."""
    t = survivors.copy()
    t["data set"] = t["data set"].map({"fsd50k": "FSD50K", "clotho": "Clotho"}).fillna(t["data set"])
    return t.set_index(["data set", "part"])


def surviving_text_table(texts: pd.DataFrame, matches: pd.DataFrame, n: int = 12) -> pd.DataFrame:
    """The `n` texts of training examples that are ESC-50 source recordings and that the clean rule keeps, most
    examples first (:func:`clap_lib.data.freesound_overlap.surviving_texts`)."""
    t = surviving_texts(texts, matches).head(n)
    t = t.assign(
        dataset=t["dataset"].map({"fsd50k": "FSD50K (label names)", "clotho": "Clotho (caption)"}),
        **{"ESC-50 classes": t["ESC-50 classes"].str.replace("_", " ")},
    )
    return t.rename(columns={"dataset": "data set", "text": "text kept by the clean rule"}).set_index("data set")


def figure_overlap(clips: pd.DataFrame):
    """Per ESC-50 class (left, sorted) and fold (right): the share of clips whose source recording is in the paper's
    training parts (grey bar: either set; FSD50K dev, Clotho development / validation), in the benchmark test parts
    (FSD50K eval, Clotho evaluation), and the share a clean-filtered training set still holds; a share of 0 has no
    marker."""
    train = clips["in fsd50k dev"] | clips["in clotho development"] | clips["in clotho validation"]
    flags = pd.DataFrame(
        {
            "in a training part (either set)": train,
            "in FSD50K dev": clips["in fsd50k dev"],
            "in Clotho development / validation": clips["in clotho development"] | clips["in clotho validation"],
            "in FSD50K eval or Clotho evaluation (test parts)": clips["in fsd50k eval"] | clips["in clotho evaluation"],
            "trained on after the clean filter": clips["clean training"],
        }
    )
    markers = {
        "in FSD50K dev": ("tab:blue", "o"),
        "in Clotho development / validation": ("tab:green", "s"),
        "in FSD50K eval or Clotho evaluation (test parts)": ("0.45", "x"),
        "trained on after the clean filter": ("tab:red", "D"),
    }
    by_class = flags.groupby(clips["category"]).mean().sort_values(list(flags.columns[[0, -1]]), kind="stable")
    by_fold = flags.groupby(clips["fold"]).mean()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 11), width_ratios=[3, 1.3])
    for ax, table, labels, title in (
        (left, by_class, [c.replace("_", " ") for c in by_class.index], "per ESC-50 class (40 clips each)"),
        (right, by_fold, [f"fold {f}" for f in by_fold.index], "per fold (400 clips each)"),
    ):
        y = np.arange(len(table))
        ax.barh(y, table[flags.columns[0]], color="0.88", height=0.8, label=flags.columns[0])
        for name, (colour, marker) in markers.items():
            shown = table[name].to_numpy() > 0  # a zero share is the absent marker (the bar says the rest)
            ax.scatter(table[name].to_numpy()[shown], y[shown], color=colour, marker=marker, s=22, label=name, zorder=3)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, len(table) - 0.3)
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("share of the ESC-50 clips")
        ax.set_title(title, fontsize=10)
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
