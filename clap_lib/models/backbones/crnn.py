"""The GPVAD CRNN (Dinkel et al., Interspeech 2020) as an audio backbone: its log-mel front end, the network,
strict loading of the three published state dicts, and a seeded random initialisation.

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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.utils.checkpoint
import torch.nn.functional as F
from torch import nn

from clap_lib.io import file_sha256
from clap_lib.data.paths import shared_data_dir

GPVAD_ENV = "CLAP_GPVAD"

#: log(mel + EPS). The published networks were trained on librosa features of float32 audio: numpy kept the
#: float32 dtype and added np.spacing(1) = 2.2e-16 (the float64 spacing at 1) as a float32 constant. We do the
#: same. It only matters where the mel power is ~0 (digital silence, zero padding): log(2.2e-16) = -36.0, where
#: np.spacing(np.float32(1)) = 1.2e-7 would floor at -15.9, a value the network never saw.
EPS = float(np.spacing(1))


# --- front end ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrnnFrontEnd:
    """The GPVAD log-mel: 40 ms Hann window in a 2048-point FFT, 20 ms hop, 64 Slaney mels, 0 Hz to Nyquist."""

    sample_rate: int = 22050
    n_fft: int = 2048
    win_length: int = 882
    hop_length: int = 441
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float | None = None  # None = sample_rate / 2

    @property
    def top(self) -> float:
        return self.sample_rate / 2 if self.f_max is None else self.f_max

    def n_frames(self, n_samples: int) -> int:
        """Frames of a clip of `n_samples` at `sample_rate` (centred STFT: one per hop plus the frame at 0)."""
        return n_samples // self.hop_length + 1

    def validate(self) -> None:
        for name in ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ValueError(f"CrnnFrontEnd.{name} must be > 0, got {getattr(self, name)!r}")
        if self.win_length > self.n_fft:
            raise ValueError(f"CrnnFrontEnd.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.top <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                             f"f_max={self.f_max}, sample_rate={self.sample_rate}")


def _mel_transform(fe: CrnnFrontEnd):
    import torchaudio

    # librosa.feature.melspectrogram's defaults of the GPVAD era: periodic Hann, centred, reflect padding,
    # power 2, Slaney mel scale and area normalisation
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=fe.sample_rate, n_fft=fe.n_fft, win_length=fe.win_length, hop_length=fe.hop_length,
        f_min=fe.f_min, f_max=fe.f_max, n_mels=fe.n_mels, window_fn=torch.hann_window, power=2.0,
        center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney")


def _as_batch(waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(waves) if not isinstance(waves, torch.Tensor) else waves)
    x = x.detach().to(torch.float32, copy=False).cpu()
    if x.ndim == 1:
        x = x[None]
    elif x.ndim == 3:  # (batch, channels, samples): mix down
        x = x.mean(dim=1)
    elif x.ndim != 2:
        raise ValueError(f"waves must be (samples,), (batch, samples) or (batch, channels, samples); got {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError("waves have no samples")
    return x


def crnn_logmel(waves: np.ndarray | torch.Tensor, sample_rate: int, fe: CrnnFrontEnd = CrnnFrontEnd(),
                batch_size: int = 32) -> np.ndarray:
    """log(mel + EPS) of each clip as (batch, frames, n_mels) float32, computed `batch_size` clips at a time.

    Clips are resampled to `fe.sample_rate` with torchaudio's windowed-sinc resampler (its defaults). 2000
    five-second clips give a 2000 x 251 x 64 array (128 MB); a batch of 32 needs about 70 MB of scratch.
    """
    fe.validate()
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    import torchaudio.functional as AF

    x = _as_batch(waves)
    n_out = math.ceil(x.shape[1] * fe.sample_rate / sample_rate)  # torchaudio's resampled length
    out = np.empty((len(x), fe.n_frames(n_out), fe.n_mels), dtype=np.float32)
    mel = _mel_transform(fe)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            b = x[i : i + batch_size]
            if sample_rate != fe.sample_rate:
                b = AF.resample(b, sample_rate, fe.sample_rate)
            out[i : i + len(b)] = torch.log(mel(b) + EPS).transpose(1, 2).numpy()
    return out


def mel_band_edges(fe: CrnnFrontEnd = CrnnFrontEnd()) -> np.ndarray:
    """(n_mels, 3) [lower edge, centre, upper edge] in Hz of each triangular band (Slaney scale), as in
    torchaudio's `melscale_fbanks`: band m rises from point m to point m+1 and falls to point m+2."""
    from clap_lib.data.audio import hz_to_mel, mel_to_hz

    pts = mel_to_hz(np.linspace(hz_to_mel(fe.f_min), hz_to_mel(fe.top), fe.n_mels + 2))
    return np.stack([pts[:-2], pts[1:-1], pts[2:]], axis=1)


def mel_bands_above(cutoff_hz: float, fe: CrnnFrontEnd = CrnnFrontEnd()) -> np.ndarray:
    """Indices of the mel bands whose whole support lies at or above `cutoff_hz` (lower edge >= cut-off).

    For audio band-limited to `cutoff_hz` (our 16 kHz ESC-50 copy: 8 kHz) these bands hold only resampler
    leakage; the band straddling the cut-off is partly signal and is not included.
    """
    if not 0 <= cutoff_hz <= fe.sample_rate / 2:
        raise ValueError(f"cutoff_hz must be in [0, {fe.sample_rate / 2}], got {cutoff_hz}")
    return np.flatnonzero(mel_band_edges(fe)[:, 0] >= cutoff_hz)


# --- the network ----------------------------------------------------------------------------------------


class Block2D(nn.Module):
    """BatchNorm -> 3x3 conv (no bias) -> LeakyReLU(0.1); the sequence is named `block` (published keys)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                   nn.LeakyReLU(0.1))

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
            Block2D(1, 32), nn.LPPool2d(4, (2, 4)), Block2D(32, 128), Block2D(128, 128),
            nn.LPPool2d(4, (2, 4)), Block2D(128, 128), Block2D(128, 128), nn.LPPool2d(4, (1, 4)),
            nn.Dropout(0.3))
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
        return F.interpolate(p.transpose(1, 2), size=logmel.shape[1], mode="linear",
                             align_corners=False).transpose(1, 2)

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


# --- published weights ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpvadFile:
    file: str  # state dict
    labels: str  # its `index,label` CSV
    trained_on: str
    sha256_prefix: str


#: The published networks in the shared data folder (RicherMans/GPV, GPL-3.0), for provenance in the book.
GPVAD_FILES: dict[str, GpvadFile] = {
    "gpv_f": GpvadFile("gpv_f.pth", "gpv_f_labels.csv", "AudioSet, all 527 labels (weak clip labels)", "871e9106"),
    "gpv_b": GpvadFile("gpv_b.pth", "gpv_b_labels.csv",
                       "AudioSet clips, speech / noise labels only (weak clip labels)", "b06a75ad"),
    "vad_c": GpvadFile("vad_c.pth", "vad_c_labels.csv", "clean speech with frame-level speech / silence labels",
                       "a2015333"),
}


def gpvad_dir(path: str | Path | None = None) -> Path:
    """The folder of the published files: `path`, else `$CLAP_GPVAD`, else `<shared data>/gpvad`."""
    tried = []
    for cand, why in ((path, "parameter"), (os.environ.get(GPVAD_ENV), f"${GPVAD_ENV}"),
                      (shared_data_dir() and shared_data_dir() / "gpvad", "shared data folder")):
        if cand in (None, ""):
            continue
        cand = Path(cand)
        tried.append(f"{cand} ({why})")
        if cand.is_dir():
            return cand
        if why == "parameter":
            break  # an explicit wrong path is an error, not a cue to look elsewhere
    raise FileNotFoundError(
        "GPVAD weights folder not found; tried: " + (", ".join(tried) or "nothing")
        + f". Put {', '.join(f.file for f in GPVAD_FILES.values())} (from RicherMans/GPV, pretrained/) in a "
        f"folder and pass it, or set ${GPVAD_ENV}, or place them in <shared data>/gpvad.")


def resolve_gpvad(name_or_path: str | Path, folder: str | Path | None = None) -> Path:
    """A registry name (``"gpv_f"``) -> its file in :func:`gpvad_dir`; anything else is taken as a path."""
    if str(name_or_path) in GPVAD_FILES:
        return gpvad_dir(folder) / GPVAD_FILES[str(name_or_path)].file
    return Path(name_or_path)


def _sha256(path: Path) -> str:
    return file_sha256(path)


def load_gpvad(path: str | Path, verify: bool = True) -> Crnn:
    """A published CRNN, loaded strictly (every key and shape must match), in eval mode.

    `path` is a file or a registry name of :data:`GPVAD_FILES`. A file whose name is in the registry must have
    the registered SHA-256 prefix (`verify=False` skips that check). n_labels comes from `outputlayer.weight`.
    """
    path = resolve_gpvad(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"GPVAD weights not found: {path}. Put the published file there, or in ${GPVAD_ENV}, "
            f"or in <shared data>/gpvad (the registered files: {', '.join(f.file for f in GPVAD_FILES.values())}).")
    known = {f.file: f for f in GPVAD_FILES.values()}.get(path.name)
    if verify and known is not None and not (digest := _sha256(path)).startswith(known.sha256_prefix):
        raise ValueError(f"{path}: SHA-256 {digest[:8]}... is not the published {known.file} "
                         f"({known.sha256_prefix}...): a different or damaged file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated / not a torch file: several exception types
        raise ValueError(f"{path} is not a readable torch state dict: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict) or not isinstance(state.get("outputlayer.weight"), torch.Tensor) \
            or state["outputlayer.weight"].ndim != 2:
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} is not a GPVAD CRNN state dict (no 2-D `outputlayer.weight`; starts with {keys})")
    model = Crnn(n_labels=int(state["outputlayer.weight"].shape[0]))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} does not match the GPVAD CRNN: {' '.join(str(e).split())}") from e
    return model.eval()


def read_gpvad_labels(csv: str | Path, n_labels: int | None = None) -> tuple[str, ...]:
    """The output order of a network from its `index,label` CSV; index must be 0..n-1 (and n = `n_labels`)."""
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"GPVAD label file not found: {csv}")
    try:
        df = pd.read_csv(csv, keep_default_na=False)
    except Exception as e:
        raise ValueError(f"cannot parse {csv}: {e}") from e
    if list(df.columns) != ["index", "label"]:
        raise ValueError(f"{csv}: expected columns ['index', 'label'], got {list(df.columns)}")
    if not np.array_equal(df["index"].to_numpy(), np.arange(len(df))):
        raise ValueError(f"{csv}: index must run 0..{len(df) - 1} in order")
    if n_labels is not None and len(df) != n_labels:
        raise ValueError(f"{csv} lists {len(df)} labels but the network has {n_labels} outputs")
    if df["label"].duplicated().any():
        raise ValueError(f"{csv}: duplicated labels {sorted(set(df['label'][df['label'].duplicated()]))[:5]}")
    return tuple(str(s) for s in df["label"])
