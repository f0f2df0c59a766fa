"""Data-parallel CLAP training under `torchrun` (gloo on CPU, nccl on GPU), and the grid as independent jobs.

The rule that makes N processes train exactly the model one process would train on the same global batch:

* Sampling: every rank draws the SAME seeded order of training items for an epoch (:func:`epoch_order`), cuts
  it into global batches (:func:`global_batches`, the last incomplete batch dropped) and keeps its contiguous
  slice of each (:meth:`World.shard`). Concatenating the ranks' slices in rank order gives the global batch.
* Loss: E_a and E_t are all-gathered (:meth:`World.gather`) so every rank computes the CLIP loss of the
  whole global batch (:func:`global_clip_loss`), as in one process. The gather is differentiable: its
  backward all-reduces the gradient of the gathered tensor and keeps the rank's slice, i.e. each rank
  computes the gradient of the sum of all ranks' (identical) losses = world_size x the loss.
* Batch norm: in training mode the CNN14's BatchNorm layers use the statistics of the global batch
  (:class:`GlobalBatchNorm2d`, two differentiable all-reduces per layer), so activations do not depend on how
  the batch is split.
* Gradients: after backward, every parameter's gradient is all-reduced and divided by world_size
  (:meth:`World.average_gradients`), which undoes the factor above for every parameter (also the logit scale,
  which is used after the gather), so gradient clipping and the optimiser see the single-process gradient.

What still differs from one process: dropout masks (each rank draws its own) and floating-point summation
order. With dropout off, losses and parameters match a single process to ~1e-6 (tests/test_distributed.py;
`python -m clap_lib.distributed selftest` checks the same on any machine, e.g. a GPU node with nccl).

Command line::

    torchrun --nproc_per_node 8 -m clap_lib.distributed train --pretraining clean --training dirty ...
    python -m clap_lib.distributed jobs --nproc 8 ...           # one command per grid combination
    torchrun --nproc_per_node 2 -m clap_lib.distributed selftest
"""
from __future__ import annotations

import argparse
import copy
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .models import clip_loss

__all__ = ["World", "init_world", "single_process", "resolve_device", "epoch_order", "global_batches",
           "GlobalBatchNorm2d", "use_global_batchnorm", "global_clip_loss", "full_precision", "ToyTextEncoder",
           "Job", "grid_jobs", "format_jobs", "run_jobs", "selftest", "main"]

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

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (replicas must start identical)."""
        if self.distributed:
            with torch.no_grad():
                for t in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(t.data, src=0)

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

    # -- collectives on features and gradients
    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenation over ranks (rank order) of equal-sized `x`; differentiable (see module docstring)."""
        if not self.distributed:
            return x
        return _GatherWithGrad.apply(x)

    @torch.no_grad()
    def gather_uneven(self, x: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
        """Concatenation over ranks of tensors whose row counts are `sizes` (known to all ranks); no gradient."""
        if not self.distributed:
            return x
        n = max(sizes)
        padded = torch.zeros((n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: len(x)] = x
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @torch.no_grad()
    def average_gradients(self, params: Iterable[nn.Parameter], bucket_elems: int = 1 << 24) -> None:
        """All-reduce (mean) the gradients, in flat buckets of at most `bucket_elems` elements per dtype."""
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        for bucket in _buckets(grads, bucket_elems):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat)
            flat /= self.world_size
            offset = 0
            for g in bucket:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def all_mean(self, value: float) -> float:
        """Mean of a Python number over ranks."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return float(t.item()) / self.world_size


def _buckets(grads: list[torch.Tensor], limit: int) -> Iterable[list[torch.Tensor]]:
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads:
        if bucket and (size + g.numel() > limit or g.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(g)
        size += g.numel()
    if bucket:
        yield bucket


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gathered gradient over ranks and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.n = dist.get_rank(), x.shape[0]
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; its adjoint is again a sum over ranks."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad


def _ddp_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch over all ranks.

    Same parameters, buffers and state-dict keys as nn.BatchNorm2d (so PANNs checkpoints load unchanged);
    identical to it when not distributed or in eval mode. Works with gloo (CPU) and nccl (GPU), which
    torch's SyncBatchNorm (GPU only) does not. Statistics are computed in float32 in two passes
    (mean, then mean squared deviation) for accuracy under mixed precision.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _ddp_active()):
            return super().forward(x)
        x32 = full_precision(x)  # half-precision statistics would be too coarse
        dims = [0, *range(2, x.dim())]
        n_local = x32.numel() // x32.shape[1]
        sums = _AllReduceSum.apply(torch.cat([x32.sum(dims), x32.new_tensor([float(n_local)])]))
        n = sums[-1]
        mean = sums[:-1] / n
        shape = (1, -1, *[1] * (x.dim() - 2))
        centred = x32 - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
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
    """Turn every nn.BatchNorm2d of `module` into a GlobalBatchNorm2d in place (parameters kept)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm2d
    return module


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """fp16/bf16 (autocast outputs) -> fp32; fp32 and fp64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def global_clip_loss(E_a: torch.Tensor, E_t: torch.Tensor, logit_scale: torch.Tensor, clamp: float,
                     world: World) -> torch.Tensor:
    """The CLIP loss of the global batch: this rank's rows of E_a / E_t gathered with every other rank's
    (logits and cross-entropy in full precision)."""
    return clip_loss(world.gather(full_precision(E_a)), world.gather(full_precision(E_t)), logit_scale, clamp)


def resolve_device(device: str | torch.device | None, local_rank: int = 0) -> torch.device:
    """"auto" -> cuda if available else cpu; under torchrun "cuda"/"cuda:N" -> this process's GPU."""
    name = str(device or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
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


# --- seeded sampling of the global batch ----------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int, salt: int) -> np.ndarray:
    """The permutation of n training items for one epoch; identical on every rank and on resume."""
    return np.random.default_rng([seed, salt, epoch]).permutation(n)


def global_batches(order: np.ndarray, batch_size: int, fraction: float = 1.0) -> list[np.ndarray]:
    """Consecutive full batches of `order` (the first `fraction` of it); an incomplete last batch is dropped,
    so every step has the same global batch size whatever the number of ranks (as open_clip does)."""
    order = order[: max(1, int(round(fraction * len(order))))]
    n_full = len(order) // batch_size
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_full)]


def seed_torch(seed: int, salt: int, epoch: int, rank: int) -> torch.Generator:
    """Seed the global torch RNG (dropout) for (seed, salt, epoch, rank); returns a generator for SpecAugment."""
    ss = np.random.SeedSequence([seed, salt, epoch, rank])
    a, b = ss.generate_state(2)
    torch.manual_seed(int(a))
    return torch.Generator().manual_seed(int(b))


# --- a self-test that any machine can run -----------------------------------------------------------


class ToyTextEncoder(nn.Module):
    """A tiny text backbone with the TextEncoder interface (tokenize / forward / embed_dim), deterministic in
    every process (crc32 word hashing), for tests and the self-test; no pretrained weights."""

    def __init__(self, dim: int = 16, vocab: int = 97, max_tokens: int = 12):
        super().__init__()
        self.vocab, self.max_tokens, self.embed_dim = vocab, max_tokens, dim
        self.embedding = nn.Embedding(vocab, dim)
        self.linear = nn.Linear(dim, dim)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        import zlib

        ids = torch.zeros((len(texts), self.max_tokens), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, text in enumerate(texts):
            words = text.lower().split()[: self.max_tokens]
            for j, w in enumerate(words):
                ids[i, j] = 1 + zlib.crc32(w.encode()) % (self.vocab - 1)
                mask[i, j] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        m = tokens["attention_mask"].unsqueeze(-1).float()
        h = (self.embedding(tokens["input_ids"]) * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.tanh(self.linear(h))  # x_t


def _toy_clap(seed: int, n_mels: int = 32):
    from .models import Clap, Cnn14

    torch.manual_seed(seed)
    audio = Cnn14(n_mels, width=1 / 32, n_classes=4, p_block=0.0, p_fc=0.0)
    return Clap(audio, ToyTextEncoder(), d_embed=8, p_drop=0.0)


def _toy_steps(model, world: World, x: torch.Tensor, captions: list[str], batches: list[np.ndarray],
               lr: float = 1e-2) -> list[float]:
    """A few unfrozen CLAP steps on log-mels `x`; returns the (global) loss of each step."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for b in batches:
        mine = world.shard(b)
        x_a = model.audio(x[mine].to(world.device))
        tokens = {k: v.to(world.device) for k, v in model.text.tokenize([captions[i] for i in mine]).items()}
        loss = global_clip_loss(model.embed_audio(x_a), model.embed_text(model.text(tokens)), model.logit_scale,
                                100.0, world)
        opt.zero_grad()
        loss.backward()
        world.average_gradients(model.parameters())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
        opt.step()
        losses.append(loss.item())
    return losses


def selftest(world: World, steps: int = 3, batch_size: int = 8, seed: int = 0,
             dtype: torch.dtype = torch.float64) -> dict:
    """Train a toy CLAP (no dropout) for `steps` global batches on all ranks, and on rank 0 alone with the whole
    batches; returns (on every rank) the largest loss and parameter differences and whether they are within
    tolerance.

    In float64 the two agree to ~1e-12: the sharding, the gathered loss, the global batch norm and the gradient
    averaging are exact. In float32 they agree to rounding (~1e-6) at first, but Adam divides by the gradients'
    magnitude: a near-zero gradient whose sign rounding flips moves its parameter by 2 x lr the other way, and
    such differences grow over the steps; float32 therefore uses lr 1e-4 (the recipe's) and tolerance 1e-3.
    """
    g = torch.Generator().manual_seed(seed)
    n = batch_size * steps
    x = torch.randn(n, 64, 32, generator=g).to(dtype)
    captions = [f"sound {i % 5} number {i}" for i in range(n)]
    batches = global_batches(epoch_order(n, seed, 0, salt=0), batch_size)
    model = _toy_clap(seed).to(world.device, dtype)
    reference = copy.deepcopy(model)  # plain BatchNorm: rank 0 reruns the steps alone, without collectives
    use_global_batchnorm(model)
    world.broadcast_module(model)
    lr, tol = (1e-2, 1e-9) if dtype == torch.float64 else (1e-4, 1e-3)
    losses = _toy_steps(model, world, x, captions, batches, lr)
    result: dict = {"losses": losses}
    if world.is_main:
        ref_losses = _toy_steps(reference, single_process(world.device), x, captions, batches, lr)
        ref_state = reference.state_dict()
        result["max_loss_diff"] = max(abs(a - b) for a, b in zip(losses, ref_losses))
        result["max_param_diff"] = max(float((v.double() - ref_state[k].double()).abs().max())
                                       for k, v in model.state_dict().items())
        result["ok"] = result["max_loss_diff"] <= tol and result["max_param_diff"] <= tol
    return world.broadcast_object(result)


# --- the grid as independent jobs -----------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One command of the grid plan; jobs of the same `phase` are independent and may run concurrently."""

    phase: int
    name: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def _launcher(nproc: int) -> list[str]:
    if nproc <= 1:
        return [sys.executable, "-m", "clap_lib.paper"]
    return ["torchrun", "--standalone", f"--nproc_per_node={nproc}", "-m", "clap_lib.distributed", "train"]


def grid_jobs(args: Sequence[str] = (), nproc: int = 1, pretrainings: Sequence[str] = ("dirty", "clean", "none"),
              trainings: Sequence[str] = ("dirty", "clean")) -> list[Job]:
    """The grid as jobs: phase 0 prepares the shared stages (ESC-50 log-mels and the audio pretrainings),
    phase 1 is one CLAP training per (pretraining, training) combination, phase 2 writes the grid summary
    from the cached stages. `args` (data roots, --set overrides, --artifacts, --device ...) go to every job.

    Shared stages are computed in phase 0 so that no two concurrent jobs ever compute the same stage.
    """
    base = [*_launcher(nproc), *args]
    pre = ",".join(pretrainings)
    jobs = [Job(0, "prepare", (*base, "--step", "prepare", "--pretrainings", pre))]
    for p in pretrainings:
        for t in trainings:
            jobs.append(Job(1, f"clap[{p},{t}]", (*base, "--step", "clap", "--pretrainings", p, "--trainings", t)))
    summary = [sys.executable, "-m", "clap_lib.paper", *args]  # reads the cache only: one process is enough
    jobs.append(Job(2, "grid", (*summary, "--step", "grid", "--pretrainings", pre,
                                "--trainings", ",".join(trainings))))
    return jobs


def format_jobs(jobs: Sequence[Job]) -> str:
    lines = []
    for phase in sorted({j.phase for j in jobs}):
        note = " (independent: run concurrently, e.g. one node each)" if phase == 1 else ""
        lines.append(f"# phase {phase}{note}")
        lines += [j.command for j in jobs if j.phase == phase]
    return "\n".join(lines)


def run_jobs(jobs: Sequence[Job], concurrent: int = 1) -> int:
    """Run the plan locally: phases in order, up to `concurrent` jobs of a phase at once; first failure stops."""
    for phase in sorted({j.phase for j in jobs}):
        pending = [j for j in jobs if j.phase == phase]
        while pending:
            running = [(j, subprocess.Popen(j.argv)) for j in pending[:concurrent]]
            pending = pending[concurrent:]
            for j, proc in running:
                if proc.wait() != 0:
                    print(f"job {j.name} failed (exit {proc.returncode}): {j.command}", file=sys.stderr)
                    return proc.returncode
    return 0


# --- command line ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m clap_lib.distributed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train", add_help=False, help="run clap_lib.paper on every rank (launch with torchrun); "
                   "the other arguments are those of `python -m clap_lib.paper`")
    jobs = sub.add_parser("jobs", help="print (or --launch) one command per grid combination")
    jobs.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per job; > 1 uses torchrun")
    jobs.add_argument("--launch", action="store_true", help="run the jobs here, phase by phase")
    jobs.add_argument("--concurrent", type=int, default=1, help="with --launch: jobs of a phase run at once")
    jobs.add_argument("--pretrainings", default="dirty,clean,none")
    jobs.add_argument("--trainings", default="dirty,clean")
    st = sub.add_parser("selftest", help="check that N ranks give the single-process losses (use torchrun)")
    st.add_argument("--device", default="auto")
    st.add_argument("--steps", type=int, default=3)
    st.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    if argv[:1] == ["train"]:
        from .paper import main as paper_main

        return paper_main(argv[1:])
    args, rest = ap.parse_known_args(argv)
    if args.cmd == "jobs":
        plan = grid_jobs(rest, args.nproc, args.pretrainings.split(","), args.trainings.split(","))
        if not args.launch:
            print(format_jobs(plan))
            return 0
        return run_jobs(plan, args.concurrent)
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    world = init_world(args.device)
    try:
        res = selftest(world, steps=args.steps, dtype=getattr(torch, args.dtype))
        if world.is_main:
            print(f"selftest: world_size={world.world_size} device={world.device} dtype={args.dtype} "
                  f"max |loss diff|={res['max_loss_diff']:.2e} max |param diff|={res['max_param_diff']:.2e} "
                  f"{'OK' if res['ok'] else 'MISMATCH'}", flush=True)
        return 0 if res["ok"] else 1
    finally:
        shutdown(world)


if __name__ == "__main__":
    sys.exit(main())
