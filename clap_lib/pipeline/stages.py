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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.models import backbones
from clap_lib.data.audio import load_clips
from clap_lib.pipeline.cache import Stage, cache_key, run_stage
from clap_lib.config.experiment import AudioConfig, ExperimentConfig, WeightSource, config_payload, parse_source
from clap_lib.training.distributed import World, init_world
from clap_lib.data.esc50 import (
    ESC50_CLASSES, EVAL_FOLD, ClassSplit, check_evaluation_clips, data_fingerprint, locate_esc50, read_esc50_meta,
    split_by_clip, train_eval_masks,
)
from clap_lib.pipeline.evaluation import STATS_VERSION, embed_eval, load_features, run_metrics, summarise, tsne_2d
from clap_lib.models.frontend import compute_logmels
from clap_lib.io import file_sha256, atomic_json, atomic_npy, atomic_npz, atomic_torch_save, atomic_write
from clap_lib.config.levels import PRETRAININGS, TABLE_METRICS, TRAININGS
from clap_lib.models.clap import Clap
from clap_lib.data.pairs import CaptionSource, load_caption_source, training_pairs
from clap_lib.pipeline.results import GridResult, RunLog, latest_grid, load_grid, relative
from clap_lib.pipeline.stage_inputs import BackboneInput, GridInputs, Pretraining, TrainingPairs
from clap_lib.models.text import build_text_encoder, check_text_model
from clap_lib.training.trainer import PairData, _cpu_state, calibrate_batchnorm, pretrain_backbone, train_clap

__all__ = ["run_grid", "run_seeds", "notebook_grid", "stage_payloads", "latest_grid", "load_grid", "GridResult",
           "run_on_world", "features_stage", "backbone_stage", "text_stage", "clap_stage", "grid_stage",
           "Esc50Inputs"]

# --- which config fields each stage depends on (the cache key is built from these only) ------------------

#: architecture fields of each backbone (what `backbones.spec(name).random_init` reads)
ARCH_FIELDS = {"cnn14": ("backbone", "width", "cnn_dropout", "cnn_fc_dropout", "audio.n_mels"),
               "crnn": ("backbone",)}
SPLIT_FIELDS = ("split_seed", "per_category", "target_classes", "swap_split")
CLAP_FIELDS = ("seed", "d_embed", "text_model", "text_max_tokens", "expected_vocab_size", "captions",
               "captions_per_clip", "clap", "topo_k_min", "topo_k_max", "topo_n_perm", *SPLIT_FIELDS)


def _pick(cfg: ExperimentConfig, names) -> dict:
    out = {}
    for name in names:
        v = cfg
        for part in name.split("."):
            v = getattr(v, part)
        out[name] = asdict(v) if hasattr(v, "__dataclass_fields__") else v
    return out


def weights_fingerprint(cfg: ExperimentConfig, src: WeightSource) -> str | None:
    """Content hash of a published weights file (a changed file is a new key); None for random / training only."""
    if src.file is None:
        return None
    spec = backbones.spec(cfg.backbone)
    return file_sha256(spec.resolve(src.file))[:16]


def level_source(cfg: ExperimentConfig, level: str) -> tuple[str, WeightSource]:
    """(source text, parsed) of a pretraining level or of an audit reference ("reference/<name>")."""
    if level.startswith("reference/"):
        text = next(r for r in cfg.reference_weights if reference_name(r) == level)
        return text, parse_source(text, "reference_weights")
    return getattr(cfg.weights, level), cfg.weights.source(level)


def reference_name(source_text: str) -> str:
    src = parse_source(source_text, "reference_weights")
    return "reference/" + (Path(src.file).stem if src.file else "random") + (f"+{src.train}" if src.train else "")


def features_payload(fingerprint: str, audio: AudioConfig) -> dict:
    return {"data": fingerprint, "audio": asdict(audio)}


def backbone_payload(cfg: ExperimentConfig, level: str, features_key: str) -> dict:
    text, src = level_source(cfg, level)
    names = [*ARCH_FIELDS[cfg.backbone], "reference_weights" if level.startswith("reference/") else f"weights.{level}"]
    if src.train is not None or src.file is None:
        names.append("seed")  # random init and training here are seeded
    if src.train is not None:
        names.append("pretrain")
        if src.train == "background":
            names += SPLIT_FIELDS
    if src.file is not None and src.train is None:
        names.append("keep_published_batchnorm")
    if not (src.file is not None and src.train is None and cfg.keep_published_batchnorm):
        names.append("bn_calibration_clips")  # the BatchNorm statistics are re-estimated on the training clips
    return {"level": level, "source": text, "features": features_key, "fields": _pick(cfg, names),
            "weights_file": weights_fingerprint(cfg, src)}


def clap_payload(cfg: ExperimentConfig, pretraining: str, training: str, features_key: str, backbone_key: str,
                 pairs_fingerprint: str) -> dict:
    return {"features": features_key, "backbone": backbone_key, "pretraining": pretraining, "training": training,
            "pairs": pairs_fingerprint, "fields": _pick(cfg, [*ARCH_FIELDS[cfg.backbone], *CLAP_FIELDS])}


def grid_payload(cfg: ExperimentConfig, run_keys: dict[str, str], backbone_keys: dict[str, str]) -> dict:
    return {"config": config_payload(cfg), "runs": run_keys, "backbones": backbone_keys, "stats": STATS_VERSION}


def stage_payloads(cfg: ExperimentConfig, data_fp: str, pairs_fp: dict[str, str] | None = None) -> dict[str, dict]:
    """Every stage's payload for `cfg` (an ESC-50-sized profile) without running anything (tests check which
    fields move which keys)."""
    pairs_fp = pairs_fp or {t: f"pairs-{t}" for t in cfg.trainings}  # stands for training_pairs' fingerprint
    out = {"features": features_payload(data_fp, cfg.audio)}
    f_key = cache_key(out["features"])
    bb_keys = {}
    for p in cfg.pretrainings:
        out[f"backbone/{p}"] = backbone_payload(cfg, p, f_key)
        bb_keys[p] = cache_key(out[f"backbone/{p}"])
    for r in cfg.reference_weights:
        out[f"backbone/{reference_name(r)}"] = backbone_payload(cfg, reference_name(r), f_key)
        bb_keys[reference_name(r)] = cache_key(out[f"backbone/{reference_name(r)}"])
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            out[f"clap/{p}/{t}"] = clap_payload(cfg, p, t, f_key, bb_keys[p], pairs_fp[t])
            runs[f"{p}/{t}"] = cache_key(out[f"clap/{p}/{t}"])
    out["grid"] = grid_payload(cfg, runs, bb_keys)
    return out


# --- the inputs of the ESC-50-sized profiles ------------------------------------------------------


@dataclass(frozen=True)
class Esc50Inputs:
    """The `lab` / `gpvad` profiles' inputs: ESC-50 clips paired with captions (bank or real), backbones published,
    random or trained here on ESC-50 folds 1-4, BatchNorm re-estimated on the training clips, fold 5 scored."""

    cfg: ExperimentConfig
    meta: pd.DataFrame
    fingerprint: str
    split: ClassSplit
    captions: CaptionSource
    eval_folds: tuple[int, ...] = (EVAL_FOLD,)
    precision: str = "fp32"

    @staticmethod
    def check(cfg: ExperimentConfig) -> None:
        """Config checks that need no data (none beyond cfg.validate)."""

    @staticmethod
    def device(cfg: ExperimentConfig) -> str:
        return "cpu"  # these profiles' results are CPU results (run.device is not read)

    @classmethod
    def read(cls, cfg: ExperimentConfig, esc50_root, data_root, roots, world: World, log,
             with_pairs: bool = True) -> "Esc50Inputs":
        """ESC-50, the caption source, the text model and every weights file, checked before the first stage."""
        meta = read_esc50_meta(locate_esc50(esc50_root))
        split = cfg.split
        check_evaluation_clips(meta, split.target)
        check_text_model(cfg.text_model, cfg.expected_vocab_size)
        levels = [*cfg.pretrainings, *(reference_name(r) for r in cfg.reference_weights)]
        for p in levels:
            weights_fingerprint(cfg, level_source(cfg, p)[1])
        source = log.timed("captions", lambda: load_caption_source(cfg, data_root))
        fingerprint = log.timed("fingerprint", lambda: data_fingerprint(meta))
        log(f"target classes T ({len(split.target)}): {', '.join(split.target)}")
        return cls(cfg, meta, fingerprint, split, source)

    @property
    def levels(self) -> tuple[str, ...]:
        return (*self.cfg.pretrainings, *(reference_name(r) for r in self.cfg.reference_weights))

    def backbone(self, level: str, features: Stage, ok: np.ndarray) -> BackboneInput:
        cfg, meta = self.cfg, self.meta
        text, src = level_source(cfg, level)
        train_mask, _ = train_eval_masks(meta)
        pretraining = self._pretraining(src.train, features, ok, train_mask) if src.train is not None else None
        clips = np.flatnonzero(train_mask & ok)
        if src.file is not None and src.train is None and cfg.keep_published_batchnorm:
            clips, batchnorm = clips[:0], "published statistics"  # the published statistics stay
        else:
            batchnorm = "re-estimated on the training clips (folds 1-4)"
        if cfg.bn_calibration_clips is not None and cfg.bn_calibration_clips < len(clips):
            # a fixed subset (not the training seed: published backbones stay shared across seeds); BatchNorm
            # statistics converge long before every clip is seen
            clips = np.sort(np.random.default_rng(7).choice(clips, cfg.bn_calibration_clips, replace=False))
        return BackboneInput(level, text, src, backbone_payload(cfg, level, features.key), pretraining, clips,
                             batchnorm)

    def _pretraining(self, train: str, features: Stage, ok: np.ndarray, train_mask: np.ndarray) -> Pretraining:
        """Supervised training on ESC-50 folds 1-4: every class ("all") or the background classes B."""
        cfg, meta = self.cfg, self.meta
        classes = ESC50_CLASSES if train == "all" else self.split.background
        cls_index = {c: i for i, c in enumerate(classes)}
        idx = np.flatnonzero(train_mask & ok & meta["category"].isin(classes).to_numpy())
        assert (meta.loc[idx, "fold"] != EVAL_FOLD).all()
        labels = np.full(len(meta), -1)
        labels[idx] = meta.loc[idx, "category"].map(cls_index).to_numpy()
        tr, va = split_by_clip(idx, cfg.pretrain.val_fraction, cfg.seed)
        return Pretraining(
            len(classes), lambda world: np.asarray(load_features(features)[0]), labels, idx[tr], idx[va], "ce",
            trained_on=f"ESC-50 folds 1-4, {len(classes)} classes ({train}), here",
            describe=lambda history: (f"supervised on {len(classes)} ESC-50 classes ({train}), folds 1-4, "
                                      f"{len(idx)} clips, best val acc {max(h['val_acc'] for h in history):.3f}"))

    def pairs(self, training: str, features: Stage, ok: np.ndarray) -> TrainingPairs:
        cfg = self.cfg
        pairs, info, fp = training_pairs(cfg, self.meta, ok, self.split, training, self.captions)
        captions = sorted(pairs["caption"].unique())
        cap_index = {c: i for i, c in enumerate(captions)}
        rows = np.stack([pairs["clip"].to_numpy(), pairs["caption"].map(cap_index).to_numpy()], axis=1)
        tr, va = split_by_clip(rows[:, 0], cfg.clap.val_fraction, cfg.seed)  # a clip is in one side only

        def source(world: World, bb: Stage, text: Stage | None) -> PairData:
            x_a = np.load(bb.dir / "x_a.npy")  # the frozen backbone's x_a, computed once in the backbone stage
            x_t = None
            if text is not None:  # the frozen text backbone's x_t, computed once in the text stage
                row = {c: i for i, c in enumerate(json.loads((text.dir / "captions.json").read_text()))}
                x_t = np.load(text.dir / "x_t.npy")[[row[c] for c in captions]]
            return PairData(np.asarray(load_features(features)[0]), captions, rows[tr], rows[va], x_a, x_t)
        return TrainingPairs(fp, info, {"n_train_pairs": int(len(tr)), "n_val_pairs": int(len(va))}, source,
                             captions=list(pairs["caption"]))

    def text_captions(self, pairs: Mapping[str, TrainingPairs], ok: np.ndarray) -> Sequence[str]:
        # the dirty level's captions hold every level's: one text stage, whichever levels this run trains
        if "dirty" in pairs:
            return pairs["dirty"].captions
        return list(training_pairs(self.cfg, self.meta, ok, self.split, "dirty", self.captions)[0]["caption"])

    def clap_payload(self, pretraining: str, training: str, features: Stage, backbone: Stage,
                     pairs: TrainingPairs) -> dict:
        return clap_payload(self.cfg, pretraining, training, features.key, backbone.key, pairs.fingerprint)

    def grid_payload(self, runs: dict[str, str], backbones_: dict[str, str]) -> dict:
        return grid_payload(self.cfg, runs, backbones_)


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
    from clap_lib.training.pair_sources import _as_tensor

    model.eval()
    X = _as_tensor(logmels)
    if not with_probs:
        return torch.cat([model(X[i : i + batch].to(device)).cpu() for i in range(0, len(X), batch)]
                         ).numpy().astype(np.float32), None
    # one pass for both (the CRNN's x_a and clip probabilities share its GRU output)
    outs = [[t.cpu() for t in model.embed_and_clip_probs(X[i : i + batch].to(device))] for i in range(0, len(X), batch)]
    return (torch.cat([a for a, _ in outs]).numpy().astype(np.float32),
            torch.cat([p for _, p in outs]).numpy().astype(np.float32))


TEXT_FIELDS = ("text_model", "text_max_tokens", "expected_vocab_size")


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
    from clap_lib.analysis import backbone_analysis as BA
    from clap_lib.data.ontology import esc50_audioset_names

    x_a = {name: np.load(s.dir / "x_a.npy") for name, s in bbs.items()}
    prov = {name: json.loads((s.dir / "provenance.json").read_text()) for name, s in bbs.items()}
    sep = BA.separability_table(x_a, meta, ok, prov, cfg.ci_level)
    sep.to_csv(out / "separability.csv", index=False)
    audit_df, verdict = BA.network_audit(x_a, meta, ok, sep, cfg.seed)
    audit_df.to_csv(out / "network_audit.csv", index=False)
    atomic_json(verdict, out / "network_audit.json")
    spec = backbones.spec(cfg.backbone)
    shortcut = {}
    for name, s in bbs.items():
        src = level_source(cfg, name)[1]
        if (s.dir / "clip_probs.npy").is_file() and src.file and (labels := spec.head_labels(src.file)):
            try:
                shortcut[name] = BA.shortcut_result(np.load(s.dir / "clip_probs.npy"), labels, meta, ok,
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
    from clap_lib.analysis import backbone_analysis as BA
    from clap_lib.analysis import band_control as BC
    from clap_lib.models.backbones.crnn import mel_band_edges, mel_bands_above
    from clap_lib.models.frontend import crnn_front_end
    from clap_lib.data.ontology import esc50_audioset_names

    fe = crnn_front_end(cfg.audio)
    bands = mel_bands_above(8000.0, fe)
    if not len(bands):
        return None
    spec = backbones.spec(cfg.backbone)
    model = spec.from_state(cfg, torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True)).eval()
    logmels, _ = load_features(feats)
    with_probs = shortcut_run is not None and hasattr(model, "embed_and_clip_probs")
    x_c, p_c = backbone_outputs(model, BC.floor_bands(logmels, bands), with_probs)
    sep_c = BA.separability_table({"control": x_c}, meta, ok, None, cfg.ci_level).iloc[0]
    sc_c = BA.shortcut_result(p_c, labels, meta, ok, cfg.split.target, esc50_audioset_names(), (EVAL_FOLD,),
                              cfg.ci_level) if with_probs and p_c is not None else None
    edges = mel_band_edges(fe)
    return BC.summary(np.load(bb.dir / "x_a.npy"), x_c, ok, sep.set_index("backbone").loc["dirty"].to_dict(),
                      sep_c.to_dict(), shortcut_run, sc_c, bands, (edges[bands[0], 0], edges[bands[-1], 2]))


# --- the grid ------------------------------------------------------------------------------------


def _inputs_of(profile: str):
    """The class that reads a profile's inputs (`check(cfg)`, `device(cfg)`, `read(...)`: a GridInputs)."""
    if profile == "paper":
        from clap_lib.paper.inputs import PaperInputs

        return PaperInputs
    return Esc50Inputs


def run_grid(cfg: ExperimentConfig, esc50_root: str | Path | None = None, artifacts: str | Path = "artifacts",
             quiet: bool = False, update_latest: bool = True, data_root: str | Path | None = None,
             step: str = "grid", *, roots: Mapping[str, str | Path | None] | None = None,
             world: World | None = None) -> GridResult | None:
    """Run (or load from the cache) every stage of the grid; `latest.json` points at the result unless
    `update_latest` is False (notebooks re-running one combination must not move the pointer). `step`
    "prepare" stops after the backbones, "clap" after the CLAP runs (returning None): jobs split the grid so.

    Under torchrun every rank calls this (`world`: default from the environment, clap_lib.training.distributed.init_world);
    rank 0 writes the artifacts and gets the result, the other ranks None. `roots` (paper profile): data set
    name -> folder, default datasets.default_roots(data_root)."""
    cfg.validate()
    if step not in ("prepare", "clap", "grid"):
        raise ValueError(f"unknown step {step!r}; allowed: prepare, clap, grid")
    reader = _inputs_of(cfg.profile)
    reader.check(cfg)  # before anything is written
    world = world or init_world(reader.device(cfg))
    _check_batches(cfg, world)
    if cfg.run.release_memory:
        from clap_lib.pipeline.memory import fixed_mmap_threshold

        fixed_mmap_threshold()
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    root = Path(artifacts)
    log = RunLog(root / "run.log", quiet) if world.is_main else _Silent()
    log(f"grid start: profile={cfg.profile} seed={cfg.seed} "
        f"combos={len(cfg.pretrainings) * len(cfg.trainings)}"
        + (f" device={world.device} processes={world.world_size}" if world.device.type != "cpu" or world.distributed
           else ""))
    # everything that can fail on a bad input is checked before the first stage runs
    inp = reader.read(cfg, esc50_root, data_root, roots, world, log, with_pairs=step != "prepare")
    feats = log.timed("features", lambda: features_stage(root, inp.meta, inp.fingerprint, cfg.audio,
                                                         cfg.run.progress, log, world))
    ok = np.load(feats.dir / "ok.npy")
    bbs = {p: log.timed(f"backbone[{p}]", lambda p=p: backbone_stage(root, cfg, feats, inp.backbone(p, feats, ok),
                                                                     log, world, inp.precision))
           for p in inp.levels}
    if step == "prepare":
        return None
    pair_sets = {t: inp.pairs(t, feats, ok) for t in cfg.trainings}
    captions = inp.text_captions(pair_sets, ok)
    text = log.timed("text", lambda: text_stage(root, cfg, captions, log, world)) if captions is not None else None
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            runs[(p, t)] = log.timed(f"clap[{p},{t}]", lambda p=p, t=t: clap_stage(
                root, cfg, inp, feats, bbs[p], p, t, pair_sets[t], log, world, text))
    if step == "clap":
        return None
    grid = log.timed("grid", lambda: grid_stage(root, cfg, inp, runs, bbs, pair_sets, ok, log, world, feats))
    if not world.is_main:
        return None
    if update_latest:
        atomic_json({"grid": relative(root, grid.dir), "key": grid.key, "timings": log.timings}, root / "latest.json")
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return load_grid(grid.dir)


def _check_batches(cfg: ExperimentConfig, world: World) -> None:
    """Every global batch must split evenly over the ranks (checked before any stage runs)."""
    sizes = [("clap.batch_size", cfg.clap.batch_size)]
    if any(cfg.weights.source(p).train is not None for p in cfg.pretrainings):
        sizes.append(("pretrain.batch_size", cfg.pretrain.batch_size))
    for name, size in sizes:
        if size % world.world_size:
            raise ValueError(f"{name}={size} is not a multiple of the {world.world_size} processes")


class _Silent:
    """The log of non-main ranks: nothing is printed twice."""

    timings: list = []

    def __call__(self, msg: str) -> None:
        pass

    def timed(self, name: str, fn):
        return fn()


def run_seeds(cfg: ExperimentConfig, seeds: tuple[int, ...], esc50_root: str | Path | None = None,
              artifacts: str | Path = "artifacts", quiet: bool = False,
              data_root: str | Path | None = None) -> pd.DataFrame:
    """The grid repeated over `seeds` (training seed; the class split stays fixed by `split_seed`).

    Returns one row per (seed, combination) and writes it, with the mean / spread per combination, under
    `<artifacts>/seeds/<key>/`. `latest.json` points at the grid of the first seed; `latest_seeds.json` at these.
    """
    from clap_lib.analysis.uncertainty import seed_summary

    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. 0,1,2")
    frames = []
    for i, s in enumerate(seeds):
        g = run_grid(replace(cfg, seed=int(s)), esc50_root, artifacts, quiet, update_latest=i == 0,
                     data_root=data_root)
        frames.append(g.results.assign(seed=int(s), grid_key=g.dir.name))
    per_seed = pd.concat(frames, ignore_index=True)
    summary = seed_summary(per_seed, metric_cols=list(TABLE_METRICS))
    key = cache_key({"grids": [f.loc[0, "grid_key"] for f in frames]})
    out = Path(artifacts) / "seeds" / key
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "per_seed.csv", lambda p: per_seed.drop(columns=["run_dir"], errors="ignore").to_csv(p, index=False))
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    atomic_json({"seeds": list(seeds), "grids": [f.loc[0, "grid_key"] for f in frames],
                 "dir": relative(Path(artifacts), out)}, Path(artifacts) / "latest_seeds.json")
    return per_seed


def notebook_grid(artifacts: str | Path = "artifacts", esc50: str | Path | None = None,
                  pretraining: str | None = None, training: str | None = None, **params) -> GridResult:
    """The grid a notebook's papermill parameters describe, from the cache or computed now.

    With `pretraining`/`training` only that combination is run (its cached stages are shared with the full
    grid). `params` are those of `config.config_from_params`; bad values raise before any work.
    """
    from clap_lib.config.experiment import _one_of, config_from_params

    cfg = config_from_params(**params)
    if pretraining is not None:
        _one_of("pretraining", pretraining, PRETRAININGS)
        cfg = replace(cfg, pretrainings=(pretraining,))
    if training is not None:
        _one_of("training", training, TRAININGS)
        cfg = replace(cfg, trainings=(training,))
    return run_grid(replace(cfg, run=replace(cfg.run, progress=False)), esc50, artifacts, quiet=True,
                    update_latest=False)


def stage_dirs(grid: GridResult) -> dict:
    return json.loads((grid.dir / "stages.json").read_text())
