"""EfficientAT ``mn04_as`` (Schmid, Koutini, Widmer, ICASSP 2023) as an audio backbone: the
network (MobileNetV3 at width 0.4, 983,599 parameters), strict loading of the published state dict, and a seeded
random initialisation of the same architecture (its "none").

Written from the description in ``<shared data>/efficientat/ARCHITECTURE.md``; the section numbers below refer to
it. The published network was trained on AudioSet with all 527 labels (knowledge distillation from a PaSST
ensemble, ImageNet initialisation) and reaches AudioSet mAP 0.432, the AudioSet strength of the paper's CNN14
(0.431) at the size of our other networks.

Call conventions are those of :class:`clap_lib.models.backbones.crnn.Crnn`: ``model(logmel) -> x_a`` with ``logmel`` of
shape (batch, frames, 128) from :func:`mn04_logmel`, ``model.embed_dim`` (512), ``model.classify(logmel, gen)``
-> logits for ``F.cross_entropy``, and ``model.embed_and_clip_probs(logmel)`` -> (x_a, sigmoid of the AudioSet
head) for the shortcut classifier.

x_a is the 512-d output of the hard-swish after the first classifier layer (``classifier.2``, 384 -> 512), the
input of the last classifier layer (``classifier.5``, 512 -> 527): the analogue of CNN14's fc1. (The 384-d
global mean of ``features.16``, which the original forward pass returns as its second output, is one layer
earlier.)

Input: the front end wants waveforms at 32 kHz as read from file (full scale +-1; its normalisation is a fixed
affine map, so a gain is an offset the network never saw: do not standardise the waveform). Our ESC-50 copy is
16 kHz: :func:`mn04_logmel` resamples it to 32 kHz, and the mel bands above 8 kHz (the top 23 of the 128, see
:func:`mel_bands_above`; 8-15 kHz) hold no signal, only the resampler's leakage: the mirror image of the content
just below 8 kHz that the windowed-sinc filter's transition band lets through (for white noise at 16 kHz, -4 dB
relative to the pass band at 8.3 kHz, -19 dB at 9.5 kHz, below -33 dB from 10 kHz up). Numbers of this network
on our ESC-50 carry that caveat, as those of the CRNN (22.05 kHz) do.

Measured on our ESC-50 (``benchmarks/mn04.py --esc50``, all 2000 clips as read): the published head used directly
as a classifier through :mod:`clap_lib.data.ontology`'s mapping scores 0.752 [0.733, 0.771] over all 50 classes
(clips of the 3 unmapped classes counted wrong; 0.801 over the 47 mapped ones), a linear probe on x_a 0.927.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

# --- the network (sections 2-4) ---------------------------------------------------------------------------

WIDTH = 0.4
#: MobileNetV3-Large's inverted-residual table at width 1: (kernel, expanded, out, SE, activation, stride).
LARGE_BLOCKS: tuple[tuple[int, int, int, bool, str, int], ...] = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
STEM, LAST_CONV, HIDDEN = 16, 960, 1280  # base widths of the stem, the final 1x1 conv and classifier.2


def divisible8(v: float) -> int:
    """Round to the nearest multiple of 8 (at least 8), adding 8 where that loses more than 10 % (section 2)."""
    new = max(8, int(v + 4) // 8 * 8)
    return new + 8 if new < 0.9 * v else new


def scaled(base: int, width: float = WIDTH) -> int:
    return divisible8(base * width)


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None) -> nn.Sequential:
    """Conv (no bias, padding (k-1)/2) -> BatchNorm(eps 1e-3) [-> ReLU / hard-swish]: keys `0.weight`, `1.*`."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
    ]
    if act is not None:
        layers.append(nn.ReLU() if act == "RE" else nn.Hardswish())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel SE: mean over F and T -> fc1 -> ReLU -> fc2 -> sigmoid -> scale the channels."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze = divisible8(channels // 4)
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * g[:, :, None, None]


class ConcurrentSE(nn.Module):
    """The published wrapper of parallel SE variants merged by an element-wise max; this model has one, so it
    is that SE. Kept for the key path `conc_se_layers.0.*`."""

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcite(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    """[1x1 expansion] -> k x k depthwise -> [SE] -> 1x1 linear projection, + input when shapes allow."""

    def __init__(self, cin: int, exp: int, cout: int, k: int, se: bool, act: str, stride: int):
        super().__init__()
        parts: list[nn.Module] = []
        if exp != cin:
            parts.append(_conv_bn(cin, exp, 1, act=act))
        parts.append(_conv_bn(exp, exp, k, stride, groups=exp, act=act))
        if se:
            parts.append(ConcurrentSE(exp))
        parts.append(_conv_bn(exp, cout, 1))
        self.block = nn.Sequential(*parts)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class Mn04(nn.Module):
    """EfficientAT mn04: normalised log-mel (B, T, 128) -> 17 feature stages (downsampling 32 x 32) -> mean over
    F and T (384) -> Linear 384->512 -> hard-swish = x_a (512) -> dropout -> Linear 512->n_labels (logits).

    Any T >= 1 works (the SE modules pool over F and T); 5 s = 500 frames give 4 x 16 before pooling.
    """

    embed_dim = 512
    n_mels = 128

    def __init__(self, n_labels: int = 527, width: float = WIDTH):
        super().__init__()
        if n_labels < 1:
            raise ValueError(f"n_labels must be >= 1, got {n_labels}")
        cin = scaled(STEM, width)
        layers: list[nn.Module] = [_conv_bn(1, cin, 3, 2, act="HS")]
        for k, exp, cout, se, act, stride in LARGE_BLOCKS:
            exp, cout = scaled(exp, width), scaled(cout, width)
            layers.append(InvertedResidual(cin, exp, cout, k, se, act, stride))
            cin = cout
        layers.append(_conv_bn(cin, scaled(LAST_CONV, width), 1, act="HS"))
        self.features = nn.Sequential(*layers)
        hidden = scaled(HIDDEN, width)
        if hidden != self.embed_dim:
            raise ValueError(f"width {width} gives a {hidden}-d embedding, not {self.embed_dim}")
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(scaled(LAST_CONV, width), hidden),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(hidden, n_labels),
        )
        self.spec_augment = False  # set by training.pretrain_backbone; off for the published recipe

    @property
    def n_labels(self) -> int:
        return self.classifier[5].out_features

    def _input(self, logmel: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        if logmel.ndim != 3 or logmel.shape[-1] != self.n_mels:
            raise ValueError(f"logmel must be (batch, frames, {self.n_mels}), got {tuple(logmel.shape)}")
        x = logmel.unsqueeze(1)  # (B, 1, T, F)
        if self.training and self.spec_augment:
            from .cnn14 import spec_augment

            x = spec_augment(x, gen)  # masks at 0 = log-mel -4.5, the middle of the normalised range
        return x.transpose(2, 3)  # (B, 1, F, T): the published layout

    def stages(self, logmel: torch.Tensor) -> list[torch.Tensor]:
        """The output of every `features` stage (17 tensors (B, C, F, T)), for inspection."""
        x, outs = self._input(logmel, None), []
        for layer in self.features:
            x = layer(x)
            outs.append(x)
        return outs

    def forward(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """x_a: (B, 512), the input of the last classifier layer (the analogue of CNN14's fc1)."""
        return self.classifier[:4](self.features(self._input(logmel, gen)))

    def logits(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        return self.classifier[4:](self(logmel, gen))

    def embed_and_clip_probs(self, logmel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_a, sigmoid of the head) from one pass: the head is multi-label (independent sigmoids)."""
        x_a = self(logmel)
        return x_a, torch.sigmoid(self.classifier[4:](x_a))

    def clip_probs(self, logmel: torch.Tensor) -> torch.Tensor:
        return self.embed_and_clip_probs(logmel)[1]

    def classify(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Raw logits (B, n_labels) for ``F.cross_entropy``; argmax agrees with :meth:`clip_probs`."""
        return self.logits(logmel, gen)

    def with_head(self, n_labels: int, seed: int) -> Mn04:
        """A deep copy with a fresh, seeded last layer of `n_labels` outputs (for training on other classes)."""
        new = copy.deepcopy(self)
        new.classifier[5] = nn.Linear(self.embed_dim, n_labels)
        _init_linear(new.classifier[5], torch.Generator().manual_seed(seed))
        return new.to(next(self.parameters()).device)


def _init_linear(m: nn.Linear, gen: torch.Generator) -> None:
    nn.init.normal_(m.weight, 0.0, 0.01, generator=gen)
    nn.init.zeros_(m.bias)


def random_mn04(seed: int, n_labels: int = 527) -> Mn04:
    """A seeded random mn04 (MobileNetV3's usual initialisation): convs Kaiming-normal (fan out), BatchNorm
    weight 1 / bias 0, linear layers N(0, 0.01) with zero bias.

    Every draw comes from a private generator and construction runs inside `fork_rng`, so the global RNG is left
    untouched and the same seed gives identical weights.
    """
    with torch.random.fork_rng(devices=[]):
        model = Mn04(n_labels)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", generator=gen)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            _init_linear(m, gen)
    return model
