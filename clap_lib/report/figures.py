"""Static figures of the book (matplotlib): Figures 2-4 of the paper, S_k curves, training curves."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clap_lib.analysis import metrics
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.pipeline.results import GridResult
from clap_lib.report.artifacts import SPACE_NAMES, SPACES, TOPO, RunArtifacts, _stages
from clap_lib.report.tables import _order_key


def _panel_grid(n: int, ncols: int = 3, size: float = 3.6):
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def _class_colours(n: int) -> np.ndarray:
    cmap = plt.get_cmap("tab20", 20)
    extra = plt.get_cmap("tab20b", 20)
    return np.array([cmap(i) if i < 20 else extra(i - 20) for i in range(n)])


def plot_clip_tsne(ax, run: RunArtifacts, space: str, targets: list[str], title: str | None = None) -> None:
    """T-SNE of one audio space (x_a or E_a) of fold-5 clips: T classes coloured, background in grey."""
    xy, y = run.tsne[space], run.emb["clip_target"]
    t_idx = [ESC50_CLASSES.index(c) for c in targets]
    bg = ~np.isin(y, t_idx)
    ax.scatter(xy[bg, 0], xy[bg, 1], s=5, c="0.85", linewidths=0, label="background classes")
    colours = _class_colours(len(t_idx))
    for i, t in enumerate(t_idx):
        sel = y == t
        ax.scatter(xy[sel, 0], xy[sel, 1], s=9, color=colours[i], linewidths=0, label=ESC50_CLASSES[t])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{run.name}: {space}", fontsize=9)


def plot_label_tsne(ax, run: RunArtifacts, space: str, targets: list[str], title: str | None = None) -> None:
    """T-SNE of the 50 label embeddings (x_t or E_t), names written next to the points."""
    xy, labels = run.tsne[space], [str(s) for s in run.emb["labels"]]
    is_t = np.array([lab in targets for lab in labels])
    ax.scatter(xy[~is_t, 0], xy[~is_t, 1], s=10, c="0.6", linewidths=0)
    ax.scatter(xy[is_t, 0], xy[is_t, 1], s=14, c="tab:red", linewidths=0)
    for (x, y), lab, t in zip(xy, labels, is_t):
        ax.annotate(
            lab.replace("_", " "),
            (x, y),
            fontsize=5,
            color="tab:red" if t else "0.35",
            xytext=(2, 2),
            textcoords="offset points",
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{run.name}: {space}", fontsize=9)


def figure2(runs: dict, targets: list[str]):
    """Figure 2: T-SNE of E_a, one panel per combination, coloured by (target) class."""
    fig, axes = _panel_grid(len(runs), ncols=2)
    for ax, run in zip(axes, runs.values()):
        a = run.metrics["accuracy"]
        plot_clip_tsne(
            ax,
            run,
            "E_a",
            targets,
            f"pretraining {run.pretraining}, training {run.training}\n"
            f"accuracy {a:.2f}, silhouette {run.metrics['sil_E_a']:.2f}",
        )
    _legend_below(fig, axes[0])
    fig.tight_layout()
    return fig


def figure3(runs: dict, targets: list[str]):
    """Figure 3: T-SNE of the label E_t per combination, annotated with label names (T in red)."""
    fig, axes = _panel_grid(len(runs), ncols=2, size=4.6)
    for ax, run in zip(axes, runs.values()):
        plot_label_tsne(
            ax,
            run,
            "E_t",
            targets,
            f"pretraining {run.pretraining}, training {run.training}: E_t\n"
            f"S(E_a, E_t) = {run.metrics['topo_Ea_Et']:.2f}",
        )
    fig.tight_layout()
    return fig


def figure4(runs: dict, targets: list[str]):
    """Figure 4: T-SNE of x_a for each pretraining (from its training=dirty run) and of the text backbone x_t."""
    by_pre = {}
    for (p, t), run in runs.items():
        if p not in by_pre or t == "dirty":
            by_pre[p] = run
    n = len(by_pre) + 1
    fig, axes = _panel_grid(n, ncols=2, size=4.2)
    for ax, (p, run) in zip(axes, by_pre.items()):
        plot_clip_tsne(ax, run, "x_a", targets, f"x_a, pretraining {p}\nsilhouette {run.metrics['sil_x_a']:.2f}")
    plot_label_tsne(axes[-1], next(iter(by_pre.values())), "x_t", targets, "x_t: text backbone (label prompts)")
    _legend_below(fig, axes[0])
    fig.tight_layout()
    return fig


def _legend_below(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(
        handles,
        [lab.replace("_", " ") for lab in labels],
        loc="lower center",
        ncol=6,
        fontsize=6,
        markerscale=1.5,
        frameon=False,
        bbox_to_anchor=(0.5, -0.06),
    )


def figure_sk_curves(runs: dict, k_max: int | None = None):
    """S_k against k for the three pairs of spaces, per combination, with the chance curve of S_k and k* (where
    S = max_k S_k is taken) marked by a ring."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, label) in zip(axes, TOPO.items()):
        for run in runs.values():
            curve = np.asarray(run.metrics[f"{key}_curve"])
            k = np.arange(1, len(curve) + 1)
            stop = k_max or len(curve)
            (line,) = ax.plot(k[:stop], curve[:stop], marker=".", ms=3, lw=1, label=run.name)
            k_star = run.metrics.get(f"{key}_k")
            if k_star is not None and 1 <= k_star <= len(curve):
                ax.plot([k_star], [curve[k_star - 1]], "o", mfc="none", ms=8, color=line.get_color())
        n = len(curve)
        chance = np.asarray(run.metrics.get(f"{key}_chance_curve") or metrics.chance_knn_overlap(n))
        ax.plot(k[:stop], chance[:stop], "k--", lw=1, label="chance")
        ax.set_title(f"S_k: {label}", fontsize=10)
        ax.set_xlabel("k")
    axes[0].set_ylabel("S_k")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_training_curves(runs: dict):
    """Train / validation CLIP loss per epoch (frozen epochs, then unfrozen) for each combination."""
    fig, axes = _panel_grid(len(runs), ncols=3, size=3.4)
    for ax, run in zip(axes, runs.values()):
        h = pd.DataFrame(run.history)
        x = np.arange(1, len(h) + 1)
        ax.plot(x, h["train_loss"], label="train")
        ax.plot(x, h["val_loss"], label="validation")
        n_frozen = int((h["phase"] == "frozen").sum())
        if n_frozen < len(h):
            ax.axvline(n_frozen + 0.5, color="0.5", ls=":", lw=1)
        ax.set_title(run.name, fontsize=9)
        ax.set_xlabel("epoch")
    axes[0].set_ylabel("CLIP loss")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_metric_bars(results: pd.DataFrame, cols: dict[str, str]):
    """Bar chart of metrics per combination, with error bars when `<col>_lo/_hi` are present."""
    df = results.sort_values(["pretraining", "training"], key=_order_key)
    names = [f"{p}/{t}" for p, t in zip(df["pretraining"], df["training"])]
    fig, axes = plt.subplots(1, len(cols), figsize=(4.2 * len(cols), 3.4), squeeze=False)
    for ax, (c, label) in zip(axes[0], cols.items()):
        v = df[c].to_numpy(float)
        err = None
        if f"{c}_lo" in df and f"{c}_hi" in df:
            err = np.vstack([v - df[f"{c}_lo"].to_numpy(float), df[f"{c}_hi"].to_numpy(float) - v])
        ax.bar(names, v, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_title(label, fontsize=10)
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    return fig


def show(fig) -> None:
    """Display a figure once in a notebook, whatever the matplotlib backend, and free it."""
    from IPython.display import display

    display(fig)
    plt.close(fig)


def png_data_uri(fig, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def figure_pretraining(grid: GridResult):
    """Validation accuracy per epoch of the supervised backbone trainings of this run (none for published weights
    or random init: their panels say so)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for kind, d in _stages(grid)["backbone"].items():
        h = pd.DataFrame(json.loads((Path(d) / "history.json").read_text()))
        if h.empty:  # a loaded checkpoint (paper profile, dirty) has no training history here
            continue
        n_classes = json.loads((Path(d) / "manifest.json").read_text()).get("info", {}).get("n_classes")
        ax.plot(h["epoch"], h["val_acc"], marker=".", label=f"{kind} ({n_classes} classes)")
        if n_classes:
            ax.axhline(1 / n_classes, ls=":", lw=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    if ax.lines:
        ax.legend(fontsize=8)
    else:  # e.g. a run of the random level only: say so instead of an empty legend (and its warning)
        ax.text(0.5, 0.5, "no backbone of this run was trained here", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("audio pretraining (dotted: chance)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_run_spaces(run: RunArtifacts, targets: list[str]):
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    for ax, s in zip(axes.flat, SPACES):
        (plot_clip_tsne if s in ("x_a", "E_a") else plot_label_tsne)(ax, run, s, targets, SPACE_NAMES[s])
    _legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig
