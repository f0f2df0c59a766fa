"""Tables, figures and widgets of the book, built from a finished grid's artifacts (no recomputation).

Everything here reads what `experiment.run_grid` wrote: `results.csv` / `correlations.json` of the grid
and, per combination, `metrics.json`, `history.json`, `embeddings.npz` and `tsne.npz`.

Table layout follows the paper: one row per audio pretraining (dirty, clean, none), one column per
CLAP training data (dirty, clean). Interval columns (`<metric>_lo`, `<metric>_hi`) are shown as
`0.61 [0.55, 0.66]` when the results carry them.
"""
from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import metrics
from .experiment import PRETRAININGS, TRAININGS, GridResult
from .esc50 import ESC50_CLASSES

SPACES = ("x_a", "E_a", "x_t", "E_t")
SPACE_NAMES = {"x_a": "audio backbone x_a", "E_a": "audio projection E_a", "x_t": "text backbone x_t",
               "E_t": "text projection E_t"}
TOPO = {"topo_xa_Ea": "x_a vs E_a", "topo_xt_Et": "x_t vs E_t", "topo_Ea_Et": "E_a vs E_t"}


@dataclass(frozen=True)
class RunArtifacts:
    """One combination's outputs, loaded from its stage directory."""

    pretraining: str
    training: str
    metrics: dict
    history: list[dict]
    emb: dict[str, np.ndarray]
    tsne: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return f"{self.pretraining}/{self.training}"


def load_run(run_dir: str | Path) -> RunArtifacts:
    d = Path(run_dir)
    m = json.loads((d / "metrics.json").read_text())
    with np.load(d / "embeddings.npz") as e, np.load(d / "tsne.npz") as t:
        emb, tsne = {k: e[k] for k in e.files}, {k: t[k] for k in t.files}
    return RunArtifacts(m["pretraining"], m["training"], m, json.loads((d / "history.json").read_text()), emb, tsne)


def load_runs(grid: GridResult) -> dict[tuple[str, str], RunArtifacts]:
    """Every combination of the grid, keyed (pretraining, training), in the paper's order."""
    runs = {}
    for _, row in grid.results.iterrows():
        runs[(row["pretraining"], row["training"])] = load_run(row["run_dir"])
    return {k: runs[k] for k in sorted(runs, key=combo_order)}


def combo_order(key: tuple[str, str]) -> tuple[int, int]:
    return PRETRAININGS.index(key[0]), TRAININGS.index(key[1])


def target_classes(grid: GridResult) -> list[str]:
    return json.loads((grid.dir / "config.json").read_text())["target_classes"]


# --- tables ------------------------------------------------------------------------------------


def fmt(value: float, lo: float | None = None, hi: float | None = None, digits: int = 3) -> str:
    """`0.612` or, with an interval, `0.612 [0.550, 0.660]`."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    s = f"{value:.{digits}f}"
    if lo is not None and hi is not None and not (np.isnan(lo) or np.isnan(hi)):
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def _cell(row: pd.Series, col: str, digits: int) -> str:
    lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
    return fmt(float(row[col]), None if lo is None else float(lo), None if hi is None else float(hi), digits)


def grid_table(results: pd.DataFrame, col: str, digits: int = 3) -> pd.DataFrame:
    """Rows: audio pretraining; columns: CLAP training data. Cells formatted with intervals if present."""
    out = pd.DataFrame(index=pd.Index([p for p in PRETRAININGS if p in set(results["pretraining"])],
                                      name="audio pretraining"),
                       columns=pd.Index([t for t in TRAININGS if t in set(results["training"])],
                                        name="training data"), dtype=object)
    for _, row in results.iterrows():
        out.loc[row["pretraining"], row["training"]] = _cell(row, col, digits)
    return out


def table1(results: pd.DataFrame) -> pd.DataFrame:
    """Table 1: zero-shot accuracy on fold-5 clips of the target classes, plus the random guess."""
    t = grid_table(results, "accuracy")
    t["random guess"] = fmt(float(results["random_guess"].iloc[0]))
    return t


def long_table(results: pd.DataFrame, cols: dict[str, str], digits: int = 3) -> pd.DataFrame:
    """One row per combination, one column per metric (formatted); `cols` maps column -> header."""
    rows = []
    for _, r in results.sort_values(["pretraining", "training"], key=_order_key).iterrows():
        rows.append({"audio pretraining": r["pretraining"], "training data": r["training"]}
                    | {head: _cell(r, c, digits) for c, head in cols.items()})
    return pd.DataFrame(rows).set_index(["audio pretraining", "training data"])


def _order_key(s: pd.Series) -> pd.Series:
    order = PRETRAININGS if s.name == "pretraining" else TRAININGS
    return s.map(order.index)


def table2(results: pd.DataFrame) -> pd.DataFrame:
    """Table 2: cosine silhouette of x_a and of E_a (fold-5 clips of T, labelled by class)."""
    return long_table(results, {"sil_x_a": "silhouette x_a", "sil_E_a": "silhouette E_a"})


def table3(results: pd.DataFrame) -> pd.DataFrame:
    """Table 3: topological similarity S = max_k S_k on label-wise means."""
    return long_table(results, TOPO)


def results_frame(results: pd.DataFrame) -> pd.DataFrame:
    """The numeric results table (6 combinations x metrics), in the paper's order."""
    cols = ["pretraining", "training", "accuracy", "random_guess", "sil_x_a", "sil_E_a", *TOPO, "n_pairs",
            "n_target_clip_pairs", "n_eval_clips", "n_skipped_clips"]
    df = results.sort_values(["pretraining", "training"], key=_order_key)
    return df[[c for c in cols if c in df]].reset_index(drop=True)


def seed_table(summary: pd.DataFrame, cols: dict[str, str], digits: int = 3) -> pd.DataFrame:
    """`uncertainty.seed_summary` output as one readable cell per metric: ``mean ± sd [min, max]``."""
    rows = []
    for _, r in summary.sort_values(["pretraining", "training"], key=_order_key).iterrows():
        row = {"audio pretraining": r["pretraining"], "training data": r["training"], "seeds": int(r["n_seeds"])}
        for c, head in cols.items():
            sd = "" if pd.isna(r[f"{c}_std"]) else f" ± {r[f'{c}_std']:.{digits}f}"
            row[head] = f"{r[f'{c}_mean']:.{digits}f}{sd} [{r[f'{c}_min']:.{digits}f}, {r[f'{c}_max']:.{digits}f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index(["audio pretraining", "training data"])


def correlation_table(correlations: dict) -> pd.DataFrame:
    names = {"acc_vs_sil_E_a": "accuracy vs silhouette E_a",
             "logacc_vs_topo_Ea_Et": "log accuracy vs S(E_a, E_t)"}
    rows = []
    for key, label in names.items():
        c = correlations.get(key)
        if not c:
            continue
        row = {"correlation": label, "Pearson r": fmt(c["r"]), "p (parametric)": fmt(c["p"]), "n": c["n"]}
        if "p_perm" in c:
            row["p (permutation)"] = fmt(c["p_perm"])
        if "ci" in c:
            row["95% bootstrap CI"] = f"[{c['ci'][0]:.3f}, {c['ci'][1]:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows).set_index("correlation") if rows else pd.DataFrame()


# --- figures -----------------------------------------------------------------------------------


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
    ax.set_xticks([]); ax.set_yticks([])
    ax.set_title(title or f"{run.name}: {space}", fontsize=9)


def plot_label_tsne(ax, run: RunArtifacts, space: str, targets: list[str], title: str | None = None) -> None:
    """T-SNE of the 50 label embeddings (x_t or E_t), names written next to the points."""
    xy, labels = run.tsne[space], [str(s) for s in run.emb["labels"]]
    is_t = np.array([lab in targets for lab in labels])
    ax.scatter(xy[~is_t, 0], xy[~is_t, 1], s=10, c="0.6", linewidths=0)
    ax.scatter(xy[is_t, 0], xy[is_t, 1], s=14, c="tab:red", linewidths=0)
    for (x, y), lab, t in zip(xy, labels, is_t):
        ax.annotate(lab.replace("_", " "), (x, y), fontsize=5, color="tab:red" if t else "0.35",
                    xytext=(2, 2), textcoords="offset points")
    ax.set_xticks([]); ax.set_yticks([])
    ax.set_title(title or f"{run.name}: {space}", fontsize=9)


def figure2(runs: dict, targets: list[str]):
    """Figure 2: T-SNE of E_a, one panel per combination, coloured by (target) class."""
    fig, axes = _panel_grid(len(runs), ncols=2)
    for ax, run in zip(axes, runs.values()):
        a = run.metrics["accuracy"]
        plot_clip_tsne(ax, run, "E_a", targets, f"pretraining {run.pretraining}, training {run.training}\n"
                                               f"accuracy {a:.2f}, silhouette {run.metrics['sil_E_a']:.2f}")
    _legend_below(fig, axes[0])
    fig.tight_layout()
    return fig


def figure3(runs: dict, targets: list[str]):
    """Figure 3: T-SNE of the label E_t per combination, annotated with label names (T in red)."""
    fig, axes = _panel_grid(len(runs), ncols=2, size=4.6)
    for ax, run in zip(axes, runs.values()):
        plot_label_tsne(ax, run, "E_t", targets, f"pretraining {run.pretraining}, training {run.training}: E_t\n"
                                                 f"S(E_a, E_t) = {run.metrics['topo_Ea_Et']:.2f}")
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
    fig.legend(handles, [lab.replace("_", " ") for lab in labels], loc="lower center", ncol=6, fontsize=6,
               markerscale=1.5, frameon=False, bbox_to_anchor=(0.5, -0.06))


def figure_sk_curves(runs: dict, k_max: int | None = None):
    """S_k against k for the three pairs of spaces, per combination, with the chance level of S_k."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (key, label) in zip(axes, TOPO.items()):
        for run in runs.values():
            curve = np.asarray(run.metrics[f"{key}_curve"])
            k = np.arange(1, len(curve) + 1)
            stop = k_max or len(curve)
            ax.plot(k[:stop], curve[:stop], marker=".", ms=3, lw=1, label=run.name)
        n = len(curve)
        ax.plot(k[:stop], metrics.chance_knn_overlap(n)[:stop], "k--", lw=1, label="chance")
        ax.set_title(f"S_k: {label}", fontsize=10); ax.set_xlabel("k")
    axes[0].set_ylabel("S_k"); axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_training_curves(runs: dict):
    """Train / validation CLIP loss per epoch (frozen epochs, then unfrozen) for each combination."""
    fig, axes = _panel_grid(len(runs), ncols=3, size=3.4)
    for ax, run in zip(axes, runs.values()):
        h = pd.DataFrame(run.history)
        x = np.arange(1, len(h) + 1)
        ax.plot(x, h["train_loss"], label="train"); ax.plot(x, h["val_loss"], label="validation")
        n_frozen = int((h["phase"] == "frozen").sum())
        if n_frozen < len(h):
            ax.axvline(n_frozen + 0.5, color="0.5", ls=":", lw=1)
        ax.set_title(run.name, fontsize=9); ax.set_xlabel("epoch")
    axes[0].set_ylabel("CLIP loss"); axes[0].legend(fontsize=7)
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
        ax.set_title(label, fontsize=10); ax.tick_params(axis="x", rotation=45, labelsize=7)
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


# --- interactive exploration (works in Jupyter and, from saved widget state, in static HTML) ----------


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
            row[f"silhouette {s}"] = metrics.silhouette(e[s][sel], y) if len(np.unique(y)) == 2 and len(y) > 2 \
                else float("nan")
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
    options = [(f"{p}/{t} - {SPACE_NAMES[s]}", i) for i, ((p, t), s) in
               enumerate((c, s) for c in combos for s in SPACES)]
    images = []
    for (p, t) in combos:
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
        df = pd.DataFrame({label: [runs[c].metrics[f"{key}_curve"][k - 1] for c in combos]
                           for key, label in TOPO.items()}, index=[runs[c].name for c in combos])
        df.loc["chance"] = chance[k - 1]
        tables.append(W.HTML(f"<b>S_k at k = {k}</b> (n = {n} labels)" + df.round(3).to_html()))
    k_slider = W.IntSlider(value=2, min=1, max=n, description="k")
    k_stack = W.Stack(tables, selected_index=2)
    W.jslink((k_slider, "value"), (k_stack, "selected_index"))
    k_box = W.VBox([k_slider, k_stack])

    # 3. two classes: do their audio clusters separate, and are their labels close?
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(targets) for b in targets[i + 1:]]
    pair_html = [W.HTML(f"<b>{a.replace('_', ' ')}</b> vs <b>{b.replace('_', ' ')}</b>"
                        + pair_stats(runs, a, b).round(3).to_html()) for a, b in pairs]
    pair_pick = W.Dropdown(options=[(f"{a} vs {b}", i) for i, (a, b) in enumerate(pairs)], value=0,
                           description="classes", layout=W.Layout(width="420px"))
    pair_stack = W.Stack(pair_html, selected_index=0)
    W.jslink((pair_pick, "index"), (pair_stack, "selected_index"))
    pair_box = W.VBox([pair_pick, pair_stack])

    tabs = W.Tab([tsne_box, k_box, pair_box])
    for i, title in enumerate(("T-SNE", "S_k by k", "two classes")):
        tabs.set_title(i, title)
    return tabs


# --- the recipe, paper vs this run --------------------------------------------------------------


def recipe_table(config: dict) -> pd.DataFrame:
    """The CLAP training recipe as the paper states it, next to the values this run used (from its config)."""
    c, p, a = config["clap"], config["pretrain"], config["audio"]
    unfrozen = ("until validation loss stops improving" if c["max_unfrozen_epochs"] >= 100 else
                f"at most {c['max_unfrozen_epochs']} epochs, early stop after {c['early_stop_patience']} "
                f"without improvement")
    rows = [
        ("audio backbone", "CNN14 (PANNs), width 1", f"CNN14, width {config['width']:g}"),
        ("text backbone", "bert-base-uncased, [CLS]", f"{config['text_model']}, [CLS]"),
        ("projectors", "MLP to 1024-d, L2-normalised", f"MLP to {config['d_embed']}-d, L2-normalised"),
        ("frozen backbones", "first 5 epochs, Adam 1e-4", f"first {c['frozen_epochs']} epochs, Adam {c['frozen_lr']:g}"),
        ("unfrozen backbones", "Adam 1e-5 until validation loss stops improving",
         f"Adam {c['unfrozen_lr']:g}, {unfrozen}"
         + ("" if c["unfrozen_pair_fraction"] >= 1 else f", {c['unfrozen_pair_fraction']:.3g} of the pairs per epoch")),
        ("gradient clipping", "norm 100", f"norm {c['grad_clip']:g}"),
        ("logit clamp", "C in [-100, 100]", f"C in [-{c['logit_clamp']:g}, {c['logit_clamp']:g}]"),
        ("LR schedule", "ReduceLROnPlateau, factor 0.1, patience 10",
         f"ReduceLROnPlateau, factor {c['plateau_factor']:g}, patience {c['plateau_patience']}"),
        ("batch size", "128", str(c["batch_size"])),
        ("audio input", "5 s at 44.1 kHz, zero-padded, zero mean / unit variance",
         f"{a['clip_seconds']:g} s at {a['sample_rate'] / 1000:g} kHz, zero-padded, zero mean / unit variance"),
        ("log-mel front end", "64 mels, window 1024, hop 320, 50-14000 Hz",
         f"{a['n_mels']} mels, window {a['n_fft']}, hop {a['hop']}, {a['fmin']:g}-{a['fmax']:g} Hz"),
        ("validation split", "random 20 % of the pairs", f"random {c['val_fraction']:.0%} of the pairs"
         + ("" if c["max_val_pairs"] is None else f" (at most {c['max_val_pairs']} scored per epoch)")),
        ("CNN14 dropout", "0.2 after each block, 0.5 around fc1 (PANNs)",
         f"{config.get('cnn_dropout', 0.2):g} after each block, {config.get('cnn_fc_dropout', 0.5):g} around fc1"),
        ("BatchNorm while frozen", "not stated (frozen = no gradient)",
         "statistics re-estimated on the training clips, then eval mode (x_a computed once)"),
        ("audio pretraining", "AudioSet (PANNs checkpoint / filtered AudioSet)",
         f"ESC-50 folds 1-4, {p['epochs']} epochs, Adam {p['lr']:g}, batch {p['batch_size']}"),
    ]
    return pd.DataFrame(rows, columns=["item", "paper", "this run"]).set_index("item")


def model_size_table(config: dict) -> pd.DataFrame:
    """Parameter counts of the run's model parts (built from the config, no weights loaded)."""
    from .experiment import DEFAULT_TEXT_MODEL
    from .models import Cnn14, Projection, TextEncoder, default_text_model

    audio = Cnn14(config["audio"]["n_mels"], config["width"], n_classes=50)
    name = default_text_model() if config["text_model"] == DEFAULT_TEXT_MODEL else config["text_model"]
    text = TextEncoder(name, config["text_max_tokens"], config["expected_vocab_size"])
    d = config["d_embed"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    audio_backbone = count(audio) - count(audio.fc_audioset)  # the pretraining head is not part of CLAP
    rows = [("audio backbone (CNN14)", audio_backbone, audio.embed_dim),
            ("text backbone", count(text), text.embed_dim),
            ("audio projector", count(Projection(audio.embed_dim, d)), d),
            ("text projector", count(Projection(text.embed_dim, d)), d)]
    return pd.DataFrame(rows, columns=["part", "parameters", "output dim"]).set_index("part")


def _stages(grid: GridResult) -> dict:
    return json.loads((grid.dir / "stages.json").read_text())


def figure_pretraining(grid: GridResult):
    """Validation accuracy per epoch of the supervised audio pretrainings of this run."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for kind, d in _stages(grid)["pretrain"].items():
        h = pd.DataFrame(json.loads((Path(d) / "history.json").read_text()))
        if h.empty:  # a loaded checkpoint (paper profile, dirty) has no training history here
            continue
        n_classes = json.loads((Path(d) / "manifest.json").read_text()).get("info", {}).get("n_classes")
        ax.plot(h["epoch"], h["val_acc"], marker=".", label=f"{kind} ({n_classes} classes)")
        if n_classes:
            ax.axhline(1 / n_classes, ls=":", lw=1, color=ax.lines[-1].get_color())
    ax.set_xlabel("epoch"); ax.set_ylabel("validation accuracy"); ax.legend(fontsize=8)
    ax.set_title("audio pretraining (dotted: chance)", fontsize=10)
    fig.tight_layout()
    return fig


def run_summary(run: RunArtifacts) -> pd.DataFrame:
    m = run.metrics
    rows = [("zero-shot accuracy (T)", fmt(m["accuracy"])), ("random guess", fmt(m["random_guess"])),
            ("silhouette x_a", fmt(m["sil_x_a"])), ("silhouette E_a", fmt(m["sil_E_a"]))]
    rows += [(f"S {label} (k* = {m[key + '_k']})", fmt(m[key])) for key, label in TOPO.items()]
    rows += [("training pairs", m["n_pairs"]), ("training pairs of target-class clips", m["n_target_clip_pairs"]),
             ("fold-5 clips of T", m["n_eval_clips"]), ("skipped (unreadable) clips", m.get("n_skipped_clips", 0)),
             ("epochs (frozen + unfrozen)", len(run.history))]
    return pd.DataFrame(rows, columns=["quantity", "value"]).set_index("quantity")


def figure_run_spaces(run: RunArtifacts, targets: list[str]):
    fig, axes = plt.subplots(2, 2, figsize=(10, 9))
    for ax, s in zip(axes.flat, SPACES):
        (plot_clip_tsne if s in ("x_a", "E_a") else plot_label_tsne)(ax, run, s, targets, SPACE_NAMES[s])
    _legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig


def per_class_table(run: RunArtifacts, targets: list[str]) -> pd.DataFrame:
    """Zero-shot accuracy and silhouette of each target class (fold-5 clips, E_a)."""
    e = run.emb
    t_idx = np.array([ESC50_CLASSES.index(c) for c in targets])
    sel = np.isin(e["clip_target"], t_idx)
    y = np.searchsorted(t_idx, e["clip_target"][sel])
    acc = metrics.per_class_accuracy(e["E_a"][sel], e["E_t"][t_idx], y)
    sil = metrics.silhouette_per_class(e["E_a"][sel], y)
    df = pd.DataFrame({"class": targets, "accuracy": acc,
                       "silhouette E_a": [sil.get(i, np.nan) for i in range(len(targets))]})
    return df.set_index("class").round(3).sort_values("accuracy", ascending=False)


def _seconds(manifest: dict) -> str:
    return f"{manifest['seconds']:.1f}" if "seconds" in manifest else "-"


def run_facts(grid: GridResult) -> pd.DataFrame:
    cfg = json.loads((grid.dir / "config.json").read_text())
    r = grid.results
    rows = [("grid key (hash of the full config)", grid.dir.name),
            ("profile", cfg["config"]["profile"]), ("seed", cfg["config"]["seed"]),
            ("target classes T", ", ".join(cfg["target_classes"])),
            ("fold-5 clips of T", int(r["n_eval_clips"].iloc[0])),
            ("skipped (unreadable) audio files", int(r.get("n_skipped_clips", pd.Series([0])).max()))]
    for kind, d in _stages(grid)["pretrain"].items():
        man = json.loads((Path(d) / "manifest.json").read_text())
        rows.append((f"pretraining {kind}: compute seconds", _seconds(man)))
    for name, d in _stages(grid)["clap"].items():
        man = json.loads((Path(d) / "manifest.json").read_text())
        rows.append((f"CLAP {name}: compute seconds", _seconds(man)))
    return pd.DataFrame(rows, columns=["fact", "value"]).set_index("fact")


# --- leakage filtering on caption datasets ------------------------------------------------------------


def caption_leakage(pairs: pd.DataFrame, class_names, top: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The leakage filter on (audio, caption) pairs with columns `dataset`, `split`, `audio_id`, `caption`.

    Returns (summary per dataset and split: captions / audio files removed, files losing all captions;
    the `top` class words that remove most captions per dataset).
    """
    from .filtering import filter_grouped

    rows, words = [], {}
    for (ds, split), df in pairs.groupby(["dataset", "split"], sort=False):
        g = filter_grouped(df["caption"].tolist(), df["audio_id"].tolist(), class_names)
        r = g.result
        rows.append({"dataset": ds, "split": split, "captions": r.n_total, "captions removed": r.n_removed,
                     "% captions removed": 100 * r.n_removed / r.n_total, "audio files": g.n_groups,
                     "% files with a removed caption": 100 * g.n_groups_any_removed / g.n_groups,
                     "% files with all captions removed": 100 * g.n_groups_all_removed / g.n_groups})
        for w, n in r.removed_per_word.items():
            words.setdefault(ds, {}).setdefault(w, 0)
            words[ds][w] += n
    summary = pd.DataFrame(rows).set_index(["dataset", "split"]).round(1)
    tops = {ds: pd.Series(c).sort_values(ascending=False).head(top) for ds, c in words.items()}
    top_df = pd.DataFrame({ds: [f"{w} ({n})" for w, n in s.items()] for ds, s in tops.items()},
                          index=pd.RangeIndex(1, top + 1, name="rank"))
    return summary, top_df


def lab_caption_counts(runs: dict) -> pd.DataFrame:
    """Training pairs per training variant of this run, and how many of them are clips of target classes."""
    rows = {}
    for run in runs.values():
        m = run.metrics
        rows[run.training] = {"training pairs": m["n_pairs"], "pairs of target-class clips": m["n_target_clip_pairs"],
                              "pairs before filtering": m["n_pairs_dirty"]}
    return pd.DataFrame(rows).T.rename_axis("training data")


def lab_removed_per_word(runs: dict) -> pd.DataFrame:
    """Per class word of T: how many distinct lab captions the clean filter removed."""
    for run in runs.values():
        if "removed_per_word" in run.metrics:
            s = pd.Series(run.metrics["removed_per_word"], name="captions removed").sort_values(ascending=False)
            return s[s > 0].to_frame().rename_axis("class word")
    return pd.DataFrame()


def label_neighbours(X: np.ndarray, labels: list[str], top: int = 15) -> pd.DataFrame:
    """The `top` most similar label pairs (cosine) in one embedding space."""
    U = metrics.l2_normalize(X)
    cos = U @ U.T
    i, j = np.triu_indices(len(labels), k=1)
    order = np.argsort(-cos[i, j], kind="stable")[:top]
    return pd.DataFrame({"label a": [labels[a] for a in i[order]], "label b": [labels[b] for b in j[order]],
                         "cosine": cos[i[order], j[order]].round(3)}, index=pd.RangeIndex(1, len(order) + 1))


# --- the paper's numbers --------------------------------------------------------------------------


def paper_comparison(results: pd.DataFrame, tables: tuple[int, ...], path: str | Path | None = None,
                     digits: int = 3) -> tuple[dict[int, pd.DataFrame], str]:
    """({table: frame}, note): this run next to the paper's Tables `tables` with the difference, or ({}, why
    not) when no CSV of the paper's tables is given (see `clap_lib.paper_tables`). A malformed CSV raises."""
    from . import paper_tables

    try:
        src = paper_tables.locate(path)
    except paper_tables.PaperTablesMissing as e:
        return {}, f"The paper's numbers are not shown: {e}."
    paper = paper_tables.load(src)
    out = {}
    for t in tables:
        side = paper_tables.side_by_side(results, paper, t).round(digits)
        side.index.names = ["audio pretraining", "training data"]
        out[t] = side
    return out, f"The paper's values from `{paper_tables.shown_path(src)}`; difference = this run - paper."


def paper_correlation_table(path: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """({name: frame}, note): the paper's two correlations re-derived from its own tables, or ({}, why not)."""
    from . import paper_tables

    try:
        src = paper_tables.locate(path)
    except paper_tables.PaperTablesMissing as e:
        return {}, f"The paper's correlations are not re-derived: {e}."
    return ({"the paper's correlations, from its tables": paper_tables.paper_correlations(paper_tables.load(src))
             .round(4)},
            "Its text reports r = 0.97 (accuracy vs silhouette of E_a) and r = 0.85, p = 0.032 (log accuracy vs "
            "S(E_a, E_t)); a mismatch points at a transcription error.")


def show_paper(pair) -> None:
    """Display a ({title: table}, note) pair from `paper_comparison` / `paper_correlation_table`."""
    from IPython.display import Markdown, display

    tables, note = pair
    for title, table in tables.items():
        display(Markdown(f"**Table {title}**" if isinstance(title, int) else f"**{title.capitalize()}**"))
        display(table)
    display(Markdown(f"*{note}*"))
