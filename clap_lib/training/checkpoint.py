"""Verified resumable checkpoints.

A checkpoint file is ``MAGIC + sha256(payload) + payload``, where payload is ``torch.save(obj)``. The digest
lives inside the file (not in a sidecar) so the data and its hash are replaced by one atomic rename: a crash
can never pair a new payload with an old hash. :func:`load_checkpoint` refuses anything whose digest does not
match (flipped bits, truncation, a file from before this format) and removes it, so the stage restarts from
scratch instead of resuming from damaged weights and caching a wrong result.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from clap_lib.io import atomic_write

__all__ = ["MAGIC", "CorruptCheckpoint", "save_checkpoint", "load_checkpoint", "checkpoint_size", "checkpoint_due"]

MAGIC = b"CLAPCKPT1\n"
_DIGEST = hashlib.sha256().digest_size
HEADER_SIZE = len(MAGIC) + _DIGEST


class CorruptCheckpoint(ValueError):
    """The file is not a checkpoint this module wrote, or its bytes changed since."""


class _HashingWriter:
    """File-like object for torch.save that hashes the bytes on their way to the file (one pass, no copy)."""

    def __init__(self, f):
        self._f, self._h = f, hashlib.sha256()

    def write(self, b) -> int:
        self._h.update(b)
        return self._f.write(b)

    def flush(self) -> None:
        self._f.flush()

    def digest(self) -> bytes:
        return self._h.digest()


def save_checkpoint(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically, with the payload's SHA-256 in the header; returns path."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(MAGIC + bytes(_DIGEST))  # digest placeholder, filled in once the payload is written
            w = _HashingWriter(f)
            torch.save(obj, w)
            f.seek(len(MAGIC))
            f.write(w.digest())

    return atomic_write(path, write)


def _verified_payload(data: bytes) -> memoryview:
    if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
        raise CorruptCheckpoint(
            f"no checksum header (expected {MAGIC!r}); written by an older version or not a checkpoint"
        )
    payload = memoryview(data)[HEADER_SIZE:]
    if hashlib.sha256(payload).digest() != data[len(MAGIC) : HEADER_SIZE]:
        raise CorruptCheckpoint(f"SHA-256 mismatch over {len(payload)} payload bytes (damaged or truncated)")
    return payload


def load_checkpoint(path: str | Path | None, log: Callable[[str], None] = print) -> Any | None:
    """The object saved by :func:`save_checkpoint`, or None when there is none to resume from.

    Missing file (or ``path=None``) -> None. A corrupt or unverifiable file -> logged by path, deleted, None.
    Anything else (unreadable file, an object that no longer unpickles with the current code) propagates:
    those are not damage a restart would repair.
    """
    if path is None:
        return None
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        payload = _verified_payload(data)
    except CorruptCheckpoint as e:
        log(f"discarding corrupt checkpoint {path}: {e}; restarting this stage")
        path.unlink(missing_ok=True)
        return None
    # the bytes are exactly what save_checkpoint wrote, so full unpickling (optimizer state, history) is safe
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)


def checkpoint_size(path: str | Path) -> int:
    """Bytes of the serialised object in a checkpoint file (the file size less the header)."""
    return max(Path(path).stat().st_size - HEADER_SIZE, 0)


def checkpoint_due(seconds_since_last: float | None, last_save_seconds: float, max_share: float = 0.02) -> bool:
    """Whether a resumable checkpoint should be written now so that writing them (hash included) takes at most
    ``max_share`` of the wall time: due once ``last_save_seconds / max_share`` seconds have passed since the
    previous one (always when there is none yet, ``seconds_since_last=None``). An interruption then loses at
    most that long of training."""
    if not 0 < max_share <= 1:
        raise ValueError(f"max_share must be in (0, 1], got {max_share}")
    if seconds_since_last is None:
        return True
    return seconds_since_last >= last_save_seconds / max_share
