"""Test-only toy models: a tiny deterministic text encoder and a small CLAP trained for a few steps."""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch import nn

from clap_lib.models.backbones.cnn14 import Cnn14
from clap_lib.models.clap import Clap
from clap_lib.training import distributed as D


class ToyTextEncoder(nn.Module):
    """A tiny text backbone with the TextEncoder interface (tokenize / forward / embed_dim); the same ids in
    every process (crc32 word hashing, not Python's salted hash); no pretrained weights."""

    def __init__(self, dim: int = 16, vocab: int = 97, max_tokens: int = 12):
        super().__init__()
        self.vocab, self.max_tokens, self.embed_dim = vocab, max_tokens, dim
        self.embedding = nn.Embedding(vocab, dim)
        self.linear = nn.Linear(dim, dim)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = torch.zeros((len(texts), self.max_tokens), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, text in enumerate(texts):
            for j, w in enumerate(text.lower().split()[: self.max_tokens]):
                ids[i, j] = 1 + zlib.crc32(w.encode()) % (self.vocab - 1)  # 0 is padding
                mask[i, j] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        m = tokens["attention_mask"].unsqueeze(-1).to(self.linear.weight.dtype)
        h = (self.embedding(tokens["input_ids"]) * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.tanh(self.linear(h))  # x_t


def toy_clap(seed: int = 0, n_mels: int = 32, dtype: torch.dtype = torch.float64) -> Clap:
    """A CNN14 (width 1/32, with batch norm) + ToyTextEncoder CLAP without dropout (dropout masks differ between
    ranks by design). The supervised head is frozen: the CLIP loss does not use it, and DDP needs every
    parameter it averages to get a gradient each step."""
    torch.manual_seed(seed)
    audio = Cnn14(n_mels, width=1 / 32, n_classes=4, p_block=0.0, p_fc=0.0)
    audio.fc_audioset.requires_grad_(False)
    return Clap(audio, ToyTextEncoder(), d_embed=8, p_drop=0.0).to(dtype)


def toy_data(
    n: int, seed: int = 0, frames: int = 64, n_mels: int = 32, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, list[str]]:
    """n random log-mels (n, frames, n_mels) and n captions with repeated words."""
    x = torch.randn(n, frames, n_mels, generator=torch.Generator().manual_seed(seed)).to(dtype)
    return x, [f"sound {i % 5} number {i}" for i in range(n)]


def toy_steps(
    model: Clap,
    world: D.World,
    x: torch.Tensor,
    captions: list[str],
    batches: list[np.ndarray],
    lr: float = 1e-2,
    clamp: float = 100.0,
    grad_clip: float = 100.0,
) -> list[float]:
    """Unfrozen CLAP steps on the global batches (each rank takes its shard), through wrap_model as the
    pipeline trains; returns each step's global-batch loss. `model` ends with the trained parameters."""
    net = D.wrap_model(model, world)
    net.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for b in batches:
        mine = world.shard(b)
        tokens = {k: v.to(world.device) for k, v in model.text.tokenize([captions[i] for i in mine]).items()}
        out = net(x[mine].to(world.device), tokens)
        loss = D.global_clip_loss(out.E_a, out.E_t, out.logit_scale, clamp, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        losses.append(loss.item())
    return losses
