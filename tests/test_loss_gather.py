"""The global CLIP loss with a faked all-gather, in one process (no process group needed).

Rank r of W sees its slice E_r of the global batch as its own tensor and the other ranks' slices through the
gather. torch.distributed.nn's all_gather sends the gradient of every gathered slice back to its owner, so in
one process the faithful fake takes the other slices from the same full tensors (gradient kept), and each rank's
backward accumulates into the full tensors; DDP then divides the sum over ranks by W.
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from clap_lib.models.loss import clip_loss
from clap_lib.training import distributed as D


@dataclass(frozen=True)
class FakeRank(D.World):
    """World whose gather of its own slice `mine[i]` returns the global batch, the other ranks' rows taken
    from `fulls[i]` (E_a, E_t of the whole batch)."""

    mine: tuple = ()
    fulls: tuple = ()

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        full = self.fulls[next(i for i, m in enumerate(self.mine) if m is x)]
        k = len(x)
        return torch.cat([x if s == self.rank else full[s * k : (s + 1) * k] for s in range(self.world_size)])


def _embeddings(n: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    E_a = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1).requires_grad_()
    E_t = F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=-1).requires_grad_()
    return E_a, E_t


def _ranks_loss_and_grads(E_a, E_t, scale, W: int, clamp: float = 100.0):
    """Every fake rank's loss, and the DDP-averaged gradients w.r.t. E_a, E_t and the logit scale."""
    k = len(E_a) // W
    losses = []
    for r in range(W):
        a, t = E_a[r * k : (r + 1) * k], E_t[r * k : (r + 1) * k]
        loss = D.global_clip_loss(a, t, scale, clamp, FakeRank(rank=r, world_size=W, mine=(a, t), fulls=(E_a, E_t)))
        loss.backward()  # accumulates sum_r dL_r/d(.) into .grad
        losses.append(loss.item())
    return losses, E_a.grad / W, E_t.grad / W, scale.grad / W


@pytest.mark.parametrize("W", [2, 4])
def test_global_loss_and_gradients_equal_the_single_process_ones(W):
    E_a, E_t = _embeddings(8, 5, seed=W)
    scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    ref_a, ref_t = E_a.detach().clone().requires_grad_(), E_t.detach().clone().requires_grad_()
    ref_scale = scale.detach().clone().requires_grad_()
    ref = clip_loss(ref_a, ref_t, ref_scale, 100.0)
    ref.backward()
    losses, g_a, g_t, g_s = _ranks_loss_and_grads(E_a, E_t, scale, W)
    np.testing.assert_allclose(losses, [ref.item()] * W, rtol=0, atol=1e-12)
    torch.testing.assert_close(g_a, ref_a.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(g_t, ref_t.grad, rtol=0, atol=1e-6)
    torch.testing.assert_close(g_s, ref_scale.grad, rtol=0, atol=1e-6)
    assert ref_a.grad.abs().max() > 1e-3  # the comparison is not between two zeros


def test_orthonormal_pairs_give_the_analytic_loss_and_gradient():
    # E_a = E_t = e_i (rows of the identity), logit scale s: C = s I, so every row's cross-entropy is
    # log(1 + (n-1) e^{-s}); dL/ds = -(n-1) e^{-s} / (1 + (n-1) e^{-s}).
    n, s = 4, 2.0
    E_a = torch.eye(n, dtype=torch.float64, requires_grad=True)
    E_t = torch.eye(n, dtype=torch.float64, requires_grad=True)
    log_s = torch.tensor(math.log(s), dtype=torch.float64, requires_grad=True)
    losses, _, _, g = _ranks_loss_and_grads(E_a, E_t, log_s, W=2)
    q = (n - 1) * math.exp(-s)
    assert losses == pytest.approx([math.log(1 + q)] * 2, abs=1e-12)
    assert g.item() == pytest.approx(-q / (1 + q) * s, abs=1e-12)  # chain rule through s = exp(log_s)


def test_half_precision_embeddings_are_scored_in_float32():
    E_a, E_t = (e.detach().to(torch.bfloat16) for e in _embeddings(4, 3, seed=0, dtype=torch.float32))
    loss = D.global_clip_loss(E_a, E_t, torch.tensor(1.0), 100.0, D.single_process("cpu"))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(clip_loss(E_a.float(), E_t.float(), torch.tensor(1.0)).item(), abs=1e-7)


def test_single_process_gather_is_the_identity():
    x = torch.randn(3, 2)
    assert D.single_process("cpu").gather(x) is x
