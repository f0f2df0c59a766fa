"""Interactive exploration that keeps working in the static HTML book (ipywidgets with saved state, every
choice rendered up front and linked on the browser side)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from clap_lib.analysis import metrics
from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.report.artifacts import SPACE_NAMES, SPACES, TOPO
from clap_lib.report.figures import plot_clip_tsne, plot_label_tsne, png_data_uri


def pair_stats(runs: dict, a: str, b: str) -> pd.DataFrame:
    """For two classes: cosine of their label embeddings (x_t, E_t) and how well their clips separate
    (2-class silhouette of x_a and E_a, 2-way zero-shot accuracy) in every combination."""
    ia, ib = ESC50_CLASSES.index(a), ESC50_CLASSES.index(b)
    rows = []
    for run in runs.values():
        e = run.emb
        sel = np.isin(e["clip_target"], [ia, ib])
        y = (e["clip_target"][sel] == ib).astype(int)
        row = {"combination": run.name}
        for s in ("x_t", "E_t"):
            u, v = metrics.l2_normalize(e[s][[ia, ib]])
            row[f"cos {s}"] = float(u @ v)
        for s in ("x_a", "E_a"):
            row[f"silhouette {s}"] = (
                metrics.silhouette(e[s][sel], y) if len(np.unique(y)) == 2 and len(y) > 2 else float("nan")
            )
        row["2-way accuracy"] = metrics.zero_shot_accuracy(e["E_a"][sel], e["E_t"][[ia, ib]], y)
        rows.append(row)
    return pd.DataFrame(rows).set_index("combination")


def explorer(runs: dict, targets: list[str], pairs: list[tuple[str, str]] | None = None, dpi: int = 70):
    """Three linked widgets, all driven by saved artifacts.

    The content of every choice is rendered up front and the controls are linked to a `Stack` on the
    browser side (`jslink`), so the exploration keeps working in the static HTML book, where no
    Python kernel is running.
    """
    import ipywidgets as W

    # 1. T-SNE of a chosen combination and space
    combos = list(runs)
    options = [
        (f"{p}/{t} - {SPACE_NAMES[s]}", i) for i, ((p, t), s) in enumerate((c, s) for c in combos for s in SPACES)
    ]
    images = []
    for p, t in combos:
        for s in SPACES:
            fig, ax = plt.subplots(figsize=(5.2, 4.4))
            run = runs[(p, t)]
            (plot_clip_tsne if s in ("x_a", "E_a") else plot_label_tsne)(ax, run, s, targets)
            images.append(W.HTML(f'<img src="{png_data_uri(fig, dpi)}" style="max-width:100%"/>'))
    pick = W.Dropdown(options=options, value=0, description="T-SNE of", layout=W.Layout(width="520px"))
    stack = W.Stack(images, selected_index=0)
    W.jslink((pick, "index"), (stack, "selected_index"))  # Dropdown syncs its index, not its value
    tsne_box = W.VBox([pick, stack])

    # 2. S_k at a chosen k, for every combination and pair of spaces
    first = next(iter(runs.values()))
    n = len(first.metrics["topo_Ea_Et_curve"])
    chance = metrics.chance_knn_overlap(n)
    tables = [W.HTML("")]
    for k in range(1, n + 1):
        df = pd.DataFrame(
            {label: [runs[c].metrics[f"{key}_curve"][k - 1] for c in combos] for key, label in TOPO.items()},
            index=[runs[c].name for c in combos],
        )
        df.loc["chance"] = chance[k - 1]
        tables.append(W.HTML(f"<b>S_k at k = {k}</b> (n = {n} labels)" + df.round(3).to_html()))
    k_slider = W.IntSlider(value=2, min=1, max=n, description="k")
    k_stack = W.Stack(tables, selected_index=2)
    W.jslink((k_slider, "value"), (k_stack, "selected_index"))
    k_box = W.VBox([k_slider, k_stack])

    # 3. two classes: do their audio clusters separate, and are their labels close?
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(targets) for b in targets[i + 1 :]]
    pair_html = [
        W.HTML(
            f"<b>{a.replace('_', ' ')}</b> vs <b>{b.replace('_', ' ')}</b>" + pair_stats(runs, a, b).round(3).to_html()
        )
        for a, b in pairs
    ]
    pair_pick = W.Dropdown(
        options=[(f"{a} vs {b}", i) for i, (a, b) in enumerate(pairs)],
        value=0,
        description="classes",
        layout=W.Layout(width="420px"),
    )
    pair_stack = W.Stack(pair_html, selected_index=0)
    W.jslink((pair_pick, "index"), (pair_stack, "selected_index"))
    pair_box = W.VBox([pair_pick, pair_stack])

    tabs = W.Tab([tsne_box, k_box, pair_box])
    for i, title in enumerate(("T-SNE", "S_k by k", "two classes")):
        tabs.set_title(i, title)
    return tabs
