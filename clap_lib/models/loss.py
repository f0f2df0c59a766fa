"""The CLIP loss: symmetric InfoNCE over the logit matrix C = exp(t) E_a E_t^T (C clamped, as the recipe says)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_logits(E_a: torch.Tensor, E_t: torch.Tensor, logit_scale: torch.Tensor, clamp: float = 100.0) -> torch.Tensor:
    """C = exp(t) * E_a E_t^T, clamped to [-clamp, clamp] (recipe: logits clamped to +-100)."""
    return torch.clamp(logit_scale.exp() * E_a @ E_t.T, -clamp, clamp)


def clip_loss(E_a: torch.Tensor, E_t: torch.Tensor, logit_scale: torch.Tensor, clamp: float = 100.0) -> torch.Tensor:
    """Symmetric InfoNCE: mean of audio->text and text->audio cross-entropy over the batch diagonal."""
    C = clip_logits(E_a, E_t, logit_scale, clamp)
    target = torch.arange(len(C), device=C.device)
    return 0.5 * (F.cross_entropy(C, target) + F.cross_entropy(C.T, target))
