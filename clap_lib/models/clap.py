"""CLAP as the paper trains it: an audio backbone (clap_lib.models.backbones) + a BERT-family text backbone, MLP
projectors into a joint space, L2-normalised embeddings, learnable temperature (the loss: clap_lib.models.loss).

Names follow the paper: x_a / x_t are backbone outputs, E_a / E_t the normalised projections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

BERT_BASE_UNCASED_VOCAB = 30522


# --- text backbone ---------------------------------------------------------------------------------


class TextEncoder(nn.Module):
    """BERT-family encoder; x_t = last-layer hidden state of the first ([CLS]) token (as public CLAP)."""

    def __init__(
        self, name_or_path: str, max_tokens: int = 100, expected_vocab_size: int | None = BERT_BASE_UNCASED_VOCAB
    ):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        vocab = self.tokenizer.vocab_size
        # Offline, from_pretrained can return a near-empty tokenizer instead of failing.
        if vocab < 1000 or (expected_vocab_size is not None and vocab != expected_vocab_size):
            raise ValueError(
                f"tokenizer from {name_or_path!r} has vocab_size={vocab}, expected {expected_vocab_size}: "
                "the model files are missing or incomplete (no internet to fetch them?)"
            )
        self.bert = AutoModel.from_pretrained(name_or_path)
        self.max_tokens = max_tokens
        self.embed_dim = self.bert.config.hidden_size

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return dict(
            self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        )

    def forward(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.bert(**tokens).last_hidden_state[:, 0]  # x_t


# --- projection and CLAP -----------------------------------------------------------------------


class Projection(nn.Module):
    """Public CLAP projector: h = W1 x; out = LayerNorm(h + Dropout(W2 GELU(h)))."""

    def __init__(self, d_in: int, d_out: int = 1024, p_drop: float = 0.5):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.drop = nn.Dropout(p_drop)
        self.layer_norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear1(x)
        return self.layer_norm(h + self.drop(self.linear2(F.gelu(h))))


@dataclass(frozen=True)
class ClapOutput:
    x_a: torch.Tensor
    x_t: torch.Tensor
    E_a: torch.Tensor
    E_t: torch.Tensor
    logit_scale: torch.Tensor


class Clap(nn.Module):
    def __init__(self, audio: nn.Module, text: TextEncoder | nn.Module, d_embed: int = 1024, p_drop: float = 0.5):
        super().__init__()
        self.audio, self.text = audio, text
        self.audio_proj = Projection(audio.embed_dim, d_embed, p_drop)
        self.text_proj = Projection(text.embed_dim, d_embed, p_drop)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def embed_audio(self, x_a: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_proj(x_a), dim=-1)

    def embed_text(self, x_t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(x_t), dim=-1)

    def forward(self, logmel: torch.Tensor, tokens: dict[str, torch.Tensor]) -> ClapOutput:
        x_a, x_t = self.audio(logmel), self.text(tokens)
        return ClapOutput(x_a, x_t, self.embed_audio(x_a), self.embed_text(x_t), self.logit_scale)
