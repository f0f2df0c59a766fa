"""Data-parallel CLAP training on torch's own machinery (DDP over gloo on CPU, nccl on GPU), and the grid as jobs.

How N processes train the model one process would train on the same global batch:

* Sampling: every rank draws the SAME seeded order of training items for an epoch (:func:`epoch_order`), cuts
  it into global batches (:func:`global_batches`, the last incomplete batch dropped) and keeps its contiguous
  slice of each (:meth:`World.shard`). The ranks' slices in rank order are the global batch.
* Loss: E_a and E_t are all-gathered with torch's differentiable functional collective (:meth:`World.gather`),
  so every rank computes the CLIP loss L of the whole global batch (:func:`global_clip_loss`; open_clip's
  "gather with grad"). The gather's backward sums over ranks the gradient that reaches each slice, so rank r
  holds world_size x dL/dE_r.
* Gradients: :func:`wrap_model` puts the model in ``DistributedDataParallel``, which averages the gradients
  over ranks: (1/W) sum_r W dL/dtheta|_r = dL/dtheta, the single-process gradient, for the backbones and the
  projectors; the logit scale gets the same full gradient on every rank, whose mean is again itself.
* Batch norm: :func:`wrap_model` also makes the BatchNorm layers use the statistics of the global batch, so
  activations do not depend on how the batch is split (``nn.SyncBatchNorm`` on GPU; on CPU, where torch's
  SyncBatchNorm refuses to run, the small :class:`GlobalBatchNorm2d`).

What still differs from one process: dropout masks (each rank draws its own) and floating-point summation order.
tests/test_distributed.py checks that 2 gloo processes end with the single-process parameters.

Launching: each rank runs the ordinary pipeline command under ``torchrun``; :func:`grid_jobs` builds those
command lines (the CLI prints or runs them).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as funcol
from torch import nn

from clap_lib.config.levels import CAPTION_TRAININGS, PRETRAININGS, TRAININGS
from clap_lib.models.loss import clip_loss

__all__ = ["World", "init_world", "single_process", "shutdown", "resolve_device", "wrap_model", "sync_batchnorm",
           "GlobalBatchNorm2d", "use_global_batchnorm", "global_clip_loss", "full_precision", "epoch_order",
           "global_batches", "seed_torch", "Launcher", "TorchrunJob", "grid_jobs", "format_jobs", "run_jobs"]

# Collectives with autograd come from torch.distributed._functional_collectives: torch 2.13 deprecates
# torch.distributed.nn.functional (FutureWarning) and names these as the replacement; both run on gloo and nccl.

# --- the process group -----------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks (world_size 1 = plain single-process training)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # -- control
    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (decisions such as "this stage is cached" must agree)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # -- sharding
    def shard(self, batch: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of a global batch whose size is a multiple of world_size."""
        if len(batch) % self.world_size:
            raise ValueError(f"a global batch of {len(batch)} cannot be split evenly over {self.world_size} ranks; "
                             "choose a batch size that is a multiple of the number of processes")
        k = len(batch) // self.world_size
        return batch[self.rank * k : (self.rank + 1) * k]

    def split(self, items: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """Near-equal contiguous parts of `items` (evaluation, where nothing may be dropped): (mine, all sizes)."""
        parts = np.array_split(np.asarray(items), self.world_size)
        return parts[self.rank], [len(p) for p in parts]

    # -- collectives
    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenation over ranks (rank order) of equal-sized `x`. Differentiable: the backward gives each rank
        the sum over ranks of the gradient of its slice (see the module docstring)."""
        if not self.distributed:
            return x
        return funcol.all_gather_single(x.contiguous(), 0, dist.group.WORLD)

    @torch.no_grad()
    def gather_uneven(self, x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
        """Concatenation over ranks of tensors whose row counts are `sizes` (known to all ranks); no gradient."""
        if not self.distributed:
            return x
        if len(sizes) != self.world_size or sizes[self.rank] != len(x):
            raise ValueError(f"sizes {list(sizes)} do not match {self.world_size} ranks with {len(x)} rows on "
                             f"rank {self.rank}")
        padded = x.new_zeros((max(sizes), *x.shape[1:]))  # all_gather needs equal shapes
        padded[: len(x)] = x
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    def all_mean(self, value: float) -> float:
        """Mean of a Python number over ranks."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """"auto" -> cuda if available else cpu; under torchrun "cuda"/"cuda:N" -> this process's GPU."""
    name = str(device or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"device {name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__})")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 or dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


def single_process(device: str | torch.device | None = "cpu") -> World:
    return World(0, 1, 0, resolve_device(device))


def init_world(device: str | torch.device | None = "auto", timeout_s: float = 1800.0) -> World:
    """Join the process group that `torchrun` describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT);
    a single-process World when those are absent. Backend: nccl for CUDA devices, gloo otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return single_process(device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=timeout_s))
    return World(rank, world_size, local_rank, dev)


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


# --- the model: DDP and global-batch batch norm ------------------------------------------------------


def wrap_model(model: nn.Module, world: World, *, find_unused_parameters: bool = False) -> nn.Module:
    """`model` itself in one process; else `model` with global-batch batch norm (:func:`sync_batchnorm`, in place)
    inside DistributedDataParallel, which copies rank 0's parameters and buffers to every rank now and averages
    the gradients in every backward.

    Train by calling the returned module (DDP sees only its `forward`); keep `model` for state dicts and
    evaluation. Only parameters that require a gradient when this is called are averaged, so freeze (or
    unfreeze) first and wrap again when that changes; every such parameter must get a gradient each step unless
    `find_unused_parameters` (slower: DDP then walks the autograd graph every step).
    """
    if not world.distributed:
        return model
    model = sync_batchnorm(model, world.device)
    ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch: torch's SyncBatchNorm on GPU; on CPU GlobalBatchNorm2d, because
    nn.SyncBatchNorm raises "SyncBatchNorm expected input tensor to be on GPU" for CPU tensors (torch 2.13)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return use_global_batchnorm(module)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch over all ranks (any backend).

    Same parameters, buffers and state-dict keys as nn.BatchNorm2d; identical to it when not distributed or in
    eval mode. The sums go through torch's differentiable functional all_reduce (its backward all-reduces
    the gradient). Statistics in at least float32, in two passes (mean, then mean squared deviation), because
    half-precision sums of squares are too coarse.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        x32 = full_precision(x)
        dims = [0, *range(2, x.dim())]
        shape = (1, -1, *[1] * (x.dim() - 2))
        n_local = x32.new_tensor([x32.numel() // x32.shape[1]])
        sums = funcol.all_reduce(torch.cat([x32.sum(dims), n_local]), "sum", dist.group.WORLD)
        n = sums[-1]
        mean = sums[:-1] / n
        centred = x32 - mean.view(shape)
        var = funcol.all_reduce((centred * centred).sum(dims), "sum", dist.group.WORLD) / n
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), n.detach())
        y = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        unbiased = var * n / (n - 1).clamp(min=1)  # running_var is unbiased, as in nn.BatchNorm2d
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased.to(self.running_var.dtype))


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every nn.BatchNorm2d of `module` into a GlobalBatchNorm2d in place (parameters and buffers kept)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm2d
    return module


# --- the loss ----------------------------------------------------------------------------------------


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 (autocast outputs) -> fp32; fp32 and fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def global_clip_loss(E_a: torch.Tensor, E_t: torch.Tensor, logit_scale: torch.Tensor, clamp: float,
                     world: World) -> torch.Tensor:
    """The CLIP loss of the global batch: this rank's rows of E_a / E_t gathered with every other rank's
    (logits and cross-entropy in full precision). The same value on every rank."""
    return clip_loss(world.gather(full_precision(E_a)), world.gather(full_precision(E_t)), logit_scale, clamp)


# --- seeded sampling of the global batch ----------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int, salt: int) -> np.ndarray:
    """The permutation of n training items for one epoch; identical on every rank and on resume."""
    return np.random.default_rng([seed, salt, epoch]).permutation(n)


def global_batches(order: np.ndarray, batch_size: int, fraction: float = 1.0) -> list[np.ndarray]:
    """Consecutive full batches of `order` (the first `fraction` of it); an incomplete last batch is dropped,
    so every step has the same global batch size whatever the number of ranks (as open_clip does)."""
    if batch_size < 1 or not 0.0 < fraction <= 1.0:
        raise ValueError(f"batch_size={batch_size} must be >= 1 and fraction={fraction} in (0, 1]")
    order = order[: max(1, int(round(fraction * len(order))))]
    n_full = len(order) // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


def seed_torch(seed: int, salt: int, epoch: int, rank: int) -> torch.Generator:
    """Seed the global torch RNG (dropout) for (seed, salt, epoch, rank); returns a generator for SpecAugment."""
    ss = np.random.SeedSequence([seed, salt, epoch, rank])
    a, b = ss.generate_state(2)
    torch.manual_seed(int(a))
    return torch.Generator().manual_seed(int(b))


# --- the grid as independent jobs -----------------------------------------------------------------


@dataclass(frozen=True)
class Launcher:
    """How one job starts: `python -m <module> <command>`, under torchrun when nproc > 1.

    torchrun is started as `python -m torch.distributed.run` (the same program) so that the command does not
    depend on which `torchrun` is first on PATH.
    """

    nproc: int = 1
    python: str = sys.executable
    module: str = "clap_lib"
    command: str = "run"

    def __post_init__(self) -> None:
        if self.nproc < 1:
            raise ValueError(f"nproc={self.nproc}: the processes per job must be >= 1")

    def argv(self, nproc: int | None = None) -> tuple[str, ...]:
        n = self.nproc if nproc is None else nproc
        run = ("-m", self.module, self.command)
        if n <= 1:
            return (self.python, *run)
        return (self.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *run)


@dataclass(frozen=True)
class TorchrunJob:
    """One command of the grid plan; jobs of the same `phase` are independent and may run concurrently."""

    phase: int
    name: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def _check_levels(values: Sequence[str], allowed: Sequence[str], what: str) -> None:
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ValueError(f"{what} {list(values)}: each must be one of {list(allowed)} (at least one)")


def grid_jobs(args: Sequence[str] = (), launcher: Launcher = Launcher(),
              pretrainings: Sequence[str] = PRETRAININGS,
              trainings: Sequence[str] = CAPTION_TRAININGS) -> list[TorchrunJob]:  # dedup only when asked
    """The grid as jobs: phase 0 prepares the shared stages (ESC-50 log-mels and the audio pretrainings),
    phase 1 is one CLAP training per (pretraining, training) combination, phase 2 writes the grid summary
    from the cached stages. `args` (data roots, --set overrides, --artifacts, --device ...) go to every job.

    Shared stages are computed in phase 0 so that no two concurrent jobs ever compute the same stage; the
    summary only reads the cache, so it runs as one process.
    """
    _check_levels(pretrainings, PRETRAININGS, "pretrainings")
    _check_levels(trainings, TRAININGS, "trainings")
    base, pre, tr = [*launcher.argv(), *args], ",".join(pretrainings), ",".join(trainings)
    jobs = [TorchrunJob(0, "prepare", (*base, "--step", "prepare", "--pretrainings", pre, "--trainings", tr))]
    jobs += [TorchrunJob(1, f"clap[{p},{t}]", (*base, "--step", "clap", "--pretrainings", p, "--trainings", t))
             for p in pretrainings for t in trainings]
    summary = (*launcher.argv(nproc=1), *args, "--step", "grid", "--pretrainings", pre, "--trainings", tr)
    return [*jobs, TorchrunJob(2, "grid", summary)]


def format_jobs(jobs: Sequence[TorchrunJob]) -> str:
    """The plan as a shell script: a comment per phase, then one command a line."""
    lines = []
    for phase in sorted({j.phase for j in jobs}):
        note = " (independent: run concurrently, e.g. one node each)" if phase == 1 else ""
        lines.append(f"# phase {phase}{note}")
        lines += [j.command for j in jobs if j.phase == phase]
    return "\n".join(lines)


def run_jobs(jobs: Sequence[TorchrunJob], concurrent: int = 1) -> int:
    """Run the plan here: phases in order, up to `concurrent` jobs of a phase at once; the first failure stops
    the plan (after the jobs running beside it end) and its exit status is returned; 0 when all succeed."""
    if concurrent < 1:
        raise ValueError(f"concurrent={concurrent} must be >= 1")
    for phase in sorted({j.phase for j in jobs}):
        pending = [j for j in jobs if j.phase == phase]
        while pending:
            running = [(j, subprocess.Popen(j.argv)) for j in pending[:concurrent]]
            pending = pending[concurrent:]
            failed = [(j, rc) for j, rc in ((j, p.wait()) for j, p in running) if rc != 0]
            if failed:
                j, rc = failed[0]
                print(f"job {j.name} failed (exit {rc}): {j.command}", file=sys.stderr)
                return rc
    return 0
