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

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from clap_lib.training.checkpoint import load_checkpoint, save_checkpoint
from clap_lib.config.experiment import ClapTrainConfig, PretrainConfig
from clap_lib.training.distributed import (
    World, epoch_order, full_precision, global_batches, global_clip_loss, seed_torch, single_process, wrap_model,
)
from clap_lib.models.clap import Clap
from clap_lib.training.pair_sources import CachedClips, ClipSource, PairData, PairSource, _as_tensor
from clap_lib.models.loss import clip_loss

__all__ = ["TrainingDiverged", "PairData", "train_clap", "pretrain_backbone", "calibrate_batchnorm",
           "backbone_features", "epoch_generator", "resolve_precision", "autocast", "grad_scaler", "best_path"]

# salts keep the random streams of the loops independent (batch order, dropout, SpecAugment)
SALT_CLAP, SALT_PRE = 11, 13
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is left in place."""


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> tuple[np.random.Generator, torch.Generator]:
    """Independent, reproducible RNGs for one epoch (numpy for batch order, torch for dropout/augment)."""
    ss = np.random.SeedSequence([seed, epoch, salt])
    np_rng = np.random.default_rng(ss)
    torch.manual_seed(int(ss.generate_state(1)[0]))  # dropout uses the global torch RNG
    return np_rng, torch.Generator().manual_seed(int(ss.generate_state(2)[1]))


def _check_finite(loss: torch.Tensor | float, where: str, epoch: int, step: int) -> None:
    value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)  # item(): no autograd warning
    if not math.isfinite(value):
        raise TrainingDiverged(f"{where}: non-finite loss ({value}) at epoch {epoch}, step {step}; "
                               "the last good checkpoint was kept")


# --- precision -------------------------------------------------------------------------------------


def resolve_precision(precision: str, device: torch.device) -> str:
    """fp32 on CPU (autocast is for CUDA only here); on CUDA "auto" is bf16 where supported, else fp16."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: allowed {list(PRECISIONS)}")
    if device.type != "cuda":
        return "fp32"
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def autocast(device: torch.device, precision: str):
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    # loss scaling is needed for fp16 only (bf16 has fp32's exponent range)
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16" and device.type == "cuda")


# --- checkpoints -----------------------------------------------------------------------------------


def _cpu_state(module: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def best_path(ckpt: Path, epoch: int) -> Path:
    """The best-validation state of `epoch`, beside the resume checkpoint `ckpt` (one file per improvement, so
    the resume checkpoint always names a file that exists: written before it, removed after it moves on)."""
    return ckpt.with_name(f"{ckpt.stem}.best-{epoch}{ckpt.suffix}")


class _Checkpoints:
    """Rank 0 writes; every rank reads (the work folder is shared). `ckpt=None`: nothing is written."""

    def __init__(self, ckpt: Path | None, world: World, log: Callable[[str], None]):
        self.ckpt, self.world, self.log = (Path(ckpt) if ckpt is not None else None), world, log

    def load(self) -> dict | None:
        state = load_checkpoint(self.ckpt, self.log)
        if state is None and self.ckpt is not None and self.world.is_main:  # a fresh start: no stale best states
            for old in self.ckpt.parent.glob(f"{self.ckpt.stem}.best-*{self.ckpt.suffix}"):
                old.unlink(missing_ok=True)
        if state is not None and state.get("best_epoch") is not None:
            best = load_checkpoint(best_path(self.ckpt, state["best_epoch"]), self.log)
            if best is None:  # the state to restore at the end is gone: resuming would end on a wrong model
                self.log(f"best-state file {best_path(self.ckpt, state['best_epoch'])} of checkpoint {self.ckpt} "
                         "is missing or corrupt; restarting this stage")
                if self.world.is_main:
                    self.ckpt.unlink(missing_ok=True)
                return None
            state["best_state"] = best
        if state is not None:
            self.log(f"resuming from checkpoint {self.ckpt}: {state.get('phase', 'pretraining')} epoch "
                     f"{state['epoch'] + 1} was the last completed")
        return state

    def save(self, state: dict, best: dict | None = None, best_epoch: int | None = None,
             previous_best: int | None = None) -> None:
        if self.ckpt is None or not self.world.is_main:
            return
        if best is not None:
            save_checkpoint(best, best_path(self.ckpt, best_epoch))
        save_checkpoint({**state, "best_epoch": best_epoch}, self.ckpt)
        if best is not None and previous_best is not None and previous_best != best_epoch:
            best_path(self.ckpt, previous_best).unlink(missing_ok=True)


def _epoch_batches(n: int, seed: int, key: int, salt: int, batch_size: int, fraction: float, what: str
                   ) -> list[np.ndarray]:
    batches = global_batches(epoch_order(n, seed, key, salt), batch_size, fraction)
    if not batches:
        raise ValueError(f"{n} {what} do not fill one batch of {batch_size} (the last incomplete batch of an "
                         "epoch is dropped): lower the batch size")
    return batches


def _val_batches(n: int, batch_size: int) -> list[np.ndarray]:
    return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


# --- supervised pretraining ----------------------------------------------------------------------


class _Classifier(nn.Module):
    """The backbone's supervised head as `forward`, the only call DistributedDataParallel sees."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self.backbone.classify(logmel, gen)


LOSSES = ("ce", "bce")


def pretrain_backbone(model: nn.Module, data: np.ndarray | ClipSource, labels: np.ndarray, train_idx: np.ndarray,
                      val_idx: np.ndarray, cfg: PretrainConfig, seed: int, ckpt: Path | None = None,
                      progress: bool = True, *, loss: str = "ce", world: World | None = None,
                      precision: str = "fp32", log: Callable[[str], None] = print,
                      on_step: Callable[[dict], None] | None = None) -> tuple[dict, list[dict]]:
    """Supervised training of `model.classify` on items `train_idx` of `data` (cached log-mels (n, frames, mels)
    or a clip source); returns the lowest-validation-loss state (on CPU) and the per-epoch history.

    loss "ce": `labels` are class indices 0..K-1 (single-label); "bce": a multi-hot (n, K) array (multi-label,
    as PANNs on AudioSet). History rows: epoch, train_loss, val_loss, val_acc (ce: top-1 accuracy; bce: share of
    items whose top-scored class is one of their labels), val_map (bce: macro average precision over classes
    with a validation positive), seconds.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: allowed {list(LOSSES)}")
    source = CachedClips(data) if isinstance(data, np.ndarray) else data
    world = world or single_process(next(model.parameters()).device)
    dev = world.device
    Y = torch.from_numpy(np.asarray(labels, np.int64 if loss == "ce" else np.float32))
    model.spec_augment = cfg.spec_augment
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    scaler = grad_scaler(dev, precision)
    ckpts = _Checkpoints(ckpt, world, log)
    history: list[dict] = []
    best_val, best_state, best_epoch, start = math.inf, None, None, 0
    if (state := ckpts.load()) is not None:
        model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        scaler.load_state_dict(state["scaler"])
        history, best_val, best_epoch, best_state = state["history"], state["best_val"], state["best_epoch"], \
            state.get("best_state")
        start = state["epoch"] + 1
    net = wrap_model(_Classifier(model), world)
    criterion = F.cross_entropy if loss == "ce" else F.binary_cross_entropy_with_logits
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        gen = seed_torch(seed, SALT_PRE, epoch, world.rank)
        batches = _epoch_batches(len(train_idx), seed, epoch, SALT_PRE, cfg.batch_size, 1.0, "training items")
        model.train()
        losses = []
        shares = [world.shard(np.asarray(train_idx)[b]) for b in batches]
        for step, (logmel, idx) in enumerate(tqdm(source.batches("train", shares, epoch, dev),
                                                  total=len(shares), desc=f"pretrain epoch {epoch + 1}/{cfg.epochs}",
                                                  disable=not (progress and world.is_main), leave=False)):
            with autocast(dev, precision):
                logits = net(logmel, gen)
            logits = full_precision(logits)
            target = Y[torch.from_numpy(np.asarray(idx))]
            value_t = criterion(logits, target.to(dev) if loss == "ce" else target.to(dev, logits.dtype))
            value = world.all_mean(value_t.item())  # equal shares: the mean of the shares' means
            _check_finite(value, "pretraining", epoch, step)
            opt.zero_grad(set_to_none=True)
            scaler.scale(value_t).backward()
            scaler.step(opt); scaler.update()
            losses.append(value)
            if on_step is not None:
                on_step({"phase": "pretrain", "epoch": epoch, "step": step, "loss": value})
        val = _evaluate_supervised(model, source, Y, np.asarray(val_idx), loss, world, precision)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **val, "seconds": time.time() - t0})
        improved = val["val_loss"] < best_val
        previous = best_epoch
        if improved:
            best_val, best_epoch, best_state = val["val_loss"], epoch, _cpu_state(model)
        ckpts.save({"epoch": epoch, "model": _cpu_state(model), "opt": opt.state_dict(), "scaler": scaler.state_dict(),
                    "history": history, "best_val": best_val}, best_state if improved else None, best_epoch, previous)
    if best_state is None:  # no epoch ran (epochs=0) or every validation loss was NaN
        best_state = _cpu_state(model)
    return best_state, history


@torch.no_grad()
def _evaluate_supervised(model: nn.Module, source: ClipSource, Y: torch.Tensor, idx: np.ndarray, loss: str,
                         world: World, precision: str, batch: int = 128) -> dict:
    model.eval()
    dev = world.device
    mine, sizes = world.split(idx)
    parts = []
    chunks = [mine[i : i + batch] for i in range(0, len(mine), batch)]
    for logmel, _ in source.batches("val", chunks, 0, dev):
        with autocast(dev, precision):
            parts.append(model.classify(logmel).float())  # scores: fp32 is plenty
    if not parts:  # this rank's share is empty (fewer validation items than ranks): the head's width
        n_out = [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features
        parts = [torch.zeros((0, n_out), device=dev)]
    scores = world.gather_uneven(torch.cat(parts), sizes).cpu()
    if not len(idx):
        return {"val_loss": float("nan"), "val_acc": float("nan")}
    target = Y[idx]
    if loss == "ce":
        return {"val_loss": float(F.cross_entropy(scores, target)),
                "val_acc": float((scores.argmax(1) == target).float().mean())}
    from sklearn.metrics import average_precision_score

    s, t = scores.numpy(), target.numpy()
    has = t.sum(0) > 0
    m_ap = float(average_precision_score(t[:, has], s[:, has], average="macro")) if has.any() else float("nan")
    return {"val_loss": float(F.binary_cross_entropy_with_logits(scores, target)),
            "val_acc": float(t[np.arange(len(t)), s.argmax(1)].mean()), "val_map": m_ap}


# --- CLAP training -------------------------------------------------------------------------------


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


def _progress(it, desc: str, show: bool, total: int | None = None):
    return tqdm(it, desc=desc, total=total, disable=not show, leave=False)


def _step(loss: torch.Tensor, opt, scaler, params: list, grad_clip: float, where: str, epoch: int, step: int,
          on_step, phase: str) -> float:
    value = loss.item()  # the global-batch loss: the same on every rank
    _check_finite(value, where, epoch, step)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)  # clip the true gradient, not the scaled one
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt); scaler.update()
    if on_step is not None:
        on_step({"phase": phase, "epoch": epoch, "step": step, "loss": value})
    return value


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
