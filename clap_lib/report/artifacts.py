"""A finished grid's artifacts, loaded for the book: one combination's metrics, history, embeddings and T-SNE
coordinates (`metrics.json`, `history.json`, `embeddings.npz`, `tsne.npz` of its clap stage)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clap_lib.config.levels import PRETRAININGS, TRAININGS
from clap_lib.pipeline.results import GridResult, grid_stages

SPACES = ("x_a", "E_a", "x_t", "E_t")


SPACE_NAMES = {
    "x_a": "audio backbone x_a",
    "E_a": "audio projection E_a",
    "x_t": "text backbone x_t",
    "E_t": "text projection E_t",
}


TOPO = {"topo_xa_Ea": "S(x_a, E_a)", "topo_xt_Et": "S(x_t, E_t)", "topo_Ea_Et": "S(E_a, E_t)"}
#: human headers of the results columns (no raw column name reaches a rendered table)
LABELS = {
    "accuracy": "zero-shot accuracy",
    "random_guess": "random guess",
    "sil_x_a": "silhouette of x_a",
    "sil_E_a": "silhouette of E_a",
    **TOPO,
    "n_pairs": "training pairs",
    "n_target_clip_pairs": "pairs of target-class clips",
    "n_eval_clips": "evaluation clips",
    "n_skipped_clips": "unreadable clips skipped",
    "pretraining": "audio pretraining",
    "training": "training data",
}


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


def _stages(grid: GridResult) -> dict:
    """{"backbone": {level: dir}, "clap": {"p/t": dir}} (grids of the paper profile call the first "pretrain")."""
    st = grid_stages(grid)
    if "backbone" not in st:
        st["backbone"] = st.get("pretrain", {})
    return st


def _seconds(manifest: dict) -> str:
    return f"{manifest['seconds']:.1f}" if "seconds" in manifest else "-"
