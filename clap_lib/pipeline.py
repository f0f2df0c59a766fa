"""One stage graph for every profile: the {dirty, clean, none} pretraining x {dirty, clean, strict} training grid.

Stages (each cached under `artifacts/<stage>/<key>/` by a hash of exactly the config fields it declares, see
`stage_payloads` and tests/test_stage_keys.py):
  features   log-mels of every ESC-50 clip (fixed 5 s clips, computed once per front end)
  backbone   one audio backbone per pretraining level: published weights, random init or supervised training
             here (config.WeightsConfig); BatchNorm statistics calibrated on the training clips; x_a of all clips
  clap       one CLAP training per (pretraining, training) combination, then embeddings and metrics
  grid       the results table across combinations, intervals, the paper's two correlations, separability

The `paper` profile trains on the paper's datasets with streamed audio (clap_lib.paper); its ESC-50 evaluation
and summary go through the same functions (clap_lib.evaluation).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import backbones
from .cache import Stage, cache_key, run_stage
from .config import ExperimentConfig, WeightSource, config_payload, parse_source
from .esc50 import (ESC50_CLASSES, EVAL_FOLD, ClassSplit, check_evaluation_clips, data_fingerprint, locate_esc50,
                    read_esc50_meta, split_by_clip, train_eval_masks)
from .evaluation import embed_eval, features_stage, load_features, run_metrics, summarise, tsne_2d
from .io import file_sha256, atomic_json, atomic_npy, atomic_npz, atomic_torch_save, atomic_write
from .levels import PRETRAININGS, TABLE_METRICS, TRAININGS
from .models import Clap
from .pairs import load_caption_source, training_pairs
from .results import GridResult, RunLog, latest_grid, load_grid, relative
from .text import build_text_encoder, check_text_model
from .training import PairData, calibrate_batchnorm, pretrain_backbone, train_clap

__all__ = ["run_grid", "run_seeds", "notebook_grid", "stage_payloads", "latest_grid", "load_grid", "GridResult"]

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


STATS_VERSION = "2"  # bump when the statistics computed in the grid summary change (training stays cached)


def grid_payload(cfg: ExperimentConfig, run_keys: dict[str, str], backbone_keys: dict[str, str]) -> dict:
    return {"config": config_payload(cfg), "runs": run_keys, "backbones": backbone_keys, "stats": STATS_VERSION}


def stage_payloads(cfg: ExperimentConfig, data_fp: str, pairs_fp: dict[str, str] | None = None) -> dict[str, dict]:
    """Every stage's payload for `cfg` without running anything (tests check which fields move which keys)."""
    pairs_fp = pairs_fp or {t: f"pairs-{t}" for t in cfg.trainings}  # stands for training_pairs' fingerprint
    out = {"features": {"data": data_fp, "audio": asdict(cfg.audio)}}
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


# --- stages --------------------------------------------------------------------------------------


def backbone_stage(root: Path, cfg: ExperimentConfig, feats: Stage, meta: pd.DataFrame, split: ClassSplit,
                   level: str, log) -> Stage:
    """One pretraining level's backbone: published weights / random init / supervised training here (folds 1-4),
    then BatchNorm statistics re-estimated on the training clips (training.calibrate_batchnorm: the CLAP frozen
    phase runs the backbone in eval mode), x_a of every clip, and the AudioSet head's clip probabilities when
    the backbone has one (the shortcut classifier)."""
    text, src = level_source(cfg, level)
    spec = backbones.spec(cfg.backbone)

    def compute(out: Path, work: Path) -> dict:
        logmels, ok = load_features(feats)
        logmels = np.asarray(logmels)
        train_mask, _ = train_eval_masks(meta)
        provenance = {"level": level, "source": text, "backbone": cfg.backbone}
        if src.file is not None:
            model = spec.load_pretrained(cfg, src.file)
            provenance |= spec.weights_info(src.file)
        else:
            model = spec.random_init(cfg, len(ESC50_CLASSES), cfg.seed)
            provenance |= {"trained on": "nothing (random init, seed %d)" % cfg.seed}
        history: list[dict] = []
        if src.train is not None:
            classes = ESC50_CLASSES if src.train == "all" else split.background
            cls_index = {c: i for i, c in enumerate(classes)}
            idx = np.flatnonzero(train_mask & ok & meta["category"].isin(classes).to_numpy())
            assert (meta.loc[idx, "fold"] != EVAL_FOLD).all()
            labels = np.full(len(meta), -1)
            labels[idx] = meta.loc[idx, "category"].map(cls_index).to_numpy()
            tr, va = split_by_clip(idx, cfg.pretrain.val_fraction, cfg.seed)
            model = spec.random_init(cfg, len(classes), cfg.seed) if src.file is None \
                else spec.with_head(model, len(classes), cfg.seed)
            state, history = pretrain_backbone(model, logmels, labels, idx[tr], idx[va], cfg.pretrain, cfg.seed,
                                               work / "resume.pt", cfg.run.progress)
            model.load_state_dict(state)
            provenance["trained here"] = (f"supervised on {len(classes)} ESC-50 classes ({src.train}), folds 1-4, "
                                          f"{len(idx)} clips, best val acc {max(h['val_acc'] for h in history):.3f}")
            if src.file is None:  # trained from random init: what it learned is this training
                provenance["trained on"] = f"ESC-50 folds 1-4, {len(classes)} classes ({src.train}), here"
            log(f"backbone[{level}]: {provenance['trained here']}")
        train_clips = np.flatnonzero(train_mask & ok)
        published = src.file is not None and src.train is None
        if published and cfg.keep_published_batchnorm:
            train_clips = train_clips[:0]  # the published statistics stay
            provenance["batchnorm"] = "published statistics"
        else:
            provenance["batchnorm"] = "re-estimated on the training clips (folds 1-4)"
        if cfg.bn_calibration_clips is not None and cfg.bn_calibration_clips < len(train_clips):
            # a fixed subset (not the training seed: published backbones stay shared across seeds); BatchNorm
            # statistics converge long before every clip is seen
            train_clips = np.sort(np.random.default_rng(7).choice(train_clips, cfg.bn_calibration_clips,
                                                                              replace=False))
        if len(train_clips):
            calibrate_batchnorm(model, logmels[train_clips])
        model.eval()
        atomic_torch_save(model.state_dict(), out / "backbone.pt")
        atomic_json(history, out / "history.json")
        atomic_json(provenance, out / "provenance.json")
        x_a, probs = backbone_outputs(model, logmels, with_probs=hasattr(model, "embed_and_clip_probs")
                                      and src.train is None and src.file is not None)
        atomic_npy(out / "x_a.npy", x_a)
        if probs is not None:  # the published head: the shortcut classifier
            atomic_npy(out / "clip_probs.npy", probs)
        return {"n_classes": int(model.state_dict()[spec.head_key].shape[0]), **provenance}
    stage, _ = run_stage(root, "backbone", backbone_payload(cfg, level, feats.key), compute, log)
    return stage


@torch.no_grad()
def backbone_outputs(model, logmels: np.ndarray, with_probs: bool, batch: int = 64
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """x_a of every clip (eval mode) and, if asked, the backbone's own clip probabilities."""
    from .pair_sources import _as_tensor

    model.eval()
    X = _as_tensor(logmels)
    if not with_probs:
        return torch.cat([model(X[i : i + batch]) for i in range(0, len(X), batch)]).numpy().astype(np.float32), None
    # one pass for both (the CRNN's x_a and clip probabilities share its GRU output)
    outs = [model.embed_and_clip_probs(X[i : i + batch]) for i in range(0, len(X), batch)]
    return (torch.cat([a for a, _ in outs]).numpy().astype(np.float32),
            torch.cat([p for _, p in outs]).numpy().astype(np.float32))


TEXT_FIELDS = ("text_model", "text_max_tokens", "expected_vocab_size")


def text_stage(root: Path, cfg: ExperimentConfig, captions: list[str], log) -> Stage:
    """x_t of every training caption by the frozen text backbone (eval mode), computed once for every combination
    (the frozen CLAP phase reads it instead of running the text encoder per run)."""
    captions = sorted(set(captions))
    payload = {"fields": _pick(cfg, TEXT_FIELDS),
               "captions": hashlib.sha256("\n".join(captions).encode()).hexdigest()[:16]}

    def compute(out: Path, work: Path) -> dict:
        text = build_text_encoder(cfg).eval()
        with torch.no_grad():
            x_t = torch.cat([text(text.tokenize(captions[i : i + 128])) for i in range(0, len(captions), 128)])
        atomic_npy(out / "x_t.npy", x_t.numpy().astype(np.float32))
        atomic_json(captions, out / "captions.json")
        return {"n_captions": len(captions)}
    stage, _ = run_stage(root, "text", payload, compute, log)
    return stage


def clap_stage(root: Path, cfg: ExperimentConfig, feats: Stage, bb: Stage, meta: pd.DataFrame, split: ClassSplit,
               pretraining: str, training: str, pairs: pd.DataFrame, pair_info: dict, pairs_fp: str, log,
               text: Stage | None = None) -> Stage:
    payload = clap_payload(cfg, pretraining, training, feats.key, bb.key, pairs_fp)

    def compute(out: Path, work: Path) -> dict:
        logmels, ok = load_features(feats)
        logmels = np.asarray(logmels)
        captions = sorted(pairs["caption"].unique())
        cap_index = {c: i for i, c in enumerate(captions)}
        rows = np.stack([pairs["clip"].to_numpy(), pairs["caption"].map(cap_index).to_numpy()], axis=1)
        tr, va = split_by_clip(rows[:, 0], cfg.clap.val_fraction, cfg.seed)  # a clip is in one side only
        model = build_clap(cfg, bb)
        x_a = np.load(bb.dir / "x_a.npy")  # the frozen backbone's x_a, computed once in the backbone stage
        x_t = None
        if text is not None:  # the frozen text backbone's x_t, computed once in the text stage
            row = {c: i for i, c in enumerate(json.loads((text.dir / "captions.json").read_text()))}
            x_t = np.load(text.dir / "x_t.npy")[[row[c] for c in captions]]
        history = train_clap(model, PairData(logmels, captions, rows[tr], rows[va], x_a, x_t), cfg.clap, cfg.seed,
                             ckpt=work / "resume.pt", progress=cfg.run.progress, log=log)
        atomic_torch_save(model.state_dict(), out / "checkpoint.pt")
        atomic_json(history, out / "history.json")
        emb = embed_eval(model, logmels, ok, meta, (EVAL_FOLD,))
        atomic_npz(out / "embeddings.npz", **emb)
        atomic_npz(out / "tsne.npz", **{k: tsne_2d(emb[k], cfg.seed) for k in ("x_a", "E_a", "x_t", "E_t")})
        m = run_metrics(emb, split, cfg)
        m.update(pair_info)
        m.update({"pretraining": pretraining, "training": training, "n_skipped_clips": int((~ok).sum()),
                  "n_train_pairs": int(len(tr)), "n_val_pairs": int(len(va))})
        atomic_json(m, out / "metrics.json")
        log(f"clap[{pretraining},{training}]: {pair_info['n_pairs']} pairs, accuracy {m['accuracy']:.3f}")
        return {"n_pairs": pair_info["n_pairs"]}
    stage, _ = run_stage(root, "clap", payload, compute, log)
    return stage


def build_clap(cfg: ExperimentConfig, bb: Stage) -> Clap:
    """CLAP from a backbone stage's weights and the pretrained text encoder; projectors seeded by cfg.seed."""
    spec = backbones.spec(cfg.backbone)
    state = torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True)
    torch.manual_seed(cfg.seed)
    audio = spec.from_state(cfg, state)
    if hasattr(audio, "checkpoint_activations"):
        audio.checkpoint_activations = cfg.run.checkpoint_activations
    text = build_text_encoder(cfg)
    return Clap(audio, text, cfg.d_embed)


# --- the grid ------------------------------------------------------------------------------------


def run_grid(cfg: ExperimentConfig, esc50_root: str | Path | None = None, artifacts: str | Path = "artifacts",
             quiet: bool = False, update_latest: bool = True, data_root: str | Path | None = None,
             step: str = "grid") -> GridResult | None:
    """Run (or load from the cache) every stage of the grid; `latest.json` points at the result unless
    `update_latest` is False (notebooks re-running one combination must not move the pointer). `step`
    "prepare" stops after the backbones, "clap" after the CLAP runs (returning None): jobs split the grid so."""
    cfg.validate()
    if step not in ("prepare", "clap", "grid"):
        raise ValueError(f"unknown step {step!r}; allowed: prepare, clap, grid")
    if cfg.run.release_memory:
        from .memory import fixed_mmap_threshold

        fixed_mmap_threshold()
    if cfg.profile == "paper":
        from .paper import run_paper_grid

        return run_paper_grid(cfg, esc50_root, artifacts, quiet=quiet, update_latest=update_latest,
                              data_root=data_root, step=step)
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    root = Path(artifacts)
    log = RunLog(root / "run.log", quiet)
    log(f"grid start: profile={cfg.profile} seed={cfg.seed} "
        f"combos={len(cfg.pretrainings) * len(cfg.trainings)}")
    esc = locate_esc50(esc50_root)
    meta = read_esc50_meta(esc)
    split = cfg.split
    # everything that can fail on a bad input is checked before the first stage runs
    check_evaluation_clips(meta, split.target)
    check_text_model(cfg.text_model, cfg.expected_vocab_size)
    for p in [*cfg.pretrainings, *(reference_name(r) for r in cfg.reference_weights)]:
        weights_fingerprint(cfg, level_source(cfg, p)[1])
    source = log.timed("captions", lambda: load_caption_source(cfg, data_root))
    fingerprint = log.timed("fingerprint", lambda: data_fingerprint(meta))
    feats = log.timed("features", lambda: features_stage(root, meta, fingerprint, cfg.audio, cfg.run.progress, log))
    log(f"target classes T ({len(split.target)}): {', '.join(split.target)}")
    levels = [*cfg.pretrainings, *(reference_name(r) for r in cfg.reference_weights)]
    bbs = {p: log.timed(f"backbone[{p}]", lambda p=p: backbone_stage(root, cfg, feats, meta, split, p, log))
           for p in levels}
    if step == "prepare":
        return None
    ok = np.load(feats.dir / "ok.npy")
    pair_sets = {t: training_pairs(cfg, meta, ok, split, t, source) for t in cfg.trainings}
    # the dirty level's captions hold every level's: one text stage, whichever levels this run trains
    dirty = pair_sets["dirty"][0] if "dirty" in pair_sets else training_pairs(cfg, meta, ok, split, "dirty", source)[0]
    text = log.timed("text", lambda: text_stage(root, cfg, list(dirty["caption"]), log))
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            pairs, info, fp = pair_sets[t]
            runs[(p, t)] = log.timed(f"clap[{p},{t}]", lambda p=p, t=t, pairs=pairs, info=info, fp=fp: clap_stage(
                root, cfg, feats, bbs[p], meta, split, p, t, pairs, info, fp, log, text))
    if step == "clap":
        return None
    payload = grid_payload(cfg, {f"{p}/{t}": s.key for (p, t), s in runs.items()}, {p: s.key for p, s in bbs.items()})
    pair_tables = {t: info for t, (_, info, _) in pair_sets.items()}

    def summary(out: Path, work: Path) -> dict:
        info = summarise(out, root, runs, bbs, cfg, pair_tables)
        backbone_summary(out, bbs, meta, ok, cfg, log)
        return info
    grid, _ = run_stage(root, "grid", payload, summary, log)
    if update_latest:
        atomic_json({"grid": relative(root, grid.dir), "key": grid.key, "timings": log.timings}, root / "latest.json")
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return load_grid(grid.dir)


def backbone_summary(out: Path, bbs: dict[str, Stage], meta: pd.DataFrame, ok: np.ndarray, cfg: ExperimentConfig,
                     log) -> None:
    """separability.csv (x_a of every backbone, all clips, 5-fold CV), network_audit.csv / .json (the audit of
    every backbone's x_a, ranked against the label information of its training) and shortcut.json (a published
    head used directly as a classifier of T on fold 5)."""
    from . import backbone_analysis as BA
    from .ontology import esc50_audioset_names

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
    log(f"backbones: probe accuracy {', '.join(f'{r.backbone} {r.probe:.2f}' for r in sep.itertuples())}"
        + "".join(f"; shortcut[{k}] {v['accuracy']:.3f}" for k, v in shortcut.items()))


def run_seeds(cfg: ExperimentConfig, seeds: tuple[int, ...], esc50_root: str | Path | None = None,
              artifacts: str | Path = "artifacts", quiet: bool = False,
              data_root: str | Path | None = None) -> pd.DataFrame:
    """The grid repeated over `seeds` (training seed; the class split stays fixed by `split_seed`).

    Returns one row per (seed, combination) and writes it, with the mean / spread per combination, under
    `<artifacts>/seeds/<key>/`. `latest.json` points at the grid of the first seed; `latest_seeds.json` at these.
    """
    from .uncertainty import seed_summary

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
    from .config import _one_of, config_from_params

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
