"""The figures of the page "A ladder of backbones" (issue 21, clap_lib.report.ladder): zero-shot accuracy against the
separability of x_a across networks, and the pretraining dose (static matplotlib)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.transforms import offset_copy

from clap_lib.report.ladder import LEVEL_TEXT, LEVELS, MEASURES, LadderAnalysis, dose_networks

__all__ = ["exposure_colour", "figure_scatter", "figure_doses"]


def exposure_colour(kind: str, g: float | None = None):
    """The colour of an exposure: none grey, speech blue, ESC-50 green (darker with more of T), AudioSet red."""
    if kind == "esc50":
        return plt.get_cmap("Greens")(0.45 + 0.5 * (g or 0.0))
    return {"none": "0.45", "speech": "tab:blue", "audioset_527": "tab:red"}[kind]


def figure_scatter(an: LadderAnalysis, measure: str = "probe"):
    """Accuracy (network mean; bars: range over seeds) against the separability `measure` of x_a, one panel per
    level; every point named, coloured by exposure (circles CRNNs, squares mn04), the random guess and the OLS
    line through the network means."""
    fig, axes = plt.subplots(1, len(LEVELS), figsize=(6.2 * len(LEVELS), 5.2), squeeze=False)
    nets = an.networks.set_index("network")
    for ax, lv in zip(axes[0], LEVELS):
        p = an.points[an.points["level"] == lv]
        for r in p.itertuples():
            x = nets.loc[r.network, measure]
            colour = exposure_colour(r.exposure, nets.loc[r.network, "t_labels"])
            yerr = [[r.accuracy - r.seed_min], [r.seed_max - r.accuracy]]
            marker = "o" if r.architecture == "crnn" else "s"
            ax.errorbar(x, r.accuracy, yerr=yerr, fmt=marker, color=colour, mec="k", mew=0.4, capsize=2, ms=6)
            ax.annotate(r.network, (x, r.accuracy), xytext=(4, 3), textcoords="offset points", fontsize=6.5)
        ax.axhline(float(p["chance"].mean()), color="0.4", ls="--", lw=1)
        if p["network"].nunique() >= 2:
            xs = nets.loc[p["network"], measure].to_numpy(float)
            slope, icpt = np.polyfit(xs, p["accuracy"].to_numpy(float), 1)
            grid = np.linspace(xs.min(), xs.max(), 2)
            ax.plot(grid, icpt + slope * grid, color="k", lw=1, alpha=0.6)
        c = an.correlations.get((lv, measure, "all"))
        r_text = "" if isinstance(c, str) or c is None else f"; Pearson r = {c.pearson.value:.2f} (n = {c.n_networks})"
        ax.set_title(f"{LEVEL_TEXT[lv]}{r_text}", fontsize=9)
        ax.set_xlabel(f"{MEASURES[measure]} (all {an.networks['n_clips'].max():g} ESC-50 clips)")
        ax.set_ylabel("accuracy on T (fold 5, by label prompts)")
        ax.grid(alpha=0.3)
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=exposure_colour(k, g), mec="k", mew=0.4, label=lab)
        for k, g, lab in an.networks[["exposure", "t_labels", "exposure_label"]]
        .drop_duplicates("exposure_label")
        .values
    ]
    handles += [
        plt.Line2D([], [], ls="", marker="s", color="w", mec="k", label="mn04 (squares)"),
        plt.Line2D([], [], color="0.4", ls="--", lw=1, label="random guess"),
        plt.Line2D([], [], color="k", lw=1, alpha=0.6, label="least-squares line"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def figure_doses(an: LadderAnalysis):
    """The pretraining dose: the linear probe of x_a and the accuracy at each level against g, one line per start
    (95 % intervals; dashed: the random guess)."""
    d = dose_networks(an)
    fig, axes = plt.subplots(1, 1 + len(LEVELS), figsize=(4.2 * (1 + len(LEVELS)), 3.8))
    starts = list(dict.fromkeys(d["start"]))
    for i, (start, g) in enumerate(d.groupby("start", sort=False)):
        # a few points apart sideways, so that overlapping intervals stay readable
        dx = 4 * (i - (len(starts) - 1) / 2)
        cols = [("probe", "probe_lo", "probe_hi")] + [(f"{lv}_accuracy", f"{lv}_lo", f"{lv}_hi") for lv in LEVELS]
        for ax, (v, lo, hi) in zip(axes, cols):
            shifted = offset_copy(ax.transData, fig=fig, x=dx, units="points")
            yerr = np.vstack([g[v] - g[lo], g[hi] - g[v]])
            ax.errorbar(g["g"], g[v], yerr=yerr, marker="o", capsize=3, label=f"start {start}", transform=shifted)
    for ax, (_, lo, hi) in zip(axes, cols):  # the shifted points do not autoscale
        bottom, top = np.nanmin(d[lo]), np.nanmax(d[hi])
        if ax is not axes[0]:
            bottom, top = min(bottom, an.chance), max(top, an.chance)
        pad = 0.06 * (top - bottom + 0.01)
        ax.set_ylim(bottom - pad, top + pad)
    axes[0].set_ylabel("linear probe accuracy of x_a")
    axes[0].set_title("separability of x_a (all ESC-50 clips)", fontsize=9)
    for ax, lv in zip(axes[1:], LEVELS):
        ax.axhline(an.chance, color="0.4", ls="--", lw=1)
        ax.set_title(LEVEL_TEXT[lv], fontsize=9)
        ax.set_ylabel("accuracy on T (fold 5, by label prompts)")
    for ax in axes:
        ax.set_xlabel("g: share of T's clips trained on")
        ax.set_xticks(sorted(set(d["g"])), [f"{v:g}" for v in sorted(set(d["g"]))])
        ax.set_xlim(-0.08, 1.08)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
