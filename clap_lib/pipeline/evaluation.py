"""What every profile's stages share on ESC-50: reading the log-mel features, zero-shot evaluation of a trained
CLAP (x_a, E_a, x_t, E_t and the paper's metrics) and the grid summary (results table, intervals, correlations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.analysis import metrics
from clap_lib.analysis.uncertainty import correlation_report, metric_intervals
from clap_lib.config.experiment import ExperimentConfig, config_payload
from clap_lib.data.captions import prompt_for
from clap_lib.data.esc50 import ESC50_CLASSES, ClassSplit
from clap_lib.io import atomic_json
from clap_lib.pipeline.cache import Stage
from clap_lib.pipeline.results import relative
from clap_lib.training.trainer import backbone_features

STATS_VERSION = "4"  # bump when the statistics computed in the grid summary change (training stays cached)


def load_features(stage: Stage) -> tuple[np.ndarray, np.ndarray]:
    return np.load(stage.dir / "logmels.npy", mmap_mode="r"), np.load(stage.dir / "ok.npy")


@torch.no_grad()
def embed_eval(
    model,
    logmels: np.ndarray,
    ok: np.ndarray,
    meta: pd.DataFrame,
    folds: Sequence[int],
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
) -> dict[str, np.ndarray]:
    """x_a, E_a of every usable clip of `folds`; x_t, E_t of the prompt of each of the 50 labels (the backbones
    on `device`, in `precision`; the projections in fp32)."""

    clips = np.flatnonzero(meta["fold"].isin(list(folds)).to_numpy() & ok)
    labels = list(ESC50_CLASSES)
    x_a, x_t = backbone_features(
        model, logmels, [prompt_for(c) for c in labels], clips, device=device, precision=precision
    )
    return {
        "x_a": x_a.cpu().numpy(),
        "E_a": model.embed_audio(x_a).cpu().numpy(),
        "x_t": x_t.cpu().numpy(),
        "E_t": model.embed_text(x_t).cpu().numpy(),
        "clip_target": meta["target"].to_numpy()[clips],
        "clip_file": meta["filename"].to_numpy()[clips].astype(str),
        "clip_fold": meta["fold"].to_numpy()[clips],
        "labels": np.array(labels),
    }


def tsne_2d(X: np.ndarray, seed: int) -> np.ndarray:
    """2-D T-SNE with cosine distance (the paper's figures); perplexity capped for small label sets."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(X) - 1) // 3)))
    return (
        TSNE(2, metric="cosine", init="pca", perplexity=perplexity, random_state=seed)
        .fit_transform(X)
        .astype(np.float32)
    )


def eval_selection(emb: dict[str, np.ndarray], split: ClassSplit) -> dict[str, np.ndarray]:
    """The evaluation data of the paper's metrics: clips of T (x_a, E_a, y = row of their label) and the label
    embeddings of T (x_t, E_t)."""
    t_idx = np.array([ESC50_CLASSES.index(c) for c in split.target])
    sel = np.isin(emb["clip_target"], t_idx)
    return {
        "x_a": emb["x_a"][sel],
        "E_a": emb["E_a"][sel],
        "y": np.searchsorted(t_idx, emb["clip_target"][sel]),
        "x_t": emb["x_t"][t_idx],
        "E_t": emb["E_t"][t_idx],
    }


def run_metrics(emb: dict[str, np.ndarray], split: ClassSplit, cfg: ExperimentConfig) -> dict:
    """Zero-shot accuracy on T (T's labels as candidates), silhouettes, and the topological similarities with
    their chance level (permutation null of the max), k*, edge flag and edge-free excess (metrics.table_metrics)."""
    return metrics.table_metrics(
        eval_selection(emb, split), cfg.topo_k_min, cfg.topo_k_max, n_perm=cfg.topo_n_perm, seed=cfg.seed
    )


def summarise(
    out: Path,
    root: Path,
    runs: dict[tuple[str, str], Stage],
    backbones: dict[str, Stage],
    cfg: ExperimentConfig,
    pair_tables: dict | None = None,
) -> dict:
    """results.csv / .parquet (one row per combination, with intervals), correlations.json, config.json and
    stages.json (paths relative to the artifacts root), and the per-level pair counts."""

    rows = []
    for (p, t), stage in runs.items():
        m = json.loads((stage.dir / "metrics.json").read_text())
        row = {k: v for k, v in m.items() if not k.endswith("_curve") and not isinstance(v, (dict, list))}
        with np.load(stage.dir / "embeddings.npz") as e:
            sel = eval_selection({k: e[k] for k in e.files}, cfg.split)
        for name, iv in metric_intervals(
            sel, cfg.n_boot, cfg.seed, cfg.ci_level, cfg.topo_k_min, cfg.topo_k_max
        ).items():
            row.update({f"{name}_lo": iv.lo, f"{name}_hi": iv.hi} | ({} if name in row else {name: iv.value}))
        rows.append(row | {"run_dir": relative(root, stage.dir)})
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False)
    df.drop(columns=["run_dir"]).to_parquet(out / "results.parquet", index=False)
    atomic_json(correlations(df, cfg), out / "correlations.json")
    atomic_json(
        {
            "config": config_payload(cfg),
            "target_classes": list(cfg.split.target),
            "background_classes": list(cfg.split.background),
        },
        out / "config.json",
    )
    atomic_json(
        {
            "backbone": {k: relative(root, s.dir) for k, s in backbones.items()},
            "clap": {f"{p}/{t}": relative(root, s.dir) for (p, t), s in runs.items()},
        },
        out / "stages.json",
    )
    if pair_tables:
        atomic_json(pair_tables, out / "pairs.json")
    return {"n_runs": len(rows)}


def correlations(df: pd.DataFrame, cfg: ExperimentConfig) -> dict:
    """The paper's two: Pearson(accuracy, silhouette of E_a) and Pearson(log accuracy, S(E_a, E_t)), each with
    its parametric p, a permutation p and a bootstrap interval (over combinations)."""

    if len(df) < 3:
        return {}
    out = {}
    for name, x, y in (
        ("acc_vs_sil_E_a", df["accuracy"], df["sil_E_a"]),
        ("logacc_vs_topo_Ea_Et", np.log(np.clip(df["accuracy"], 1e-6, None)), df["topo_Ea_Et"]),
    ):
        c = correlation_report(
            np.asarray(x, float), np.asarray(y, float), cfg.n_perm, cfg.n_boot, cfg.seed, cfg.ci_level
        )
        out[name] = {"r": c["r"], "p": c["p"], "p_perm": c["p_perm"], "ci": [c["ci_lo"], c["ci_hi"]], "n": c["n"]}
    return out
