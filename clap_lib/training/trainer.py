"""The training loops of every profile: supervised backbone training and the paper's CLAP recipe.

One loop each, whatever feeds it (:mod:`clap_lib.training.pair_sources`: cached log-mels or audio streamed from disk),
on one process or data-parallel (:mod:`clap_lib.training.distributed`), in fp32 or mixed precision.

Rules shared by both loops:

* Batch order: :func:`distributed.epoch_order` over the training items, seeded by (seed, salt, epoch key), cut
  into global batches by :func:`distributed.global_batches`; each rank trains on its slice of each batch.
* The last incomplete batch of an epoch is dropped: the contrastive loss of a batch depends on its size (the
  number of negatives), and every rank must get an equal share; so every step has the same global batch size.
* Dropout / SpecAugment draw from :func:`distributed.seed_torch` (seed, salt, epoch key, rank).
* Validation: fixed consecutive batches (nothing dropped, split over ranks unevenly if need be), loss weighted
  by batch size; for CLAP the same capped subset of validation pairs (``max_val_pairs``, seeded) in both
  phases, so that the whole validation curve is measured on the same pairs.
* Resumable at epoch ends through :mod:`clap_lib.training.checkpoint` (verified; a corrupt file is reported by path,
  removed, and the stage restarts). A checkpoint holds only what changes: in the CLAP frozen phase the
  projectors and the temperature; otherwise the model state. The best-validation state is a separate file
  written only when it improves. A run killed at any point and resumed ends bit-identical to an
  uninterrupted one on CPU.

The CLAP recipe (paper, after public CLAP): backbones frozen for the first epochs with Adam at 1e-4, then
unfrozen with Adam at 1e-5 until the validation loss stops improving; gradient norm clipped at 100; logits
clamped to [-100, 100]; ReduceLROnPlateau(factor 0.1, patience 10); batch 128. "Frozen" means eval mode (no
dropout, BN running stats), so in the frozen phase x_a and x_t of a cached source are computed once.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clap_lib.config.experiment import ClapTrainConfig
from clap_lib.models.clap import Clap
from clap_lib.models.loss import clip_loss
from clap_lib.training.common import (
    SALT_CLAP,
    _Checkpoints,
    _cpu_state,
    _epoch_batches,
    _progress,
    _step,
    _val_batches,
    autocast,
    grad_scaler,
)
from clap_lib.training.distributed import (
    World,
    full_precision,
    global_clip_loss,
    seed_torch,
    single_process,
    wrap_model,
)
from clap_lib.training.pair_sources import PairData, PairSource, _as_tensor

# --- precision -------------------------------------------------------------------------------------


# --- checkpoints -----------------------------------------------------------------------------------


# --- supervised pretraining ----------------------------------------------------------------------


# --- CLAP training -------------------------------------------------------------------------------


@torch.no_grad()
def backbone_features(model: Clap, logmels: np.ndarray, captions: list[str], clips: np.ndarray,
                      batch: int = 128, device: torch.device = torch.device("cpu"),
                      precision: str = "fp32") -> tuple[torch.Tensor, torch.Tensor]:
    """x_a for `clips` (rows aligned with `clips`) and x_t for every caption, backbones in eval mode on `device`
    (the model's), in fp32 (computed in `precision`)."""
    model.eval()
    X = _as_tensor(logmels)
    with autocast(device, precision):
        x_a = torch.cat([full_precision(model.audio(X[clips[i : i + batch]].to(device)))
                         for i in range(0, len(clips), batch)]) \
            if len(clips) else torch.empty(0, model.audio.embed_dim, device=device)
        x_t = torch.cat([full_precision(model.text({k: v.to(device) for k, v in
                                                    model.text.tokenize(captions[i : i + batch]).items()}))
                         for i in range(0, len(captions), batch)])
    return x_a, x_t


class _Heads(nn.Module):
    """What the frozen phase trains (both projectors and the temperature) as one module whose `forward`,
    (x_a, x_t) -> (E_a, E_t, logit scale), is what DistributedDataParallel sees. Shares the model's parameters;
    its state-dict keys are the model's."""

    def __init__(self, model: Clap):
        super().__init__()
        self.audio_proj, self.text_proj, self.logit_scale = model.audio_proj, model.text_proj, model.logit_scale

    def forward(self, x_a: torch.Tensor, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return F.normalize(self.audio_proj(x_a), dim=-1), F.normalize(self.text_proj(x_t), dim=-1), self.logit_scale


def _tokens(model: Clap, captions: Sequence[str], device: torch.device) -> tuple[dict, torch.Tensor]:
    """Tokens of each distinct caption once, and the index of each caption's row among them."""
    uniq, inv = np.unique(np.asarray(captions, dtype=object).astype(str), return_inverse=True)
    tokens = {k: v.to(device) for k, v in model.text.tokenize([str(u) for u in uniq]).items()}
    return tokens, torch.from_numpy(inv.reshape(-1)).to(device)


def _encode(model: Clap, logmel: torch.Tensor, captions: Sequence[str], device: torch.device,
            precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """x_a, x_t of one batch, no gradient (backbones as they are: eval mode in the frozen phase)."""
    tokens, inv = _tokens(model, captions, device)
    with torch.no_grad(), autocast(device, precision):
        return model.audio(logmel), model.text(tokens)[inv]


def train_clap(model: Clap, source: PairSource, cfg: ClapTrainConfig, seed: int, ckpt: Path | None = None,
               world: World | None = None, precision: str = "fp32", progress: bool = True,
               log: Callable[[str], None] = print, on_step: Callable[[dict], None] | None = None) -> list[dict]:
    """Phase 1 (frozen backbones) then phase 2 (unfrozen) with early stopping; restores the best-val state.

    `source`: :class:`PairData` (cached log-mels) or :class:`pair_sources.StreamedPairs`. `world`: the data-parallel
    ranks (default one process on the model's device); `precision` as resolved by :func:`resolve_precision`.
    `on_step({"phase", "epoch", "step", "loss"})` after every optimiser step (epoch = the epoch key: phase-2
    epochs count on from `frozen_epochs`). Returns per-epoch history: phase, epoch, train/val loss, lr, seconds.
    """
    world = world or single_process(next(model.parameters()).device)
    dev = world.device
    ckpts = _Checkpoints(ckpt, world, log)
    state = ckpts.load()
    history: list[dict] = []
    val_rows = _val_rows(source.size("val"), cfg.max_val_pairs, seed)
    heads = _Heads(model)
    head_params = [p for p in heads.parameters() if p.requires_grad]
    # ---- phase 1: frozen backbones; only projectors and the temperature learn
    opt, scaler = torch.optim.Adam(head_params, lr=cfg.frozen_lr), grad_scaler(dev, precision)
    start = 0
    if state is not None:
        history = state["history"]
        if state["phase"] == "frozen":
            heads.load_state_dict(state["heads"]); opt.load_state_dict(state["opt"])
            scaler.load_state_dict(state["scaler"]); start = state["epoch"] + 1
        else:
            start = cfg.frozen_epochs
    if start < cfg.frozen_epochs:
        net = wrap_model(heads, world)
        feats = _frozen_features(model, source, dev, precision, val_rows) if source.deterministic_eval else None
        for epoch in range(start, cfg.frozen_epochs):
            t0 = time.time()
            seed_torch(seed, SALT_CLAP, epoch, world.rank)
            model.eval(); heads.train()
            losses = []
            batches = _epoch_batches(source.size("train"), seed, epoch, SALT_CLAP, cfg.batch_size, 1.0,
                                     "training pairs")
            shares = [world.shard(b) for b in batches]
            if feats is not None:
                encoded = ((feats["train"][0][ix], feats["train"][1][ix])
                           for ix in (torch.from_numpy(m).to(dev) for m in shares))
            else:  # streamed segments: a new one each epoch, so encoded batch by batch
                encoded = (_encode(model, logmel, caps, dev, precision)
                           for logmel, caps in source.batches("train", shares, epoch, dev))
            for step, (x_a, x_t) in enumerate(_progress(encoded, f"CLAP frozen epoch {epoch + 1}",
                                                        progress and world.is_main, len(shares))):
                with autocast(dev, precision):
                    E_a, E_t, scale = net(x_a, x_t)
                loss = global_clip_loss(E_a, E_t, scale, cfg.logit_clamp, world)
                losses.append(_step(loss, opt, scaler, head_params, cfg.grad_clip, "CLAP frozen phase", epoch, step,
                                    on_step, "frozen"))
            val = _val_loss(model, source, val_rows, cfg, world, precision, feats["val"] if feats else None)
            history.append(_record("frozen", epoch, losses, val, opt, t0))
            ckpts.save({"phase": "frozen", "epoch": epoch, "heads": _cpu_state(heads), "opt": opt.state_dict(),
                        "scaler": scaler.state_dict(), "history": history})
        del feats
    # ---- phase 2: everything learns, until the validation loss stops improving
    unused = _unused_by_clip_loss(model, source, dev) if cfg.max_unfrozen_epochs > 0 else []
    params = [p for p in model.parameters() if p.requires_grad and not any(p is u for u in unused)]
    opt, scaler = torch.optim.Adam(params, lr=cfg.unfrozen_lr), grad_scaler(dev, precision)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    best_val, best_state, best_epoch, bad, start = math.inf, None, None, 0, 0
    if state is not None and state["phase"] == "unfrozen":
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); sched.load_state_dict(state["sched"])
        scaler.load_state_dict(state["scaler"])
        best_val, best_state, best_epoch = state["best_val"], state.get("best_state"), state["best_epoch"]
        bad, start = state["bad"], state["epoch"] + 1
    for u in unused:  # DDP averages exactly the parameters that require a gradient, and each must get one
        u.requires_grad_(False)
    try:
        net = wrap_model(model, world) if start < cfg.max_unfrozen_epochs else None
        for epoch in range(start, cfg.max_unfrozen_epochs):
            if bad >= cfg.early_stop_patience:
                break
            t0 = time.time()
            key = cfg.frozen_epochs + epoch  # phase-2 epochs draw batches and segments of their own
            seed_torch(seed, SALT_CLAP, key, world.rank)
            model.train()
            batches = _epoch_batches(source.size("train"), seed, key, SALT_CLAP, cfg.batch_size,
                                     cfg.unfrozen_pair_fraction, "training pairs")
            losses = []
            stream = source.batches("train", [world.shard(b) for b in batches], key, dev)
            for step, (logmel, caps) in enumerate(_progress(stream, f"CLAP unfrozen epoch {epoch + 1}",
                                                            progress and world.is_main, len(batches))):
                tokens, inv = _tokens(model, caps, dev)
                with autocast(dev, precision):
                    out = net(logmel, tokens)
                loss = global_clip_loss(out.E_a, out.E_t[inv], out.logit_scale, cfg.logit_clamp, world)
                losses.append(_step(loss, opt, scaler, params, cfg.grad_clip, "CLAP unfrozen phase", key, step,
                                    on_step, "unfrozen"))
            val = _val_loss(model, source, val_rows, cfg, world, precision, None)
            sched.step(val)
            previous, improved = best_epoch, val < best_val
            if improved:
                best_val, best_state, best_epoch, bad = val, _cpu_state(model), epoch, 0
            else:
                bad += 1
            history.append(_record("unfrozen", epoch, losses, val, opt, t0))
            ckpts.save({"phase": "unfrozen", "epoch": epoch, "model": _cpu_state(model), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "scaler": scaler.state_dict(), "best_val": best_val, "bad": bad,
                        "history": history}, best_state if improved else None, best_epoch, previous)
    finally:
        for u in unused:
            u.requires_grad_(True)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _unused_by_clip_loss(model: Clap, source: PairSource, dev: torch.device) -> list[nn.Parameter]:
    """Trainable parameters the CLIP loss never reaches (the audio backbone's supervised head, BERT's pooler),
    found by one backward pass on two training pairs in eval mode (no dropout drawn, no statistic updated; the
    graph is the same as in training)."""
    params = [p for p in model.parameters() if p.requires_grad]
    was = model.training
    model.eval()
    try:
        logmel, caps = next(iter(source.batches("train", [np.arange(min(2, source.size("train")))], 0, dev)))
        tokens, inv = _tokens(model, caps, dev)
        out = model(logmel, tokens)
        loss = clip_loss(out.E_a, out.E_t[inv], out.logit_scale)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
    finally:
        model.train(was)
    return [p for p, g in zip(params, grads) if g is None]


def _frozen_features(model: Clap, source: PairData, dev: torch.device, precision: str,
                     val_rows: np.ndarray) -> dict:
    """{"train": x_a, x_t of every training pair, "val": of the pairs `val_rows`}, in eval mode."""
    return {"train": _eval_features(model, source, "train", None, dev, precision),
            "val": _eval_features(model, source, "val", val_rows, dev, precision) if len(val_rows) else None}


def _eval_features(model: Clap, source: PairData, split: str, rows: np.ndarray | None, dev: torch.device,
                   precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()

    @torch.no_grad()
    def audio(logmel):
        with autocast(dev, precision):
            return model.audio(logmel)

    @torch.no_grad()
    def text(captions):
        with autocast(dev, precision):
            return model.text({k: v.to(dev) for k, v in model.text.tokenize(captions).items()})
    return source.frozen_features(split, audio, text, dev, rows)


def _val_rows(n: int, cap: int | None, seed: int) -> np.ndarray:
    """The validation pairs scored every epoch of both phases: all, or a seeded subset of `cap` (in order)."""
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 99]).choice(n, cap, replace=False))


@torch.no_grad()
def _val_loss(model: Clap, source: PairSource, rows: np.ndarray, cfg: ClapTrainConfig, world: World, precision: str,
              feats: tuple[torch.Tensor, torch.Tensor] | None) -> float:
    """CLIP loss over fixed consecutive batches of the validation pairs `rows`, weighted by batch size; each
    batch split over the ranks (unevenly if need be: nothing is dropped). `feats`: x_a, x_t of `rows`."""
    model.eval()
    dev = world.device
    shares = [world.split(b) for b in _val_batches(len(rows), cfg.batch_size)]  # positions in `rows`
    if feats is None and source.deterministic_eval and len(rows):  # each clip encoded once, not once per caption
        feats = _eval_features(model, source, "val", rows, dev, precision)
    if feats is not None:
        encoded = ((feats[0][ix], feats[1][ix]) for ix in (torch.from_numpy(m).to(dev) for m, _ in shares))
    else:
        encoded = (_encode(model, logmel, caps, dev, precision) if len(caps) else (None, None)
                   for logmel, caps in source.batches("val", [rows[m] for m, _ in shares], 0, dev))
    d = model.audio_proj.linear1.out_features
    losses, weights = [], []
    for (x_a, x_t), (_, sizes) in zip(encoded, shares):
        E_a = E_t = torch.zeros((0, d), device=dev, dtype=full_precision(model.logit_scale.detach()).dtype)
        if x_a is not None and len(x_a):
            with autocast(dev, precision):
                E_a, E_t = full_precision(model.embed_audio(x_a)), full_precision(model.embed_text(x_t))
        E_a, E_t = world.gather_uneven(E_a, sizes), world.gather_uneven(E_t, sizes)
        losses.append(clip_loss(E_a, E_t, model.logit_scale, cfg.logit_clamp).item())
        weights.append(sum(sizes))
    return float(np.average(losses, weights=weights)) if losses else float("nan")


def _record(phase: str, epoch: int, losses: list[float], val: float, opt, t0: float) -> dict:
    return {"phase": phase, "epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_loss": val, "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t0}
