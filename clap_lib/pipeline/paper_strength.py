"""The shortcut at paper strength (issue 22): a published AudioSet network as strong as the paper's CNN14 (EfficientAT
mn04_as, AudioSet mAP 0.432 against CNN14's 0.431) used directly, through its own AudioSet head, as a supervised
classifier of ESC-50, with no CLAP training at all; and the separability of its x_a.

One cached stage, `paper_strength`, run by `run_grid` after the grid when `cfg.run.paper_strength` names the
network (default run only). Its key is the ESC-50 data fingerprint, the weights file's hash, the clip reading and
front-end parameters, the class split fields (T) and the interval level, and :data:`VERSION`: no other stage's key
moves. Clips are read and turned into log-mels one batch at a time (all 2000 log-mels would be 488 MiB).

Outputs: x_a.npy (clips x 512, float32: for the backbone ladder), clip_probs.npy, shortcut.json (all 50 classes on
every clip and T on fold 5, each over the mapped classes and with unmapped classes' clips counted wrong, Wilson
intervals), separability.csv and provenance.json. A pointer `<artifacts>/paper_strength_runs/<grid key>.json` tells
the book which stage belongs to a grid, or why it was skipped. Our ESC-50 copy is 16 kHz: the network's mel bands
above 8 kHz hold only resampler leakage, a caveat of every number here.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from clap_lib.analysis import backbone_analysis
from clap_lib.config.experiment import AudioConfig, ExperimentConfig
from clap_lib.data.audio import load_clips
from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD
from clap_lib.data.ontology import esc50_audioset_names
from clap_lib.io import atomic_json, atomic_npy, file_sha256
from clap_lib.models import backbones
from clap_lib.models.frontend_mn04 import Mn04FrontEnd, mn04_logmel
from clap_lib.pipeline.cache import Stage
from clap_lib.pipeline.keys import SPLIT_FIELDS, _pick
from clap_lib.pipeline.stages import run_on_world
from clap_lib.training.distributed import World

#: bump when what the stage computes changes
VERSION = 2  # 2: the silhouette's interval is a bootstrap of the whole-set value
#: how the clips are read: our ESC-50 copy's rate, as recorded (EfficientAT normalises nothing)
READ_AUDIO = AudioConfig(sample_rate=16000, waveform_norm="none")
POINTERS = "paper_strength_runs"
#: published AudioSet mAP of the two networks (figures from their releases, not measured here): EfficientAT's
#: mn04_as_mAP_432.pt (Schmid, Koutini, Widmer, ICASSP 2023) and PANNs' Cnn14_mAP=0.431.pth (Kong et al. 2020)
PUBLISHED_MAP = {"mn04_as": 0.432, "cnn14": 0.431}
ALL_FOLDS = (1, 2, 3, 4, 5)


def paper_strength_payload(cfg: ExperimentConfig, fingerprint: str, weights_sha: str) -> dict:
    return {
        "data": fingerprint,
        "weights": cfg.run.paper_strength,
        "weights_file": weights_sha,
        "audio": asdict(READ_AUDIO),
        "front_end": asdict(Mn04FrontEnd()),
        "fields": _pick(cfg, (*SPLIT_FIELDS, "ci_level")),
        "version": VERSION,
    }


def network_outputs(model: torch.nn.Module, meta: pd.DataFrame, batch: int = 50) -> tuple[np.ndarray, ...]:
    """(x_a, clip probabilities, ok) of every clip of `meta`, read and turned into log-mels `batch` clips at a time."""
    x_a, probs, ok = [], [], []
    with torch.inference_mode():
        for i in range(0, len(meta), batch):
            clips = load_clips(meta.iloc[i : i + batch], READ_AUDIO, progress=False)
            a, p = model.embed_and_clip_probs(torch.from_numpy(mn04_logmel(clips.waves, READ_AUDIO.sample_rate)))
            x_a.append(a.numpy().astype(np.float32))
            probs.append(p.numpy().astype(np.float32))
            ok.append(clips.ok)
    return np.concatenate(x_a), np.concatenate(probs), np.concatenate(ok)


def shortcut_both(probs, labels, meta, ok, classes, folds, level: float) -> dict:
    """backbone_analysis.shortcut_result over the mapped classes, and the paper's denominator beside it: every clip
    of `classes` on `folds`, those of classes without an AudioSet counterpart counted wrong (Wilson interval)."""
    r = backbone_analysis.shortcut_result(probs, labels, meta, ok, classes, esc50_audioset_names(), folds, level)
    n_all = int((ok & meta["fold"].isin(folds).to_numpy() & meta["category"].isin(classes).to_numpy()).sum())
    k = int(round(r["accuracy"] * r["n_clips"]))
    ci = stats.binomtest(k, n_all).proportion_ci(confidence_level=level, method="wilson")
    every = {"accuracy": k / n_all, "lo": float(ci.low), "hi": float(ci.high), "n_clips": n_all, "correct": k}
    return r | {"correct": k, "every_clip": every}


def paper_strength_stage(
    root: Path,
    cfg: ExperimentConfig,
    meta: pd.DataFrame,
    fingerprint: str,
    log,
    world: World = World(),
    labels: tuple[str, ...] | None = None,
) -> Stage:
    """Compute (or load) the stage for the network `cfg.run.paper_strength`. `labels`: its head's output names
    (default: the registered mn04_as labels). A missing weights file raises FileNotFoundError before any work."""
    spec = backbones.spec("mn04")
    path = spec.weights_file(cfg.run.paper_strength)
    labels = labels or spec.head_labels("mn04_as")
    payload = paper_strength_payload(cfg, fingerprint, file_sha256(path)[:16])

    def write(out: Path, work: Path, _) -> dict:
        model = spec.load_pretrained(cfg, str(path))
        x_a, probs, ok = network_outputs(model, meta)
        atomic_npy(out / "x_a.npy", x_a)
        atomic_npy(out / "clip_probs.npy", probs)
        atomic_npy(out / "ok.npy", ok)
        name = Path(cfg.run.paper_strength).name  # published with the book: no path of this machine
        info = spec.weights_info(cfg.run.paper_strength)
        info |= {"file": Path(info.get("file", name)).name, "weights": name, "sample_rate": READ_AUDIO.sample_rate}
        atomic_json(info, out / "provenance.json")
        shortcut = {
            "all_50": shortcut_both(probs, labels, meta, ok, ESC50_CLASSES, ALL_FOLDS, cfg.ci_level),
            "T_fold5": shortcut_both(probs, labels, meta, ok, cfg.split.target, (EVAL_FOLD,), cfg.ci_level),
        }
        atomic_json(shortcut, out / "shortcut.json")
        sep = backbone_analysis.separability_table({"mn04_as": x_a}, meta, ok, {"mn04_as": info}, cfg.ci_level)
        sep.to_csv(out / "separability.csv", index=False)
        log(
            "paper strength: shortcut "
            + ", ".join(
                f"{k} {v['every_clip']['accuracy']:.3f} (mapped {v['accuracy']:.3f})" for k, v in shortcut.items()
            )
            + f"; x_a probe {sep['probe'].iloc[0]:.3f}"
        )
        return {"n_clips": len(meta), "n_ok": int(ok.sum())}

    return run_on_world(world, root, "paper_strength", payload, log, write)


def paper_strength_step(
    root: Path, cfg: ExperimentConfig, meta: pd.DataFrame, fingerprint: str, grid_key: str, log, world: World = World()
) -> Stage | None:
    """run_grid's step: the stage when the config asks for it and the weights exist (else one log line saying why
    it was skipped), and the pointer for the grid `grid_key` (rank 0)."""
    name = cfg.run.paper_strength
    if name is None:
        return None
    try:
        stage = paper_strength_stage(root, cfg, meta, fingerprint, log, world)
        pointer = {"stage": stage.rel, "weights": name}
    except FileNotFoundError as e:
        why = f"the weights of {Path(name).name} are not here ({_no_paths(str(e))})"
        stage, pointer = None, {"skipped": why, "weights": Path(name).name}
        log(f"paper strength: skipped, {pointer['skipped']}")
    if world.is_main:
        atomic_json(pointer, Path(root) / POINTERS / f"{grid_key}.json")
    return stage


def _no_paths(text: str) -> str:
    """`text` with every absolute path cut to its last part (the reason is published with the book)."""
    return re.sub(r"(?<![\w<>.])/[^\s,;()]+", lambda m: Path(m.group()).name, text)


def paper_strength_for(grid_dir: str | Path) -> dict | None:
    """What the stage of the grid in `grid_dir` (`<artifacts>/grid/<key>`) holds: {"shortcut", "separability",
    "provenance"}, or {"skipped": why}; None when its run had no such stage (an older run, or another profile)."""
    grid_dir = Path(grid_dir)
    root = grid_dir.parent.parent
    p = root / POINTERS / f"{grid_dir.name}.json"
    if not p.is_file():
        return None
    pointer = json.loads(p.read_text())
    if "stage" not in pointer:
        return pointer
    d = root / pointer["stage"]
    if not (d / "manifest.json").is_file():
        return {"skipped": f"its stage folder {d} is missing", "weights": pointer.get("weights")}
    return {
        "shortcut": json.loads((d / "shortcut.json").read_text()),
        "separability": pd.read_csv(d / "separability.csv").iloc[0].to_dict(),
        "provenance": json.loads((d / "provenance.json").read_text()),
    }
