"""One stage graph for every profile: the {dirty, clean, none} pretraining x {dirty, clean, strict} training grid.

Stages (each cached under `artifacts/<stage>/<key>/` by a hash of exactly what it depends on, see
`stage_payloads` and tests/test_stage_keys.py):
  features   log-mels of every ESC-50 clip (fixed 5 s clips, computed once per front end)
  backbone   one audio backbone per pretraining level: published weights, random init or supervised training
             here (config.WeightsConfig); BatchNorm statistics as the profile sets them; x_a of all clips
  text       x_t of every training caption by the frozen text backbone (cached pair sources only)
  clap       one CLAP training per (pretraining, training) combination, then embeddings and metrics
  grid       the results table across combinations, intervals, the paper's two correlations, separability

A profile only supplies the stages' inputs (clap_lib.pipeline.stage_inputs): the ESC-50-sized profiles (`lab`, `gpvad`)
their ESC-50 pairs and trainings (:class:`Esc50Inputs`, here), the `paper` profile the paper's data sets streamed
from disk and AudioSet pretraining (:class:`clap_lib.paper.inputs.PaperInputs`). Every stage runs under data-parallel
`torchrun` too (:func:`run_on_world`: the collective training on every rank, the files written by rank 0).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.analysis import backbone_analysis, band_control
from clap_lib.config.experiment import AudioConfig, ExperimentConfig
from clap_lib.config.profiles import LABEL_INFORMATION
from clap_lib.data.audio import load_clips
from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD
from clap_lib.data.ontology import esc50_audioset_names
from clap_lib.io import atomic_json, atomic_npy, atomic_npz, atomic_torch_save
from clap_lib.models import backbones
from clap_lib.models.clap import Clap
from clap_lib.models.frontend import compute_logmels, crnn_front_end, mel_band_edges, mel_bands_above
from clap_lib.models.text import build_text_encoder
from clap_lib.pipeline.cache import Stage, cache_key, run_stage
from clap_lib.pipeline.evaluation import embed_eval, load_features, run_metrics, summarise, tsne_2d
from clap_lib.pipeline.keys import TEXT_FIELDS, _pick, features_payload, level_source
from clap_lib.pipeline.stage_inputs import BackboneInput, GridInputs, TrainingPairs
from clap_lib.training.common import _cpu_state
from clap_lib.training.distributed import World
from clap_lib.training.pair_sources import _as_tensor
from clap_lib.training.pretrain import calibrate_batchnorm, pretrain_backbone
from clap_lib.training.trainer import train_clap

# --- which config fields each stage depends on (the cache key is built from these only) ------------------


# --- the inputs of the ESC-50-sized profiles ------------------------------------------------------


# --- the stages ------------------------------------------------------------------------------------


def run_on_world(world: World, root: Path, name: str, payload: dict, log, write: Callable[[Path, Path, object], dict],
                 train: Callable[[Path], object] | None = None) -> Stage:
    """cache.run_stage, safe under data-parallel ranks: `train(work_dir)` is the collective part (every rank runs
    it when the stage is not cached), `write(out, work, trained)` saves the outputs, on rank 0 only. Every rank
    knows the key (it is the payload's hash) and returns once rank 0 has written the stage."""
    stage = Stage(Path(root), name, cache_key(payload))
    # ranks must agree on whether the collective part runs (single process: run_stage decides alone)
    cached = world.broadcast_object(stage.is_valid() if world.is_main else None) if world.distributed else None
    if world.is_main:
        run_stage(root, name, payload, lambda out, work: write(out, work, train(work) if train else None), log)
    elif not cached and train is not None:
        train(stage.work_dir)
    world.barrier()
    return stage


def features_stage(root: Path, meta: pd.DataFrame, fingerprint: str, audio: AudioConfig, progress: bool, log,
                   world: World = World()) -> Stage:
    """Log-mels of every ESC-50 clip at `audio` (and which clips could be read), computed on rank 0."""
    def write(out: Path, work: Path, _) -> dict:
        clips = load_clips(meta, audio, progress)
        logmels = compute_logmels(clips.waves, audio)
        atomic_npy(out / "logmels.npy", logmels)
        atomic_npy(out / "ok.npy", clips.ok)
        atomic_json([list(s) for s in clips.skipped], out / "skipped.json")
        meta.drop(columns=["path"]).to_csv(out / "meta.csv", index=False)
        return {"n_clips": len(meta), "n_skipped": len(clips.skipped)}
    return run_on_world(world, root, "features", features_payload(fingerprint, audio), log, write)


def backbone_stage(root: Path, cfg: ExperimentConfig, feats: Stage, inp: BackboneInput, log,
                   world: World = World(), precision: str = "fp32") -> Stage:
    """One backbone: published weights / random init, then supervised training here if the source says so
    (`inp.pretraining`, on every rank), then BatchNorm statistics re-estimated on `inp.calibration` clips
    (training.calibrate_batchnorm: the CLAP frozen phase runs the backbone in eval mode), x_a of every clip, and
    the published head's clip probabilities when the backbone has one (the shortcut classifier)."""
    spec = backbones.spec(cfg.backbone)
    src, pre = inp.src, inp.pretraining

    def train(work: Path) -> tuple[torch.nn.Module, dict, list[dict]]:
        provenance = {"level": inp.level, "source": inp.source_text, "backbone": cfg.backbone}
        if src.file is not None:
            model = spec.load_pretrained(cfg, src.file)
            provenance |= spec.weights_info(src.file)
        else:
            model = spec.random_init(cfg, len(ESC50_CLASSES), cfg.seed)
            provenance |= {"trained on": "nothing (random init, seed %d)" % cfg.seed}
        history: list[dict] = []
        if pre is not None:
            model = spec.random_init(cfg, pre.n_classes, cfg.seed) if src.file is None \
                else spec.with_head(model, pre.n_classes, cfg.seed)
            # under DDP the trainer's wrap_model gives it global-batch batch norm and rank 0's initial weights
            state, history = pretrain_backbone(model.to(world.device), pre.data(world), pre.labels, pre.train_idx,
                                               pre.val_idx, cfg.pretrain, cfg.seed, work / "resume.pt",
                                               cfg.run.progress, loss=pre.loss, world=world, precision=precision,
                                               log=log)
            model.load_state_dict(state)
            provenance["trained here"] = pre.describe(history)
            if src.file is None:  # trained from random init: what it learned is this training
                provenance["trained on"] = pre.trained_on
            log(f"backbone[{inp.level}]: {provenance['trained here']}")
        return model, provenance, history

    def write(out: Path, work: Path, trained) -> dict:
        model, provenance, history = trained
        logmels = np.asarray(load_features(feats)[0])
        provenance["batchnorm"] = inp.batchnorm
        if len(inp.calibration):
            calibrate_batchnorm(model, logmels[inp.calibration])
        model.eval()
        atomic_torch_save(_cpu_state(model), out / "backbone.pt")
        atomic_json(history, out / "history.json")
        atomic_json(provenance, out / "provenance.json")
        x_a, probs = backbone_outputs(model, logmels, with_probs=hasattr(model, "embed_and_clip_probs")
                                      and src.train is None and src.file is not None, device=world.device)
        atomic_npy(out / "x_a.npy", x_a)
        if probs is not None:  # the published head: the shortcut classifier
            atomic_npy(out / "clip_probs.npy", probs)
        evidence = pre.evidence(out) if pre is not None else {}
        return {"n_classes": int(model.state_dict()[spec.head_key].shape[0]), **provenance, **evidence}
    return run_on_world(world, root, "backbone", inp.payload, log, write, train)


@torch.no_grad()
def backbone_outputs(model, logmels: np.ndarray, with_probs: bool, batch: int = 64,
                     device: torch.device = torch.device("cpu")) -> tuple[np.ndarray, np.ndarray | None]:
    """x_a of every clip (eval mode, on `device`) and, if asked, the backbone's own clip probabilities."""

    model.eval()
    X = _as_tensor(logmels)
    if not with_probs:
        return torch.cat([model(X[i : i + batch].to(device)).cpu() for i in range(0, len(X), batch)]
                         ).numpy().astype(np.float32), None
    # one pass for both (the CRNN's x_a and clip probabilities share its GRU output)
    outs = [[t.cpu() for t in model.embed_and_clip_probs(X[i : i + batch].to(device))] for i in range(0, len(X), batch)]
    return (torch.cat([a for a, _ in outs]).numpy().astype(np.float32),
            torch.cat([p for _, p in outs]).numpy().astype(np.float32))


def text_stage(root: Path, cfg: ExperimentConfig, captions: Sequence[str], log, world: World = World()) -> Stage:
    """x_t of every training caption by the frozen text backbone (eval mode), computed once for every combination
    (the frozen CLAP phase reads it instead of running the text encoder per run)."""
    captions = sorted(set(captions))
    payload = {"fields": _pick(cfg, TEXT_FIELDS),
               "captions": hashlib.sha256("\n".join(captions).encode()).hexdigest()[:16]}

    def write(out: Path, work: Path, _) -> dict:
        text = build_text_encoder(cfg).eval()
        with torch.no_grad():
            x_t = torch.cat([text(text.tokenize(captions[i : i + 128])) for i in range(0, len(captions), 128)])
        atomic_npy(out / "x_t.npy", x_t.numpy().astype(np.float32))
        atomic_json(captions, out / "captions.json")
        return {"n_captions": len(captions)}
    return run_on_world(world, root, "text", payload, log, write)


def clap_stage(root: Path, cfg: ExperimentConfig, inputs: GridInputs, feats: Stage, bb: Stage, pretraining: str,
               training: str, pairs: TrainingPairs, log, world: World = World(), text: Stage | None = None) -> Stage:
    """One CLAP training (on every rank) from backbone stage `bb` on the pair source of `pairs`, then x_a, E_a,
    x_t, E_t of the evaluation clips and labels, their T-SNEs and the paper's metrics (rank 0)."""
    payload = inputs.clap_payload(pretraining, training, feats, bb, pairs)

    def train(work: Path) -> tuple[Clap, list[dict]]:
        model = build_clap(cfg, bb).to(world.device)  # DDP and batch norm: the trainer's wrap_model
        history = train_clap(model, pairs.source(world, bb, text), cfg.clap, cfg.seed, ckpt=work / "resume.pt",
                             world=world, precision=inputs.precision, progress=cfg.run.progress, log=log)
        return model, history

    def write(out: Path, work: Path, trained: tuple[Clap, list[dict]]) -> dict:
        model, history = trained
        atomic_torch_save(_cpu_state(model), out / "checkpoint.pt")
        atomic_json(history, out / "history.json")
        pairs.evidence(out)
        logmels, ok = load_features(feats)
        emb = embed_eval(model, np.asarray(logmels), ok, inputs.meta, inputs.eval_folds, world.device,
                         inputs.precision)
        atomic_npz(out / "embeddings.npz", **emb)
        atomic_npz(out / "tsne.npz", **{k: tsne_2d(emb[k], cfg.seed) for k in ("x_a", "E_a", "x_t", "E_t")})
        m = run_metrics(emb, inputs.split, cfg)
        m.update(pairs.info)
        m.update({"pretraining": pretraining, "training": training, "n_skipped_clips": int((~ok).sum())})
        m.update(pairs.extra)
        atomic_json(m, out / "metrics.json")
        log(f"clap[{pretraining},{training}]: {pairs.info['n_pairs']} pairs, zero-shot accuracy {m['accuracy']:.3f} "
            f"on {m['n_eval_clips']} ESC-50 clips")
        return {"n_pairs": pairs.info["n_pairs"], "world_size": world.world_size, "precision": inputs.precision}
    return run_on_world(world, root, "clap", payload, log, write, train)


def build_clap(cfg: ExperimentConfig, bb: Stage) -> Clap:
    """CLAP from a backbone stage's weights and the pretrained text encoder; projectors seeded by cfg.seed."""
    spec = backbones.spec(cfg.backbone)
    state = torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True)
    audio = spec.from_state(cfg, state)  # may reseed the global RNG (CNN14's random_init): seed after it
    if hasattr(audio, "checkpoint_activations"):
        audio.checkpoint_activations = cfg.run.checkpoint_activations
    text = build_text_encoder(cfg)
    torch.manual_seed(cfg.seed)
    return Clap(audio, text, cfg.d_embed)


def grid_stage(root: Path, cfg: ExperimentConfig, inputs: GridInputs, runs: dict[tuple[str, str], Stage],
               bbs: dict[str, Stage], pairs: Mapping[str, TrainingPairs], ok: np.ndarray, log,
               world: World = World(), feats: Stage | None = None) -> Stage:
    """The summary (rank 0): results table with intervals, correlations, pair counts (evaluation.summarise) and
    every backbone's separability, audit and shortcut (:func:`backbone_summary`)."""
    payload = inputs.grid_payload({f"{p}/{t}": s.key for (p, t), s in runs.items()}, {p: s.key for p, s in bbs.items()})
    pair_tables = {t: tp.info for t, tp in pairs.items()}

    def write(out: Path, work: Path, _) -> dict:
        info = summarise(out, root, runs, bbs, cfg, pair_tables)
        backbone_summary(out, bbs, inputs.meta, ok, cfg, log, feats)
        return info
    return run_on_world(world, root, "grid", payload, log, write)


def backbone_summary(out: Path, bbs: dict[str, Stage], meta: pd.DataFrame, ok: np.ndarray, cfg: ExperimentConfig,
                     log, feats: Stage | None = None) -> None:
    """separability.csv (x_a of every backbone, all clips, 5-fold CV), network_audit.csv / .json (the audit of
    every backbone's x_a, ranked against the label information of its training), shortcut.json (a published
    head used directly as a classifier of T on fold 5) and, for the GPVAD front end, band_control.json (the dirty
    network with the empty bands above 8 kHz at log(eps), clap_lib.analysis.band_control)."""

    x_a = {name: np.load(s.dir / "x_a.npy") for name, s in bbs.items()}
    prov = {name: json.loads((s.dir / "provenance.json").read_text()) for name, s in bbs.items()}
    sep = backbone_analysis.separability_table(x_a, meta, ok, prov, cfg.ci_level)
    sep.to_csv(out / "separability.csv", index=False)
    audit_df, verdict = backbone_analysis.network_audit(x_a, meta, ok, sep, LABEL_INFORMATION, cfg.seed)
    audit_df.to_csv(out / "network_audit.csv", index=False)
    atomic_json(verdict, out / "network_audit.json")
    spec = backbones.spec(cfg.backbone)
    shortcut = {}
    for name, s in bbs.items():
        src = level_source(cfg, name)[1]
        if (s.dir / "clip_probs.npy").is_file() and src.file and (labels := spec.head_labels(src.file)):
            try:
                shortcut[name] = backbone_analysis.shortcut_result(np.load(s.dir / "clip_probs.npy"), labels, meta, ok,
                                                    cfg.split.target, esc50_audioset_names(), (EVAL_FOLD,),
                                                    cfg.ci_level) | {"weights": prov[name].get("file")}
            except ValueError as e:  # a head of speech / noise labels (GPV-B, VAD-C) names no ESC-50 class
                log(f"backbones: no shortcut for {name}: {e}")
    if shortcut:
        atomic_json(shortcut, out / "shortcut.json")
    if feats is not None and cfg.audio.front_end == "gpvad" and "dirty" in bbs:
        control = band_limited_control(bbs["dirty"], feats, cfg, meta, ok, sep, shortcut.get("dirty"),
                                       spec.head_labels(level_source(cfg, "dirty")[1].file or ""))
        if control is not None:
            atomic_json(control, out / "band_control.json")
            log(f"band control: x_a cosine median {control['x_a_cosine_median']:.3f}; "
                + ", ".join(f"{r['measure']} {r['as run']:.3f} -> {r['bands above 8 kHz at log(eps)']:.3f}"
                            for r in control["rows"]))
    log(f"backbones: probe accuracy {', '.join(f'{r.backbone} {r.probe:.2f}' for r in sep.itertuples())}"
        + "".join(f"; shortcut[{k}] {v['accuracy']:.3f}" for k, v in shortcut.items()))


def band_limited_control(bb: Stage, feats: Stage, cfg: ExperimentConfig, meta: pd.DataFrame, ok: np.ndarray,
                         sep: pd.DataFrame, shortcut_run: dict | None, labels) -> dict | None:
    """clap_lib.analysis.band_control on the network of backbone stage `bb`: x_a (and clip probabilities) again with the mel
    bands above 8 kHz at log(eps), against the run's (`sep`, `shortcut_run`). None when no band lies above 8 kHz."""

    fe = crnn_front_end(cfg.audio)
    bands = mel_bands_above(8000.0, fe)
    if not len(bands):
        return None
    spec = backbones.spec(cfg.backbone)
    model = spec.from_state(cfg, torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True)).eval()
    logmels, _ = load_features(feats)
    with_probs = shortcut_run is not None and hasattr(model, "embed_and_clip_probs")
    x_c, p_c = backbone_outputs(model, band_control.floor_bands(logmels, bands), with_probs)
    sep_c = backbone_analysis.separability_table({"control": x_c}, meta, ok, None, cfg.ci_level).iloc[0]
    sc_c = backbone_analysis.shortcut_result(p_c, labels, meta, ok, cfg.split.target, esc50_audioset_names(), (EVAL_FOLD,),
                              cfg.ci_level) if with_probs and p_c is not None else None
    edges = mel_band_edges(fe)
    return band_control.summary(np.load(bb.dir / "x_a.npy"), x_c, ok, sep.set_index("backbone").loc["dirty"].to_dict(),
                      sep_c.to_dict(), shortcut_run, sc_c, bands, (edges[bands[0], 0], edges[bands[-1], 2]))


# --- the grid ------------------------------------------------------------------------------------
