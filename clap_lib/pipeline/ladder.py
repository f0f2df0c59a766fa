"""The ladder of backbones (issue 21) in the default run: x_a of every network whose label exposure is known, for the
controlled experiment to train CLAP on (levels unseen and dirty) and for the book to set accuracy against
separability and exposure.

The networks (:func:`ladder_networks`):

* every published CRNN (GPV-F, GPV-B, VAD-C and the seven Datadriven-GPVAD networks), through the grid's backbone
  stage (one BatchNorm policy: re-estimated on folds 1-4), x_a of every clip;
* the random CRNN at three init seeds;
* the pretraining dose: the bi-GRU of a start (the random CRNN of seed 0, or GPV-B) trained here, on cached outputs
  of its frozen convolutional trunk, as a classifier of the background classes B plus a share g of each T class's
  training clips (clap_lib.data.pretrain_dose: nested, g = 0 holds no T clip), until the validation accuracy stops
  improving (clap_lib.training.heads.train_top_classifier). Only the top trains: a whole-network training per dose
  does not fit the main job (about 5 min each here);
* EfficientAT mn04_as (x_a of the paper-strength stage) and its random init.

Each network's x_a is its own cached stage; `ladder_step` returns {name: (stage, network)}.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.analysis.ladder import Exposure, exposure_of
from clap_lib.config.experiment import KNOWN_WEIGHTS, ExperimentConfig
from clap_lib.config.profiles import LADDER_DOSES
from clap_lib.data.esc50 import train_eval_masks
from clap_lib.data.pretrain_dose import dose_classes, dose_clips
from clap_lib.io import atomic_json, atomic_npy
from clap_lib.models import backbones
from clap_lib.pipeline.cache import Stage, run_stage
from clap_lib.pipeline.keys import level_source, reference_name
from clap_lib.pipeline.stages import backbone_stage
from clap_lib.training.heads import GruTop, train_top_classifier

VERSION = 2  # 2: the dose's top trained on 16-frame windows, at most 8 epochs
TABLE_VERSION = 3  # 2: the participation ratio of x_a; 3: the silhouette's bootstrap interval
RANDOM_SEEDS = (0, 1, 2)
DOSE_STARTS = ("random", "gpv_b")


@dataclass(frozen=True)
class Network:
    name: str
    architecture: str  # crnn / mn04
    source: str  # weight source (config syntax)
    exposure: Exposure
    start: str | None = None  # the pretraining dose's start
    g: float | None = None


def ladder_networks() -> list[Network]:
    """Every network of the ladder, in a fixed order."""
    published = {n: backbones.spec("crnn").weights_info(n)["exposure"] for n in KNOWN_WEIGHTS["crnn"]}
    nets = [Network(n, "crnn", f"file:{n}", exposure_of(f"file:{n}", published)) for n in KNOWN_WEIGHTS["crnn"]]
    nets += [Network(f"random{s}", "crnn", f"random seed {s}", Exposure("none")) for s in RANDOM_SEEDS]
    for start in DOSE_STARTS:
        prefix = "" if start == "random" else f"file:{start}+"
        nets += [
            Network(
                f"{start}+B+T{g:g}",
                "crnn",
                f"{prefix}train:background+T:{g:g} (top only)",
                Exposure("esc50", g),
                start,
                g,
            )
            for g in LADDER_DOSES
        ]
    nets += [
        Network("mn04_as", "mn04", "file:mn04_as", Exposure("audioset_527")),
        Network("mn04_random", "mn04", "random seed 0", Exposure("none")),
    ]
    return nets


def _published_stage(root: Path, cfg: ExperimentConfig, inp, feats: Stage, ok, source: str, seed: int, log) -> Stage:
    """The grid's backbone stage of one more network (an audit reference of its own, so no other key moves)."""
    c = replace(cfg, seed=seed, reference_weights=(source,))
    return backbone_stage(root, c, feats, replace(inp, cfg=c).backbone(reference_name(source), feats, ok), log)


def _dose_stage(root: Path, cfg: ExperimentConfig, meta, ok, net: Network, trunk: Stage, start_bb: Stage, log) -> Stage:
    """x_a of a start's bi-GRU trained here on B + g of T (cached outputs of its frozen trunk)."""

    def write(out: Path, work: Path) -> dict:
        train_mask, _ = train_eval_masks(meta)
        idx, tr, va = dose_clips(meta, train_mask & ok, cfg.split, net.g, cfg.pretrain.val_fraction, cfg.seed)
        classes = dose_classes(cfg.split, net.g)
        labels = np.full(len(meta), -1)
        labels[idx] = meta.loc[idx, "category"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        state = torch.load(start_bb.dir / "backbone.pt", map_location="cpu", weights_only=True)
        top = GruTop(backbones.spec("crnn").from_state(cfg, state).gru)
        trunk_all = torch.from_numpy(np.load(trunk.dir / "trunk.npy"))
        hist = train_top_classifier(top, len(classes), trunk_all, labels, idx[tr], idx[va], cfg.seed)
        with torch.no_grad():
            x_a = torch.cat([top(trunk_all[i : i + 256]) for i in range(0, len(trunk_all), 256)]).numpy()
        atomic_npy(out / "x_a.npy", x_a.astype(np.float32))
        n_t = int(meta.loc[idx, "category"].isin(cfg.split.target).sum())
        atomic_json({"history": hist, "n_clips": int(len(idx)), "n_target_clips": n_t}, out / "training.json")
        log(f"ladder[{net.name}]: {len(idx)} clips ({n_t} of T), best val acc {hist['val_acc']:.3f}")
        return {"n_target_clips": n_t}

    payload = {
        "start": start_bb.key,
        "trunk": trunk.key,
        "g": net.g,
        "split": list(cfg.split.target),
        "seed": cfg.seed,
        "val_fraction": cfg.pretrain.val_fraction,
        "version": VERSION,
    }
    return run_stage(root, "ladder_dose", payload, write, log)[0]


def _mn04_random_stage(root: Path, cfg: ExperimentConfig, meta, fingerprint: str, log) -> Stage:
    from clap_lib.pipeline.paper_strength import network_outputs

    def write(out: Path, work: Path) -> dict:
        model = backbones.spec("mn04").random_init(cfg, 527, 0).eval()
        x_a, _, ok = network_outputs(model, meta)
        atomic_npy(out / "x_a.npy", x_a)
        return {"n_ok": int(ok.sum())}

    return run_stage(root, "ladder_mn04", {"data": fingerprint, "seed": 0, "version": VERSION}, write, log)[0]


def _same_network(cfg: ExperimentConfig, level: str, net: Network) -> bool:
    """Whether the grid's stage of `level` holds `net` (the default run's levels do)."""
    text = level_source(cfg, level)[0]
    return text == "random" and cfg.seed == 0 if net.name == "random0" else text == net.source


def ladder_step(
    root: Path,
    cfg: ExperimentConfig,
    inp,
    feats: Stage,
    ok: np.ndarray,
    bbs: dict[str, Stage],
    trunks: dict[str, Stage],
    strong: Stage | None,
    log,
) -> dict[str, tuple[Stage, Network]]:
    """x_a of every network of the ladder (the grid's stages reused where a network is a pretraining level); a
    network whose weights are missing is left out with one log line."""
    reuse = {"gpv_f": "dirty", "gpv_b": "clean", "random0": "none", "vad_c": "reference/vad_c"}
    out = {}
    for net in ladder_networks():
        level = reuse.get(net.name)
        try:
            if level in bbs and _same_network(cfg, level, net):
                stage = bbs[level]
            elif net.architecture == "crnn" and net.g is None:
                seed = int(net.name[6:]) if net.name.startswith("random") else cfg.seed
                src = "random" if net.name.startswith("random") else net.source
                stage = log.timed(
                    f"ladder[{net.name}]",
                    lambda s=src, sd=seed: _published_stage(root, cfg, inp, feats, ok, s, sd, log),
                )
            elif net.g is not None:
                start = "none" if net.start == "random" else "clean"
                stage = log.timed(
                    f"ladder[{net.name}]",
                    lambda n=net, s=start: _dose_stage(root, cfg, inp.meta, ok, n, trunks[s], bbs[s], log),
                )
            elif net.name == "mn04_as":
                if strong is None:
                    raise FileNotFoundError("the paper-strength stage was skipped")
                stage = strong
            else:
                stage = log.timed(
                    "ladder[mn04_random]", lambda: _mn04_random_stage(root, cfg, inp.meta, inp.fingerprint, log)
                )
        except FileNotFoundError as e:
            log(f"ladder: {net.name} left out ({str(e).splitlines()[0][:160]})")
            continue
        out[net.name] = (stage, net)
    return out


def ladder_table_stage(
    root: Path, cfg: ExperimentConfig, meta, ok: np.ndarray, ladder: dict[str, tuple[Stage, Network]], log
) -> Stage:
    """ladder.csv: per network its exposure, the separability of its x_a (all usable clips, the official folds:
    clap_lib.analysis.backbone_analysis.separability_table) and the blind audit's score (its silhouette)."""
    from clap_lib.analysis import backbone_analysis

    def write(out: Path, work: Path) -> dict:
        x_a = {n: np.load(st.dir / "x_a.npy") for n, (st, _) in ladder.items()}
        sep = backbone_analysis.separability_table(x_a, meta, ok, None, cfg.ci_level)
        ranks = {n: net.exposure.rank for n, (_, net) in ladder.items()}
        audit_df, _ = backbone_analysis.network_audit(x_a, meta, ok, sep, ranks, cfg.seed)
        score = audit_df.set_index("backbone")["audit silhouette"]
        rows = [
            {
                "network": n,
                "architecture": net.architecture,
                "source": net.source,
                "exposure": net.exposure.kind,
                "exposure_label": net.exposure.label,
                "exposure_rank": net.exposure.rank,
                "t_labels": net.exposure.t_labels,
                "g": net.g,
                "start": net.start,
                "audit_score": score[n],
            }
            for n, (_, net) in ladder.items()
        ]
        table = (
            pd.DataFrame(rows)
            .merge(sep.drop(columns=["weights", "trained on"], errors="ignore"), left_on="network", right_on="backbone")
            .drop(columns=["backbone"])
        )
        table["participation_ratio"] = [participation_ratio(x_a[n][ok]) for n in table["network"]]
        table.to_csv(out / "ladder.csv", index=False)
        return {"n_networks": len(table)}

    payload = {
        "x_a": {n: st.key for n, (st, _) in ladder.items()},
        "ci_level": cfg.ci_level,
        "seed": cfg.seed,
        "version": TABLE_VERSION,
    }
    return run_stage(root, "ladder", payload, write, log)[0]


def participation_ratio(X: np.ndarray) -> float:
    """(sum of the covariance eigenvalues)^2 / sum of their squares: the number of dimensions x_a effectively spans
    (1 for points on a line, d for isotropic ones)."""
    ev = np.clip(np.linalg.eigvalsh(np.cov(np.asarray(X, np.float64), rowvar=False)), 0, None)
    return float(ev.sum() ** 2 / (ev**2).sum())
