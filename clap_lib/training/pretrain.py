"""The audio backbone before CLAP: supervised pretraining on clip labels (`pretrain_backbone`) and BatchNorm statistics
recomputed on the run's clips (`calibrate_batchnorm`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from clap_lib.config.experiment import PretrainConfig
from clap_lib.training.common import (
    SALT_PRE,
    _check_finite,
    _Checkpoints,
    _cpu_state,
    _epoch_batches,
    autocast,
    grad_scaler,
)
from clap_lib.training.distributed import World, full_precision, seed_torch, single_process, wrap_model
from clap_lib.training.pair_sources import CachedClips, ClipSource, _as_tensor


class _Classifier(nn.Module):
    """The backbone's supervised head as `forward`, the only call DistributedDataParallel sees."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self.backbone.classify(logmel, gen)


LOSSES = ("ce", "bce")


def pretrain_backbone(
    model: nn.Module,
    data: np.ndarray | ClipSource,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: PretrainConfig,
    seed: int,
    ckpt: Path | None = None,
    progress: bool = True,
    *,
    loss: str = "ce",
    world: World | None = None,
    precision: str = "fp32",
    log: Callable[[str], None] = print,
    on_step: Callable[[dict], None] | None = None,
) -> tuple[dict, list[dict]]:
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
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        scaler.load_state_dict(state["scaler"])
        history, best_val, best_epoch, best_state = (
            state["history"],
            state["best_val"],
            state["best_epoch"],
            state.get("best_state"),
        )
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
        for step, (logmel, idx) in enumerate(
            tqdm(
                source.batches("train", shares, epoch, dev),
                total=len(shares),
                desc=f"pretrain epoch {epoch + 1}/{cfg.epochs}",
                disable=not (progress and world.is_main),
                leave=False,
            )
        ):
            with autocast(dev, precision):
                logits = net(logmel, gen)
            logits = full_precision(logits)
            target = Y[torch.from_numpy(np.asarray(idx))]
            value_t = criterion(logits, target.to(dev) if loss == "ce" else target.to(dev, logits.dtype))
            value = world.all_mean(value_t.item())  # equal shares: the mean of the shares' means
            _check_finite(value, "pretraining", epoch, step)
            opt.zero_grad(set_to_none=True)
            scaler.scale(value_t).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(value)
            if on_step is not None:
                on_step({"phase": "pretrain", "epoch": epoch, "step": step, "loss": value})
        val = _evaluate_supervised(model, source, Y, np.asarray(val_idx), loss, world, precision)
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)), **val, "seconds": time.time() - t0})
        improved = val["val_loss"] < best_val
        previous = best_epoch
        if improved:
            best_val, best_epoch, best_state = val["val_loss"], epoch, _cpu_state(model)
        ckpts.save(
            {
                "epoch": epoch,
                "model": _cpu_state(model),
                "opt": opt.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "best_val": best_val,
            },
            best_state if improved else None,
            best_epoch,
            previous,
        )
    if best_state is None:  # no epoch ran (epochs=0) or every validation loss was NaN
        best_state = _cpu_state(model)
    return best_state, history


@torch.no_grad()
def _evaluate_supervised(
    model: nn.Module,
    source: ClipSource,
    Y: torch.Tensor,
    idx: np.ndarray,
    loss: str,
    world: World,
    precision: str,
    batch: int = 128,
) -> dict:
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
        return {
            "val_loss": float(F.cross_entropy(scores, target)),
            "val_acc": float((scores.argmax(1) == target).float().mean()),
        }
    from sklearn.metrics import average_precision_score

    s, t = scores.numpy(), target.numpy()
    has = t.sum(0) > 0
    m_ap = float(average_precision_score(t[:, has], s[:, has], average="macro")) if has.any() else float("nan")
    return {
        "val_loss": float(F.binary_cross_entropy_with_logits(scores, target)),
        "val_acc": float(t[np.arange(len(t)), s.argmax(1)].mean()),
        "val_map": m_ap,
    }


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
