"""One run of the controlled experiment, start to finish, in a worker process: train CLAP on cached backbone outputs
(clap_lib.training.heads) and score it on the fold-5 clips of its split's T.

A job is plain data (paths and index arrays), so that it can be sent to a worker process; the result is the run's
record (one row of runs.csv) and its per-clip arrays (rows of clips.csv). Accuracy and silhouettes are those of
the paper's Tables 1-2 (clap_lib.analysis.metrics.table_metrics), S its Table 3 (E_a label means against E_t),
and S with self excluded beside it (the variant consistent with the paper's printed values).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import silhouette_samples

from clap_lib.analysis import metrics
from clap_lib.config.controlled import ControlledConfig
from clap_lib.config.experiment import ExperimentConfig
from clap_lib.models import backbones
from clap_lib.training.heads import CachedClap, GruTop, Phase, frozen_params, train_phase

SALT_FROZEN, SALT_TOP = 31, 37
#: the grid's names of Table 3's entries -> the records' (S is the paper's S(E_a, E_t))
TOPO_NAMES = {"topo_Ea_Et": "S", "topo_xa_Ea": "S_xa_Ea", "topo_xt_Et": "S_xt_Et"}


@dataclass(frozen=True)
class Job:
    run_id: str
    seed: int
    cfg: ExperimentConfig  # the backbone's settings (to rebuild its top) and the metrics' (topo_k_min, ...)
    x_a: str  # .npy: (clips, d_a) x_a of every ESC-50 clip (the backbone stage's)
    x_t: str  # .npy: (captions, d_t) x_t of every caption (the text stage's)
    train: np.ndarray  # (pairs, 2): clip row, caption row
    val: np.ndarray
    eval_clips: np.ndarray  # fold-5 clips of T (meta rows)
    eval_y: np.ndarray  # their class: row in `prompts`
    prompts: np.ndarray  # caption rows of T's label prompts, in T order
    trunk: str | None = None  # .npy: (clips, frames, 128) trunk outputs, when the top is fine-tuned
    backbone: str | None = None  # backbone.pt of the stage whose top is fine-tuned
    keep_embeddings: bool = False


def _predict(model: CachedClap, audio: torch.Tensor, E_t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(x_a, E_a) of the evaluation clips, eval mode."""
    with torch.no_grad():
        x_a = model.x_a(audio)
        return x_a.numpy(), model.E_a(audio).numpy()


def _scores(
    x_a: np.ndarray, E_a: np.ndarray, E_t: np.ndarray, x_t: np.ndarray, y: np.ndarray, cfg: ExperimentConfig, seed: int
) -> tuple[dict, dict]:
    sel = {"x_a": x_a, "E_a": E_a, "y": y, "x_t": x_t, "E_t": E_t}
    m = metrics.table_metrics(sel, cfg.topo_k_min, cfg.topo_k_max, cfg.topo_n_perm, seed)
    record = {
        "accuracy": m["accuracy"],
        "chance": m["random_guess"],
        "sil_x_a": m["sil_x_a"],
        "sil_E_a": m["sil_E_a"],
        "n_eval_clips": m["n_eval_clips"],
    }
    # Table 3's three S (S = the grid's topo_Ea_Et), each with its chance level, its edge-free excess over chance and
    # the variant with self excluded (the one consistent with the paper's printed values)
    for key, (P, Q) in metrics.topo_clouds(sel).items():
        name = TOPO_NAMES[key]
        k_max = metrics.cap_k_max(cfg.topo_k_max, len(P), cfg.topo_k_min)
        noself = metrics.topo_summary(P, Q, cfg.topo_k_min, k_max, cfg.topo_n_perm, seed, include_self=False)
        record |= {
            name: m[key],
            f"{name}_chance": m[f"{key}_chance"],
            f"{name}_excess": m[f"{key}_excess"],
            f"{name}_noself": noself.S,
            f"{name}_noself_chance": noself.chance,
        }
    pred = metrics.zero_shot_predict(E_a, E_t)
    clips = {
        "predicted": pred,
        "correct": (pred == y).astype(np.int8),
        "sil_x_a": silhouette_samples(x_a, y, metric="cosine"),
        "sil_E_a": silhouette_samples(E_a, y, metric="cosine"),
    }
    return record, clips


def run_job(job: Job, cc: ControlledConfig) -> dict:
    """Train and score one run (one thread). Returns {"record", "clips", "embeddings", "history"}."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    x_a_all = torch.from_numpy(np.load(job.x_a).astype(np.float32))
    x_t_all = torch.from_numpy(np.load(job.x_t).astype(np.float32))
    torch.manual_seed(job.seed)
    model = CachedClap(x_a_all.shape[1], x_t_all.shape[1], cc.d_embed)
    frozen = Phase(cc.lr, cc.patience, cc.max_quarters)
    hist = {
        "frozen": train_phase(
            model, frozen_params(model), x_a_all, x_t_all, job.train, job.val, frozen, job.seed, SALT_FROZEN
        )
    }
    ev = torch.from_numpy(job.eval_clips)
    prompts_t = x_t_all[torch.from_numpy(job.prompts)]
    with torch.no_grad():
        E_t = model.E_t(prompts_t).numpy()
    x_before, E_a = _predict(model, x_a_all[ev], torch.from_numpy(E_t))
    correct_frozen = (metrics.zero_shot_predict(E_a, E_t) == job.eval_y).astype(np.int8)
    nan = float("nan")
    gru = {"gru": False, "gru_best": nan, "gru_stop": nan, "gru_val_start": nan, "gru_val_loss": nan, "x_a_shift": nan}
    x_after = x_before
    if job.trunk is not None:
        spec = backbones.spec(job.cfg.backbone)
        net = spec.from_state(job.cfg, torch.load(job.backbone, map_location="cpu", weights_only=True))
        model.top = GruTop(net.gru)
        trunk = torch.from_numpy(np.load(job.trunk))
        top = Phase(cc.gru_lr, cc.gru_patience, cc.gru_max_quarters, crop=cc.gru_crop, from_start=True)
        h = train_phase(model, list(model.parameters()), trunk, x_t_all, job.train, job.val, top, job.seed, SALT_TOP)
        hist["top"] = h
        with torch.no_grad():
            E_t = model.E_t(prompts_t).numpy()
        x_after, E_a = _predict(model, trunk[ev], torch.from_numpy(E_t))
        cos = np.sum(x_after * x_before, 1) / (np.linalg.norm(x_after, axis=1) * np.linalg.norm(x_before, axis=1))
        gru = {
            "gru": True,
            "gru_best": h["best"],
            "gru_stop": h["stop"],
            "gru_val_start": h["val_start"],
            "gru_val_loss": h["val_loss"],
            "x_a_shift": float(np.median(cos)),
        }
    x_t_prompts = prompts_t.numpy()
    record, clips = _scores(x_after, E_a, E_t, x_t_prompts, job.eval_y, job.cfg, job.seed)
    record |= {
        "sil_x_a_before": metrics.silhouette(x_before, job.eval_y),
        **gru,
        "frozen_best": hist["frozen"]["best"],
        "frozen_stop": hist["frozen"]["stop"],
        "frozen_val_loss": hist["frozen"]["val_loss"],
        "n_steps": hist["frozen"]["steps"] + hist.get("top", {}).get("steps", 0),
        "accuracy_frozen": float(correct_frozen.mean()),
    }
    clips |= {"correct_frozen": correct_frozen, "clip": job.eval_clips}
    emb = {"x_a": x_after, "E_a": E_a, "E_t": E_t} if job.keep_embeddings else None
    record |= {"seconds": time.perf_counter() - t0, "run": job.run_id}
    assert all(math.isfinite(v) for k, v in record.items() if k in ("accuracy", "sil_E_a", "S"))
    return {"record": record, "clips": clips, "embeddings": emb, "history": hist}
