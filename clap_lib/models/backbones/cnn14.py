"""PANNs CNN14 (official module and parameter names, so the `Cnn14_mAP=0.431.pth` state dict loads unchanged)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from clap_lib.data.paths import shared_data_dir

PANNS_FILE = "Cnn14_mAP=0.431.pth"
PANNS_ENV = "CLAP_PANNS"
PANNS_LANDING = "https://zenodo.org/record/3987831"


class ConvBlock(nn.Module):
    """Two 3x3 conv + BN + ReLU, then average pooling (PANNs `ConvBlock`, pool_type='avg')."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool != (1, 1) else x


def spec_augment(
    x: torch.Tensor, gen: torch.Generator | None = None, time_width: int = 64, freq_width: int = 8, n_stripes: int = 2
) -> torch.Tensor:
    """PANNs' SpecAugmentation: 2 time masks (<= 64 frames) and 2 frequency masks (<= 8 bins), per clip."""
    x = x.clone()
    B, _, T, Fq = x.shape
    for dim, size, width in ((2, T, time_width), (3, Fq, freq_width)):
        for _ in range(n_stripes):
            w = torch.randint(0, width + 1, (B,), generator=gen)
            start = (torch.rand(B, generator=gen) * (size - w).clamp(min=1)).long()
            idx = torch.arange(size)
            mask = (idx[None] >= start[:, None]) & (idx[None] < (start + w)[:, None])  # (B, size)
            shape = (B, 1, size, 1) if dim == 2 else (B, 1, 1, size)
            x = x.masked_fill(mask.view(shape).to(x.device), 0.0)  # the mask is drawn on the CPU generator
    return x


class Cnn14(nn.Module):
    """PANNs CNN14 on log-mel input (B, frames, n_mels) -> x_a (B, 2048 * width).

    `width` scales every channel count (1.0 = the paper's network); the CPU lab profile uses a
    fraction of it. Block 6 has no pooling, as in the official code.
    """

    channels = (64, 128, 256, 512, 1024, 2048)

    def __init__(
        self, n_mels: int = 64, width: float = 1.0, n_classes: int = 527, p_block: float = 0.2, p_fc: float = 0.5
    ):
        super().__init__()
        # dropout after each conv block / around fc1 (PANNs: 0.2 / 0.5); a small lab-width network trained on
        # 1600 clips underfits with them, so the lab profile lowers them (ExperimentConfig.cnn_dropout)
        self.p_block, self.p_fc = p_block, p_fc
        ch = [max(1, int(round(c * width))) for c in self.channels]
        self.bn0 = nn.BatchNorm2d(n_mels)
        c_in = 1
        for i, c in enumerate(ch, start=1):
            setattr(self, f"conv_block{i}", ConvBlock(c_in, c))
            c_in = c
        self.fc1 = nn.Linear(ch[-1], ch[-1], bias=True)
        self.fc_audioset = nn.Linear(ch[-1], n_classes, bias=True)  # the supervised pretraining head
        self.embed_dim = ch[-1]
        self.spec_augment = False  # switched on for supervised pretraining only
        self._init_weights()

    def _init_weights(self) -> None:
        # PANNs init: Xavier-uniform conv/linear weights, zero biases, BN gamma = 1.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = logmel.unsqueeze(1)  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # bn0 normalises each mel bin
        if self.training and self.spec_augment:
            x = spec_augment(x, gen)
        for i in range(1, 7):
            x = getattr(self, f"conv_block{i}")(x, pool=(2, 2) if i < 6 else (1, 1))
            x = F.dropout(x, self.p_block, self.training)
        x = x.mean(dim=3)  # over frequency
        x = x.max(dim=2).values + x.mean(dim=2)  # max + mean over time
        x = F.dropout(x, self.p_fc, self.training)
        return F.relu(self.fc1(x))  # x_a

    def classify(self, logmel: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Logits of the supervised head (pretraining)."""
        x_a = F.dropout(self(logmel, gen), self.p_fc, self.training)
        return self.fc_audioset(x_a)


def load_panns_checkpoint(
    path: str | Path, model: Cnn14 | None = None, *, width: float = 1.0, n_mels: int = 64
) -> Cnn14:
    """Load an official PANNs CNN14 checkpoint (`Cnn14_mAP=0.431.pth` layout: {'model': state_dict}).

    The STFT/mel buffers of the official file (`spectrogram_extractor.*`, `logmel_extractor.*`) are
    fixed transforms that our `LogMel` recomputes, so they are ignored. Any other missing or unexpected
    key is an error that names the keys.
    """
    path = Path(path)
    if not path.is_file():
        require_panns_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable torch checkpoint: {e}") from e
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict or {{'model': state_dict}}, got {type(ckpt).__name__}")
    state = {k: v for k, v in state.items() if not k.startswith(("spectrogram_extractor.", "logmel_extractor."))}
    if model is None:
        if "fc_audioset.weight" in state:
            n_classes = state["fc_audioset.weight"].shape[0]
        else:
            n_classes = 527
        model = Cnn14(n_mels=n_mels, width=width, n_classes=n_classes)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{path} is not a CNN14 checkpoint in the PANNs layout: missing keys {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''} ({len(missing)} in all), unexpected keys "
            f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''} ({len(unexpected)} in all)"
        )
    shapes = [
        (k, tuple(v.shape), tuple(model.state_dict()[k].shape))
        for k, v in state.items()
        if tuple(v.shape) != tuple(model.state_dict()[k].shape)
    ]
    if shapes:
        k, got, want = shapes[0]
        raise ValueError(f"{path}: shape mismatch for {k}: file has {got}, model (width={width}) wants {want}")
    model.load_state_dict(state)
    return model


def default_panns_checkpoint() -> Path | None:
    """`$CLAP_PANNS`, else `<shared data>/panns/Cnn14_mAP=0.431.pth` (may not exist), else None."""
    if os.environ.get(PANNS_ENV):
        return Path(os.environ[PANNS_ENV])
    base = shared_data_dir()
    return base / "panns" / PANNS_FILE if base is not None else None


def require_panns_checkpoint(path: str | Path | None) -> Path:
    """The checkpoint path (`path`, else the default), or FileNotFoundError naming the file and how to get it."""
    path = path if path is not None else default_panns_checkpoint()
    if path is not None and Path(path).is_file():
        return Path(path)
    where = f"{path}" if path is not None else f"(${PANNS_ENV} unset, no shared data folder)"
    raise FileNotFoundError(
        f"PANNs checkpoint not found: {where}. Audio pretraining 'dirty' of this profile starts from the official "
        f"CNN14 weights {PANNS_FILE}: download them from {PANNS_LANDING} (or `python -m clap_lib download panns "
        f"--dest DIR` on a machine with internet), then set ${PANNS_ENV}=DIR/{PANNS_FILE} or pass "
        f"`--set weights.dirty=file:DIR/{PANNS_FILE}`; or leave 'dirty' out (`--set pretrainings=clean,none`)."
    )
