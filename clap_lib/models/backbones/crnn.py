"""The GPVAD CRNN (Dinkel et al., Interspeech 2020) as an audio backbone: the network and a seeded random
initialisation (its log-mel front end: :mod:`clap_lib.models.frontend`; the published state dicts:
:mod:`clap_lib.models.backbones.gpvad_files`).

Call conventions are those of :class:`clap_lib.models.backbones.cnn14.Cnn14`: ``model(logmel) -> x_a`` with
``logmel`` of shape (batch, frames, 64), ``model.embed_dim`` (256) and ``model.classify(logmel, gen)`` -> logits
for ``F.cross_entropy``. The CRNN needs its own front end (:func:`crnn_logmel`: 22.05 kHz, natural-log mels),
not the PANNs one in :mod:`clap_lib.data.audio`.

Input level: the published networks were trained on waveforms as read from file (full scale +-1), and their
first layer is a BatchNorm over the log-mel with fixed statistics, so a gain on the waveform is a constant
offset of the input that the network never saw. Feed raw (not unit-variance normalised) audio to
:func:`crnn_logmel` when using published weights.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

# --- front end ---------------------------------------------------------------------------------------


# --- the network ----------------------------------------------------------------------------------------


class Block2D(nn.Module):
    """BatchNorm -> 3x3 conv (no bias) -> LeakyReLU(0.1); the sequence is named `block` (published keys)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.LeakyReLU(0.1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def linear_softmax_pool(p: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """sum(p^2) / sum(p) over `dim`: a mean of the probabilities weighted by themselves (loud frames count more)."""
    return (p * p).sum(dim) / p.sum(dim)


class Crnn(nn.Module):
    """GPVAD CRNN: log-mel (B, T, 64) -> 5 conv blocks with LP pooling -> bi-GRU -> per-frame sigmoid head.

    ``forward`` returns x_a, the time-mean of the bi-GRU output (256-d): the last layer before the classifier
    head, the role fc1 plays in CNN14. Needs T >= 4 frames (time is pooled by 4).
    """

    embed_dim = 256
    p_min = 1e-7  # probabilities are clamped to [1e-7, 1] (published model), so log p is finite

    def __init__(self, n_labels: int = 527, n_mels: int = 64):
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"n_labels must be >= 1, got {n_labels}")
        if n_mels != 64:  # frequency is pooled 4 x 4 x 4 down to one bin: the GRU input size needs 64
            raise ValueError(f"the CRNN needs n_mels=64, got {n_mels}")
        self.features = nn.Sequential(
            Block2D(1, 32),
            nn.LPPool2d(4, (2, 4)),
            Block2D(32, 128),
            Block2D(128, 128),
            nn.LPPool2d(4, (2, 4)),
            Block2D(128, 128),
            Block2D(128, 128),
            nn.LPPool2d(4, (1, 4)),
            nn.Dropout(0.3),
        )
        self.gru = nn.GRU(128, 128, bidirectional=True, batch_first=True)
        self.outputlayer = nn.Linear(256, n_labels)
        self.spec_augment = False  # set by training.pretrain_backbone; off for the published recipe
        self.checkpoint_activations = False  # recompute activations in backward (less memory, same gradients)

    @property
    def n_labels(self) -> int:
        return self.outputlayer.out_features

    def _gru_out(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        if logmel.ndim != 3 or logmel.shape[-1] != 64:
            raise ValueError(f"logmel must be (batch, frames, 64), got {tuple(logmel.shape)}")
        if logmel.shape[1] < 4:
            raise ValueError(f"the CRNN pools time by 4: needs >= 4 frames, got {logmel.shape[1]}")
        x = logmel.unsqueeze(1)  # (B, 1, T, 64)
        mask = None
        if self.training and self.spec_augment:
            from clap_lib.models.backbones.cnn14 import spec_augment  # PANNs' SpecAugment, drawn on `gen`

            # masks go after the input BatchNorm, where 0 is the mean level (as CNN14 masks after bn0); on the
            # raw natural-log mel a 0 would be a loud stripe
            mask = lambda y: spec_augment(y, gen)  # noqa: E731
        if mask is None and not (self.checkpoint_activations and torch.is_grad_enabled()):
            x = self.features(x)  # (B, 128, T/4, 1)
        else:
            x = self._features_by_block(x, mask)
        x = x.transpose(1, 2).flatten(2)  # (B, T/4, 128)
        return self.gru(x)[0]  # (B, T/4, 256)

    def _features_by_block(self, x: torch.Tensor, mask=None) -> torch.Tensor:
        """`self.features` one block at a time: `mask` after the first BatchNorm; with
        `checkpoint_activations` (and autograd on), each conv -> LeakyReLU (-> LP pool) segment is recomputed in
        the backward pass instead of holding its activations (the full-resolution first block alone holds ~0.5 GB
        for 128 clips). BatchNorm stays outside the recomputed segments, so its running statistics are updated
        once per step, and the gradients are those of `self.features`."""
        checkpointed = self.checkpoint_activations and torch.is_grad_enabled()
        layers = list(self.features)
        i = 0
        while i < len(layers):
            if not isinstance(layers[i], Block2D):
                x = layers[i](x)
                i += 1
                continue
            bn, *segment = layers[i].block
            i += 1
            if i < len(layers) and isinstance(layers[i], nn.LPPool2d):
                segment.append(layers[i])
                i += 1
            x = bn(x)
            if mask is not None:
                x, mask = mask(x), None
            run = nn.Sequential(*segment)
            x = torch.utils.checkpoint.checkpoint(run, x, use_reentrant=False) if checkpointed else run(x)
        return x

    def forward(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self._gru_out(logmel, gen).mean(dim=1)  # x_a

    def trunk(self, logmel: torch.Tensor) -> torch.Tensor:
        """The convolutional trunk's output (B, T/4, 128), the bi-GRU's input: x_a = gru(trunk)[0].mean(1)."""
        return self.features(logmel.unsqueeze(1)).transpose(1, 2).flatten(2)

    def embed_and_clip_probs(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_a, clip_probs) from one pass through the network."""
        h = self._gru_out(logmel)
        p = torch.sigmoid(self.outputlayer(h)).clamp(self.p_min, 1.0)
        return h.mean(dim=1), linear_softmax_pool(p, dim=1).clamp(self.p_min, 1.0)

    def _native_frame_probs(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return torch.sigmoid(self.outputlayer(self._gru_out(logmel, gen))).clamp(self.p_min, 1.0)

    def frame_probs(self, logmel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_labels): per-frame probabilities, linearly interpolated from T/4 frames back to T."""
        p = self._native_frame_probs(logmel)
        return F.interpolate(p.transpose(1, 2), size=logmel.shape[1], mode="linear", align_corners=False).transpose(
            1, 2
        )

    def clip_probs(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """(B, n_labels): linear-softmax pooling over the network's own T/4 frames (the rate it was trained
        at; pooling the interpolated frames would weight the two end frames differently)."""
        return linear_softmax_pool(self._native_frame_probs(logmel, gen), dim=1).clamp(self.p_min, 1.0)

    def classify(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """log(clip probability), (B, n_labels), in [log 1e-7, 0]: logits for ``F.cross_entropy``.

        softmax(log p) = p / sum(p), so cross-entropy trains the published sigmoid head towards one class per
        clip, and argmax agrees with :meth:`clip_probs` (the shortcut classifier). For multi-label training
        use ``F.binary_cross_entropy(clip_probs, targets)`` instead.
        """
        return torch.log(self.clip_probs(logmel, gen))

    def with_head(self, n_labels: int, seed: int) -> Crnn:
        """A deep copy with a fresh, seeded `outputlayer` of `n_labels` outputs (for training on other classes)."""
        new = copy.deepcopy(self)
        new.outputlayer = nn.Linear(256, n_labels)
        _init_linear(new.outputlayer, torch.Generator().manual_seed(seed))
        return new.to(next(self.parameters()).device)


def _init_linear(m: nn.Linear, gen: torch.Generator) -> None:
    nn.init.kaiming_uniform_(m.weight, generator=gen)
    nn.init.zeros_(m.bias)


def random_crnn(seed: int, n_labels: int = 527) -> Crnn:
    """A seeded random CRNN: Kaiming-normal convs (LeakyReLU 0.1 gain), BatchNorm weight 1 / bias 0,
    Kaiming-uniform linear head with zero bias, GRU weights U(-1/sqrt(128), 1/sqrt(128)) (PyTorch's default).

    Every draw comes from a private generator and construction runs inside `fork_rng`, so the global RNG is
    left untouched and the same seed gives identical weights.
    """
    with torch.random.fork_rng(devices=[]):
        model = Crnn(n_labels)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0.1, nonlinearity="leaky_relu", generator=gen)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            _init_linear(m, gen)
        elif isinstance(m, nn.GRU):
            k = 1.0 / math.sqrt(m.hidden_size)
            for p in m.parameters():
                nn.init.uniform_(p, -k, k, generator=gen)
    return model
