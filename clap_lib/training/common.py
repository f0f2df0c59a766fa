"""What both trainers share: the finite-loss check, mixed precision, per-epoch checkpoints, seeded epoch batches, one
optimiser step."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from clap_lib.config.experiment import PRECISIONS
from clap_lib.training.checkpoint import load_checkpoint, save_checkpoint
from clap_lib.training.distributed import World, epoch_order, global_batches

# salts keep the random streams of the loops independent (batch order, dropout, SpecAugment)
SALT_CLAP, SALT_PRE = 11, 13


class TrainingDiverged(RuntimeError):
    """The loss became NaN/inf; the last good checkpoint is left in place."""


def _check_finite(loss: torch.Tensor | float, where: str, epoch: int, step: int) -> None:
    value = loss.item() if isinstance(loss, torch.Tensor) else float(loss)  # item(): no autograd warning
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"{where}: non-finite loss ({value}) at epoch {epoch}, step {step}; the last good checkpoint was kept"
        )


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
                self.log(
                    f"best-state file {best_path(self.ckpt, state['best_epoch'])} of checkpoint {self.ckpt} "
                    "is missing or corrupt; restarting this stage"
                )
                if self.world.is_main:
                    self.ckpt.unlink(missing_ok=True)
                return None
            state["best_state"] = best
        if state is not None:
            self.log(
                f"resuming from checkpoint {self.ckpt}: {state.get('phase', 'pretraining')} epoch "
                f"{state['epoch'] + 1} was the last completed"
            )
        return state

    def save(
        self, state: dict, best: dict | None = None, best_epoch: int | None = None, previous_best: int | None = None
    ) -> None:
        if self.ckpt is None or not self.world.is_main:
            return
        if best is not None:
            save_checkpoint(best, best_path(self.ckpt, best_epoch))
        save_checkpoint({**state, "best_epoch": best_epoch}, self.ckpt)
        if best is not None and previous_best is not None and previous_best != best_epoch:
            best_path(self.ckpt, previous_best).unlink(missing_ok=True)


def _epoch_batches(
    n: int, seed: int, key: int, salt: int, batch_size: int, fraction: float, what: str
) -> list[np.ndarray]:
    batches = global_batches(epoch_order(n, seed, key, salt), batch_size, fraction)
    if not batches:
        raise ValueError(
            f"{n} {what} do not fill one batch of {batch_size} (the last incomplete batch of an "
            "epoch is dropped): lower the batch size"
        )
    return batches


def _val_batches(n: int, batch_size: int) -> list[np.ndarray]:
    return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _progress(it, desc: str, show: bool, total: int | None = None):
    return tqdm(it, desc=desc, total=total, disable=not show, leave=False)


def _step(
    loss: torch.Tensor,
    opt,
    scaler,
    params: list,
    grad_clip: float,
    where: str,
    epoch: int,
    step: int,
    on_step,
    phase: str,
) -> float:
    value = loss.item()  # the global-batch loss: the same on every rank
    _check_finite(value, where, epoch, step)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(opt)  # clip the true gradient, not the scaled one
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()
    if on_step is not None:
        on_step({"phase": phase, "epoch": epoch, "step": step, "loss": value})
    return value
