"""Where training batches come from: cached log-mels or audio streamed from disk, behind one interface.

The trainers in :mod:`clap_lib.training.trainer` draw the batch order themselves (the same rule for every source) and ask
a source for the items of this rank's share of each batch:

* a **pair source** (CLAP) yields ``(log-mel on the device, captions)`` for a list of pair indices of a split
  ("train" or "val"); :class:`PairData` reads clip-indexed cached log-mels, :class:`StreamedPairs` cuts a
  seeded random segment of each audio file and computes its log-mel on the device;
* a **clip source** (supervised pretraining) yields ``(log-mel on the device, item indices)``;
  :class:`CachedClips` and :class:`StreamedClips` likewise.

``deterministic_eval`` says whether x_a of an item is the same every time the backbone sees it in eval mode.
Cached log-mels: yes, so the frozen phase may compute x_a and x_t once (:meth:`PairData.frozen_features`).
Streamed segments: no (each epoch draws new segments), so they are encoded batch by batch.

Every random segment is seeded by (seed, salt, epoch key, item): every rank, and a resumed run, reads the same
samples. Validation asks for key 0 every epoch, so its segments are fixed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from clap_lib.data.audio import AudioConfig, fix_length, load_audio, normalise

__all__ = [
    "SPLITS",
    "PairSource",
    "ClipSource",
    "PairData",
    "StreamedPairs",
    "CachedClips",
    "StreamedClips",
    "ClipDataset",
    "random_segment",
    "collate_clips",
    "clip_loader",
]

SPLITS = ("train", "val")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: allowed {list(SPLITS)}")


def _as_tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing `a`'s memory, also when `a` is a read-only memory map (cached log-mels): training only
    reads and indexes it (indexing copies), so torch's warning about non-writable arrays does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


class PairSource(Protocol):
    """(audio, caption) pairs of a training and a validation split."""

    deterministic_eval: ClassVar[bool]

    def size(self, split: str) -> int: ...

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, list[str]]]: ...


class ClipSource(Protocol):
    """Audio items (labels are kept by the trainer, indexed by the item indices yielded)."""

    deterministic_eval: ClassVar[bool]

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, np.ndarray]]: ...


# --- cached log-mels -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairData:
    """Cached pair source: clip-indexed log-mels, unique captions, and (clip, caption) index rows per split."""

    logmels: np.ndarray  # (n_clips, frames, mels)
    captions: list[str]  # unique captions
    train: np.ndarray  # (n_pairs, 2) int: (clip index, caption index)
    val: np.ndarray
    # x_a of every clip by the (frozen, eval-mode) backbone, when already computed (the backbone stage saves it):
    # the frozen phase then never runs the audio backbone
    x_a: np.ndarray | None = None
    # x_t of every caption (rows aligned with `captions`) by the frozen text backbone, when already computed (the
    # text stage encodes the captions once for every combination)
    x_t: np.ndarray | None = None

    deterministic_eval: ClassVar[bool] = True

    def rows(self, split: str) -> np.ndarray:
        _check_split(split)
        return self.train if split == "train" else self.val

    def size(self, split: str) -> int:
        return len(self.rows(split))

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        rows, X = self.rows(split), _as_tensor(self.logmels)  # key unused: a cached log-mel never changes
        for b in batches:
            r = rows[np.asarray(b, dtype=int)]
            yield X[r[:, 0]].to(device), [self.captions[i] for i in r[:, 1]]

    def frozen_features(
        self,
        split: str,
        encode_audio: Callable[[torch.Tensor], torch.Tensor],
        encode_text: Callable[[list[str]], torch.Tensor],
        device: torch.device,
        pairs: np.ndarray | None = None,
        batch: int = 128,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x_a and x_t of the pairs `pairs` of `split` (default: all; rows aligned with them), each clip and
        each caption encoded once (in eval mode a clip's x_a is the same in every pair)."""
        rows, X = self.rows(split), _as_tensor(self.logmels)
        if pairs is not None:
            rows = rows[np.asarray(pairs, dtype=int)]
        clips, inv_a = np.unique(rows[:, 0], return_inverse=True)
        caps, inv_t = np.unique(rows[:, 1], return_inverse=True)
        if self.x_a is not None:
            x_a = torch.from_numpy(np.asarray(self.x_a[clips], dtype=np.float32)).to(device)
        else:
            x_a = torch.cat([encode_audio(X[clips[i : i + batch]].to(device)) for i in range(0, len(clips), batch)])
        if self.x_t is not None:
            x_t = torch.from_numpy(np.asarray(self.x_t[caps], dtype=np.float32)).to(device)
        else:
            x_t = torch.cat(
                [encode_text([self.captions[c] for c in caps[i : i + batch]]) for i in range(0, len(caps), batch)]
            )
        return x_a[torch.from_numpy(inv_a).to(device)], x_t[torch.from_numpy(inv_t).to(device)]


@dataclass(frozen=True)
class CachedClips:
    """Cached clip source: item i is the log-mel `logmels[i]` (both splits index the same array)."""

    logmels: np.ndarray

    deterministic_eval: ClassVar[bool] = True

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        _check_split(split)
        X = _as_tensor(self.logmels)
        for b in batches:
            b = np.asarray(b, dtype=int)
            yield X[b].to(device), b


# --- streamed audio --------------------------------------------------------------------------------


def random_segment(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed n-sample window of x (recipe: a random 5 s segment); zero-padded when x is shorter."""
    extra = len(x) - n
    return fix_length(x, n, int(rng.integers(0, extra + 1)) if extra > 0 else 0)


class ClipDataset(Dataset):
    """Waveforms of audio files, keyed by (epoch, item): the segment is seeded by (seed, salt, epoch, item), so
    every rank and every resumed run reads the same samples. Returns (normalised waveform, item)."""

    def __init__(self, paths: Sequence[str], audio: AudioConfig, seed: int, salt: int):
        self.paths, self.audio, self.seed, self.salt = list(map(str, paths)), audio, seed, salt

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, int]:
        epoch, i = key
        x = load_audio(self.paths[i], self.audio.sample_rate)
        rng = np.random.default_rng([self.seed, self.salt, epoch, i])
        return normalise(random_segment(x, self.audio.n_samples, rng)), i


def collate_clips(batch: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor | None, np.ndarray]:
    if not batch:  # an evaluation share can be empty on some ranks
        return None, np.zeros(0, dtype=int)
    return torch.from_numpy(np.stack([w for w, _ in batch])), np.array([i for _, i in batch])


def clip_loader(
    data: ClipDataset, batches: Sequence[np.ndarray], epoch: int, num_workers: int, device: torch.device
) -> DataLoader:
    """Batches (lists of item indices, already this rank's share) of `data` for `epoch`, in that order."""
    keyed = [[(epoch, int(i)) for i in b] for b in batches]
    # its own generator: a DataLoader otherwise draws its workers' base seed from the global torch RNG, which
    # would shift every dropout mask after it (segments are seeded per item and need no RNG from it)
    return DataLoader(
        data,
        batch_sampler=keyed,
        collate_fn=collate_clips,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(epoch),
    )


def _streamed(
    data: ClipDataset, front: nn.Module, batches: Sequence[np.ndarray], key: int, num_workers: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """(log-mel, items) per batch; the front end is fixed and runs in fp32 on the device."""
    for waves, idx in clip_loader(data, batches, key, num_workers, device):
        if waves is None:
            yield torch.zeros((0, data.audio.n_frames, data.audio.n_mels), device=device), idx
            continue
        with torch.no_grad():  # (never yield inside it: grad mode would stay off in the caller's loop)
            logmel = front(waves.to(device, non_blocking=True))
        yield logmel, idx


@dataclass(frozen=True)
class StreamedPairs:
    """Streamed pair source: pair i of a split is (a random segment of audio file i, caption i)."""

    train_clips: ClipDataset
    val_clips: ClipDataset
    train_captions: list[str]
    val_captions: list[str]
    front: nn.Module  # waveform -> log-mel (clap_lib.data.audio.LogMel), already on the training device
    num_workers: int = 0

    deterministic_eval: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for split, clips, caps in (
            ("train", self.train_clips, self.train_captions),
            ("val", self.val_clips, self.val_captions),
        ):
            if len(clips) != len(caps):
                raise ValueError(f"{split}: {len(clips)} audio files but {len(caps)} captions")

    @classmethod
    def from_paths(
        cls,
        train: tuple[Sequence[str], Sequence[str]],
        val: tuple[Sequence[str], Sequence[str]],
        audio: AudioConfig,
        seed: int,
        front: nn.Module,
        salts: tuple[int, int],
        num_workers: int = 0,
    ) -> StreamedPairs:
        """From (audio paths, captions) of each split; `salts` seed the train / val segments apart."""
        return cls(
            ClipDataset(train[0], audio, seed, salts[0]),
            ClipDataset(val[0], audio, seed, salts[1]),
            list(train[1]),
            list(val[1]),
            front,
            num_workers,
        )

    def size(self, split: str) -> int:
        _check_split(split)
        return len(self.train_clips if split == "train" else self.val_clips)

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, list[str]]]:
        _check_split(split)
        clips, caps = (
            (self.train_clips, self.train_captions) if split == "train" else (self.val_clips, self.val_captions)
        )
        for logmel, idx in _streamed(clips, self.front, batches, key, self.num_workers, device):
            yield logmel, [caps[i] for i in idx]


@dataclass(frozen=True)
class StreamedClips:
    """Streamed clip source for supervised training: item i is a random segment of `train_clips.paths[i]`
    (train) or `val_clips.paths[i]` (val); both usually list the same files under different salts."""

    train_clips: ClipDataset
    val_clips: ClipDataset
    front: nn.Module
    num_workers: int = 0

    deterministic_eval: ClassVar[bool] = False

    def batches(
        self, split: str, batches: Sequence[np.ndarray], key: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        _check_split(split)
        clips = self.train_clips if split == "train" else self.val_clips
        yield from _streamed(clips, self.front, batches, key, self.num_workers, device)
