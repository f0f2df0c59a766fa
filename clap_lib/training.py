"""Training loops: supervised CNN14 pretraining and the paper's CLAP recipe.

Both are resumable: an epoch-end checkpoint is written atomically, and every source of randomness in
an epoch (batch order, dropout, SpecAugment) is seeded from (seed, epoch), so a run killed at any
point and resumed ends bit-identical to an uninterrupted one on CPU.

The CLAP recipe (paper, after public CLAP): backbones frozen for the first epochs with Adam at 1e-4,
then unfrozen with Adam at 1e-5 until the validation loss stops improving; gradient norm clipped at
100; logits clamped to [-100, 100]; ReduceLROnPlateau(factor 0.1, patience 10); audio normalised to
zero mean / unit variance; batch 128. "Frozen" means eval mode (no dropout, BN running stats), so
in the frozen phase x_a and x_t are fixed and computed once per clip / caption.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .io import atomic_torch_save
from .models import Clap, Cnn14, clip_loss


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is left in place."""


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> tuple[np.random.Generator, torch.Generator]:
    """Independent, reproducible RNGs for one epoch (numpy for batch order, torch for dropout/augment)."""
    ss = np.random.SeedSequence([seed, epoch, salt])
    np_rng = np.random.default_rng(ss)
    torch.manual_seed(int(ss.generate_state(1)[0]))  # dropout uses the global torch RNG
    return np_rng, torch.Generator().manual_seed(int(ss.generate_state(2)[1]))


def _as_tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing `a`'s memory, also when `a` is a read-only memory map (cached log-mels): training only
    reads and indexes it (indexing copies), so torch's warning about non-writable arrays does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _check_finite(loss: torch.Tensor | float, where: str, epoch: int, step: int) -> None:
    value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)  # item(): no autograd warning
    if not math.isfinite(value):
        raise TrainingDiverged(f"{where}: non-finite loss ({value}) at epoch {epoch}, step {step}; "
                               "the last good checkpoint was kept")


def _load_resume(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # a half-written checkpoint cannot exist (atomic save), but a corrupt disk can
        return None


# --- supervised pretraining ----------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.2
    spec_augment: bool = True


def pretrain_backbone(model: Cnn14, logmels: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
                      val_idx: np.ndarray, cfg: PretrainConfig, seed: int, ckpt: Path | None = None,
                      progress: bool = True) -> tuple[dict, list[dict]]:
    """Cross-entropy classification of `labels` (0..K-1); returns the best-validation state and history."""
    model.spec_augment = cfg.spec_augment
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list[dict] = []
    best = (-1.0, copy.deepcopy(model.state_dict()))
    start = 0
    if (state := _load_resume(ckpt)) is not None:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        history, best, start = state["history"], state["best"], state["epoch"] + 1
    X = _as_tensor(logmels)
    y = torch.from_numpy(labels).long()
    for epoch in range(start, cfg.epochs):
        rng, gen = epoch_generator(seed, epoch, salt=1)
        model.train()
        t0, losses = time.time(), []
        order = rng.permutation(train_idx)
        batches = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        for step, b in enumerate(tqdm(batches, desc=f"pretrain epoch {epoch + 1}/{cfg.epochs}",
                                      disable=not progress, leave=False)):
            loss = F.cross_entropy(model.classify(X[b], gen), y[b])
            _check_finite(loss, "pretraining", epoch, step)
            opt.zero_grad(); loss.backward(); opt.step()
            losses.append(loss.item())
        val_acc = evaluate_classifier(model, X[val_idx], y[val_idx])
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_acc": val_acc,
                        "seconds": time.time() - t0})
        if val_acc > best[0]:
            best = (val_acc, copy.deepcopy(model.state_dict()))
        if ckpt is not None:
            atomic_torch_save({"model": model.state_dict(), "opt": opt.state_dict(), "history": history,
                               "best": best, "epoch": epoch}, ckpt)
    return best[1], history


@torch.no_grad()
def evaluate_classifier(model: Cnn14, X: torch.Tensor, y: torch.Tensor, batch: int = 128) -> float:
    model.eval()
    pred = torch.cat([model.classify(X[i : i + batch]).argmax(1) for i in range(0, len(X), batch)])
    return float((pred == y).float().mean())


# --- CLAP training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClapTrainConfig:
    frozen_epochs: int = 5  # (paper: 5)
    frozen_lr: float = 1e-4
    unfrozen_lr: float = 1e-5
    max_unfrozen_epochs: int = 100  # "until validation loss stops improving"
    early_stop_patience: int = 3
    unfrozen_pair_fraction: float = 1.0  # share of training pairs visited per unfrozen epoch (lab scale-down)
    max_val_pairs: int | None = None  # cap on validation pairs scored per epoch (lab scale-down)
    batch_size: int = 128
    grad_clip: float = 100.0
    logit_clamp: float = 100.0
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    val_fraction: float = 0.2


@dataclass(frozen=True)
class PairData:
    """Training material for one CLAP run: clip-indexed log-mels and caption-indexed texts."""

    logmels: np.ndarray  # (n_clips, frames, mels)
    captions: list[str]  # unique captions
    train: np.ndarray  # (n_pairs, 2) int: (clip index, caption index)
    val: np.ndarray


@torch.no_grad()
def calibrate_batchnorm(module: torch.nn.Module, X: np.ndarray | torch.Tensor, batch: int = 128, seed: int = 0) -> int:
    """Re-estimate every BatchNorm's running mean / variance as the plain average over the clips `X`.

    Why: when "frozen" only means "no gradient" (requires_grad=False on a module left in train mode, the
    usual way), BatchNorm statistics follow the CLAP training audio during the frozen epochs. Here the
    frozen phase runs the backbones in eval mode (so x_a can be computed once); this one pass gives them
    the statistics such a phase would converge to. For a randomly initialised backbone (pretraining "none") it matters: its
    initial statistics (mean 0, variance 1) do not match log-mel input in dB, and the features collapse.
    Dropout stays off and the batch order is seeded, so the result is deterministic. Returns the number of
    BatchNorm layers updated.
    """
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    was_training = module.training
    module.eval()
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
        m.train()
    X = X if isinstance(X, torch.Tensor) else _as_tensor(np.asarray(X))
    # a fixed shuffle: batches mix classes, so the average of batch variances is close to the global one
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(X)))
    for i in range(0, len(X), batch):
        module(X[order[i : i + batch]])
    for m, mom in zip(bns, saved):
        m.momentum = mom
        m.eval()
    module.train(was_training)
    return len(bns)


@torch.no_grad()
def backbone_features(model: Clap, logmels: np.ndarray, captions: list[str], clips: np.ndarray,
                      batch: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """x_a for `clips` (rows aligned with `clips`) and x_t for every caption, backbones in eval mode."""
    model.eval()
    X = _as_tensor(logmels)
    x_a = torch.cat([model.audio(X[clips[i : i + batch]]) for i in range(0, len(clips), batch)]) \
        if len(clips) else torch.empty(0, model.audio.embed_dim)
    x_t = torch.cat([model.text(model.text.tokenize(captions[i : i + batch]))
                     for i in range(0, len(captions), batch)])
    return x_a, x_t


def _pair_loss(model: Clap, x_a: torch.Tensor, x_t: torch.Tensor, clamp: float) -> torch.Tensor:
    return clip_loss(model.embed_audio(x_a), model.embed_text(x_t), model.logit_scale, clamp)


def train_clap(model: Clap, data: PairData, cfg: ClapTrainConfig, seed: int, ckpt: Path | None = None,
               progress: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Phase 1 (frozen backbones) then phase 2 (unfrozen) with early stopping; restores the best-val state.

    Returns per-epoch history: phase, epoch, train/val loss, lr, seconds.
    """
    history: list[dict] = []
    state = _load_resume(ckpt)
    # ---- phase 1: frozen backbones; only projectors and the temperature learn
    proj_params = [*model.audio_proj.parameters(), *model.text_proj.parameters(), model.logit_scale]
    opt = torch.optim.Adam(proj_params, lr=cfg.frozen_lr)
    start = 0
    if state is not None:
        # a frozen-phase checkpoint holds only what that phase trains (the backbones are rebuilt unchanged)
        model.load_state_dict(state["model"], strict=state["phase"] != "frozen"); history = state["history"]
        if state["phase"] == "frozen":
            opt.load_state_dict(state["opt"]); start = state["epoch"] + 1
        else:
            start = cfg.frozen_epochs
    if start < cfg.frozen_epochs:
        used = np.unique(np.concatenate([data.train[:, 0], data.val[:, 0]]))
        x_a_used, x_t = backbone_features(model, data.logmels, data.captions, used)
        row = np.full(len(data.logmels), -1); row[used] = np.arange(len(used))
        x_a_all = x_a_used[torch.from_numpy(row)]  # rows of unused clips are never indexed
    for epoch in range(start, cfg.frozen_epochs):
        rng, _ = epoch_generator(seed, epoch, salt=2)
        t0 = time.time()
        model.audio_proj.train(); model.text_proj.train()
        losses = []
        for step, b in enumerate(_batches(rng.permutation(len(data.train)), cfg.batch_size)):
            a, t = data.train[b, 0], data.train[b, 1]
            loss = _pair_loss(model, x_a_all[a], x_t[t], cfg.logit_clamp)
            _check_finite(loss, "CLAP frozen phase", epoch, step)
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(proj_params, cfg.grad_clip)
            opt.step(); losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = _mean_loss(model, x_a_all, x_t, data.val, cfg)
        history.append(_record("frozen", epoch, losses, val, opt, t0))
        if ckpt is not None:
            atomic_torch_save({"phase": "frozen", "epoch": epoch, "model": _trainable_when_frozen(model),
                               "opt": opt.state_dict(), "history": history}, ckpt)
    # ---- phase 2: everything learns, until the validation loss stops improving
    opt = torch.optim.Adam(model.parameters(), lr=cfg.unfrozen_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    best_val, best_state, bad, start = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    if state is not None and state["phase"] == "unfrozen":
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        best_val, best_state, bad, start = state["best_val"], state["best_state"], state["bad"], state["epoch"] + 1
        history = state["history"]
    val_rows = data.val
    if cfg.max_val_pairs is not None and len(val_rows) > cfg.max_val_pairs:
        val_rows = val_rows[np.random.default_rng([seed, 99]).choice(len(val_rows), cfg.max_val_pairs, replace=False)]
    X = _as_tensor(data.logmels)
    for epoch in range(start, cfg.max_unfrozen_epochs):
        if bad >= cfg.early_stop_patience:
            break
        rng, _ = epoch_generator(seed, epoch, salt=3)
        t0 = time.time()
        model.train()
        order = rng.permutation(len(data.train))
        order = order[: max(1, int(round(cfg.unfrozen_pair_fraction * len(order))))]
        losses = []
        batches = list(_batches(order, cfg.batch_size))
        for step, b in enumerate(tqdm(batches, desc=f"CLAP unfrozen epoch {epoch + 1}", disable=not progress, leave=False)):
            a, t = data.train[b, 0], data.train[b, 1]
            uniq, inv = np.unique(t, return_inverse=True)  # encode each distinct caption once
            x_t = model.text(model.text.tokenize([data.captions[i] for i in uniq]))[torch.from_numpy(inv)]
            loss = _pair_loss(model, model.audio(X[a]), x_t, cfg.logit_clamp)
            _check_finite(loss, "CLAP unfrozen phase", epoch, step)
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step(); losses.append(loss.item())
        val_clips = np.unique(val_rows[:, 0])
        x_a_val, x_t_all = backbone_features(model, data.logmels, data.captions, val_clips)
        row = np.full(len(data.logmels), -1); row[val_clips] = np.arange(len(val_clips))
        with torch.no_grad():
            val = _mean_loss(model, x_a_val[torch.from_numpy(row)], x_t_all, val_rows, cfg)
        sched.step(val)
        if val < best_val:
            best_val, best_state, bad = val, copy.deepcopy(model.state_dict()), 0
        else:
            bad += 1
        history.append(_record("unfrozen", epoch, losses, val, opt, t0))
        if ckpt is not None:
            atomic_torch_save({"phase": "unfrozen", "epoch": epoch, "model": model.state_dict(), "opt": opt.state_dict(),
                               "sched": sched.state_dict(), "best_val": best_val, "best_state": best_state,
                               "bad": bad, "history": history}, ckpt)
    if cfg.max_unfrozen_epochs > 0:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _trainable_when_frozen(model: Clap) -> dict:
    """Projector and temperature weights: all the frozen phase changes (a full state is ~100x larger)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(("audio_proj.", "text_proj.", "logit_scale"))}


def _batches(order: np.ndarray, size: int):
    for i in range(0, len(order), size):
        yield order[i : i + size]


def _mean_loss(model: Clap, x_a_all: torch.Tensor, x_t: torch.Tensor, pairs: np.ndarray, cfg: ClapTrainConfig) -> float:
    """Validation loss: the CLIP loss over fixed, consecutive batches of the validation pairs."""
    losses, weights = [], []
    for b in _batches(np.arange(len(pairs)), cfg.batch_size):
        a, t = pairs[b, 0], pairs[b, 1]
        losses.append(_pair_loss(model, x_a_all[a], x_t[t], cfg.logit_clamp).item()); weights.append(len(b))
    return float(np.average(losses, weights=weights))


def _record(phase: str, epoch: int, losses: list[float], val: float, opt, t0: float) -> dict:
    return {"phase": phase, "epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_loss": val, "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t0}


def config_dict(cfg) -> dict:
    return asdict(cfg)
