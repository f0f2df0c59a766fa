"""CLAP trained on cached backbone outputs, to convergence (issue 20's recipe; used by clap_lib.pipeline.controlled).

The paper's frozen phase runs both backbones in eval mode, so their outputs x_a and x_t can be computed once and
only the projectors and the temperature train. The fine-tuning phase then trains the audio backbone's *top* with
them: a module that maps cached outputs of the frozen part of the backbone (for the CRNN: its convolutional trunk)
to x_a (the CRNN's bi-GRU and time-mean, :class:`GruTop`). Both phases:

* run in *quarter epochs*: a seeded permutation of the training pairs per pass, cut in four; every level and dose
  trains on the same number of pairs, so a quarter is the same number of optimizer steps everywhere;
* validate after every quarter on the same held-out pairs (background clips of folds 1-4: never a T clip, never
  fold 5) and stop when that loss has not improved for `patience` quarters (clap_lib.training.early_stopping),
  restoring the best state; the fine-tuning phase counts the state it starts from as quarter 0, so a phase that
  only raises the validation loss leaves the model as it was;
* use the repository's CLAP recipe otherwise: Adam, batch 128 (an incomplete last batch dropped), dropout 0.5 in
  the projectors, gradient norm clipped at 100, logits clamped at 100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clap_lib.models.clap import Projection
from clap_lib.models.loss import clip_loss
from clap_lib.training.early_stopping import EarlyStopping, train_until_stopped

GRAD_CLIP = 100.0


class GruTop(nn.Module):
    """The CRNN's top: x_a = time-mean of its bi-GRU over the trunk outputs (clips, frames, 128)."""

    def __init__(self, gru: nn.GRU):
        super().__init__()
        self.gru = gru

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.gru(trunk)[0].mean(1)


class CachedClap(nn.Module):
    """CLAP's two projectors and temperature on cached inputs; with `top`, the audio input is a trunk output and
    x_a = top(input), trained too; without, the input is x_a itself."""

    def __init__(self, d_a: int, d_t: int, d_embed: int, top: nn.Module | None = None, p_drop: float = 0.5):
        super().__init__()
        self.audio_proj = Projection(d_a, d_embed, p_drop)
        self.text_proj = Projection(d_t, d_embed, p_drop)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.top = top

    def x_a(self, audio: torch.Tensor) -> torch.Tensor:
        return audio if self.top is None else self.top(audio)

    def E_a(self, audio: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.audio_proj(self.x_a(audio)), dim=-1)

    def E_t(self, x_t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(x_t), dim=-1)

    def loss(self, audio: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        return clip_loss(self.E_a(audio), self.E_t(x_t), self.logit_scale)


@dataclass(frozen=True)
class Phase:
    """One training phase: what it trains at which learning rate, and when it stops (in quarter epochs).
    `crop`: train the top on a random window of this many frames of each trunk sequence (None: the whole one)."""

    lr: float
    patience: int
    max_quarters: int
    batch_size: int = 128
    crop: int | None = None
    from_start: bool = False  # the starting state is quarter 0 (fine-tuning after a converged phase)


def quarter_rows(n: int, seed: int, salt: int, quarter: int) -> np.ndarray:
    """Training-row order of quarter epoch `quarter` (0-based): a quarter of the permutation of its pass."""
    perm = np.random.default_rng([int(seed), int(salt), quarter // 4]).permutation(n)
    return np.array_split(perm, 4)[quarter % 4]


def _crop(audio: torch.Tensor, frames: int | None, gen: torch.Generator) -> torch.Tensor:
    """A random window of `frames` frames of each sequence of a (batch, T, d) batch (all of it when T <= frames)."""
    if frames is None or audio.ndim != 3 or audio.shape[1] <= frames:
        return audio
    start = torch.randint(0, audio.shape[1] - frames + 1, (len(audio),), generator=gen)
    idx = start[:, None] + torch.arange(frames)[None, :]
    return torch.gather(audio, 1, idx[:, :, None].expand(-1, -1, audio.shape[2]))


@torch.no_grad()
def validation_loss(model: CachedClap, audio: torch.Tensor, x_t: torch.Tensor, val: np.ndarray, batch: int) -> float:
    """Mean CLIP loss over fixed consecutive batches of the validation rows (clip, caption), weighted by size.
    E_a of each validation clip is computed once: a clip has several captions, and with a top (a bi-GRU over the
    whole clip) E_a is what costs."""
    model.eval()
    clips, inverse = np.unique(val[:, 0], return_inverse=True)
    E_a = torch.cat([model.E_a(audio[clips[i : i + batch]]) for i in range(0, len(clips), batch)])
    total, n = 0.0, 0
    for i in range(0, len(val), batch):
        r = val[i : i + batch]
        if len(r) < 2:  # a batch of one pair has no negative
            continue
        total += clip_loss(E_a[inverse[i : i + batch]], model.E_t(x_t[r[:, 1]]), model.logit_scale).item() * len(r)
        n += len(r)
    return total / n


def train_phase(
    model: CachedClap,
    params: list[nn.Parameter],
    audio: torch.Tensor,
    x_t: torch.Tensor,
    train: np.ndarray,
    val: np.ndarray,
    phase: Phase,
    seed: int,
    salt: int,
) -> dict:
    """Train `params` of `model` on rows `train` (clip row of `audio`, caption row of `x_t`) until the validation
    loss on `val` stops improving; the best state is restored. Returns the phase's history."""
    opt = torch.optim.Adam(params, lr=phase.lr, fused=True)  # one kernel per step: 19 % of a frozen-phase run
    gen = torch.Generator().manual_seed(int(seed) * 7919 + salt)
    torch.manual_seed(int(seed) * 104729 + salt)  # dropout
    steps = 0

    def quarter(k: int) -> float:
        nonlocal steps
        model.train()
        order = quarter_rows(len(train), seed, salt, k - 1)
        for b in range(len(order) // phase.batch_size):
            r = train[order[b * phase.batch_size : (b + 1) * phase.batch_size]]
            loss = model.loss(_crop(audio[r[:, 0]], phase.crop, gen), x_t[r[:, 1]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            opt.step()
            steps += 1
        return validation_loss(model, audio, x_t, val, phase.batch_size)

    start = validation_loss(model, audio, x_t, val, phase.batch_size)
    state, curve = train_until_stopped(
        quarter,
        lambda: {k: v.detach().clone() for k, v in model.state_dict().items()},
        model.load_state_dict,
        EarlyStopping(phase.patience, phase.max_quarters),
        initial=start if phase.from_start else None,
    )
    model.eval()
    return {
        "val_start": start,
        "val_loss": state.best,
        "best": state.best_epoch,
        "stop": state.epochs,
        "steps": steps,
        "curve": [round(v, 5) for v in curve],
    }


def frozen_params(model: CachedClap) -> list[nn.Parameter]:
    """What the frozen phase trains: the projectors and the temperature (not the top)."""
    return [*model.audio_proj.parameters(), *model.text_proj.parameters(), model.logit_scale]


def train_top_classifier(
    top: GruTop,
    n_classes: int,
    trunk: torch.Tensor,
    labels: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    seed: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    patience: int = 2,
    max_epochs: int = 8,
    crop: int | None = 16,
) -> dict:
    """Supervised training of the backbone's top on cached trunk outputs (the ladder's pretraining dose): a linear
    head on x_a = top(trunk), cross-entropy on `labels` of the `train` clips (on random windows of `crop` trunk
    frames: a bi-GRU step over a whole clip costs about 4x more), until the accuracy on the `val` clips (whole
    clips) stops improving; the best top is kept (the head is dropped). Returns the history."""
    torch.manual_seed(int(seed))
    head = nn.Linear(top.gru.hidden_size * 2, n_classes)
    params = [*top.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    gen = torch.Generator().manual_seed(int(seed))

    def epoch(k: int) -> float:
        top.train()
        order = np.random.default_rng([int(seed), 41, k]).permutation(train)
        for b in range(0, len(order), batch_size):
            idx = torch.from_numpy(order[b : b + batch_size])
            loss = F.cross_entropy(head(top(_crop(trunk[idx], crop, gen))), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        top.eval()
        with torch.no_grad():
            v = torch.from_numpy(np.asarray(val))
            return -float((head(top(trunk[v])).argmax(1) == y[v]).float().mean())  # minimised: -accuracy

    state, curve = train_until_stopped(
        epoch,
        lambda: {k: v.detach().clone() for k, v in top.state_dict().items()},
        top.load_state_dict,
        EarlyStopping(patience, max_epochs),
    )
    top.eval()
    return {
        "best_epoch": state.best_epoch,
        "epochs": state.epochs,
        "val_acc": -state.best,
        "curve": [-v for v in curve],
    }
