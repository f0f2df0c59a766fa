"""clap_lib/checkpoint.py: verified resumable checkpoints."""

from __future__ import annotations

import hashlib

import pytest
import torch

from clap_lib.training.checkpoint import (
    HEADER_SIZE,
    MAGIC,
    checkpoint_due,
    checkpoint_size,
    load_checkpoint,
    save_checkpoint,
)


def state():
    g = torch.Generator().manual_seed(0)
    return {
        "model": {"w": torch.randn(64, 32, generator=g), "b": torch.zeros(32)},
        "epoch": 3,
        "history": [{"epoch": 1, "loss": 0.5}],
        "best": (0.25, {"w": torch.ones(2)}),
    }


def same(a, b):
    return (
        torch.equal(a["model"]["w"], b["model"]["w"])
        and a["epoch"] == b["epoch"]
        and a["history"] == b["history"]
        and a["best"][0] == b["best"][0]
    )


def test_round_trip_and_header(tmp_path):
    p = save_checkpoint(state(), tmp_path / "w" / "resume.pt")
    logs = []
    got = load_checkpoint(p, log=logs.append)
    assert same(got, state()) and logs == []
    raw = p.read_bytes()
    assert raw.startswith(MAGIC) and raw[len(MAGIC) : HEADER_SIZE] == hashlib.sha256(raw[HEADER_SIZE:]).digest()
    assert checkpoint_size(p) == len(raw) - HEADER_SIZE > 64 * 32 * 4
    assert [q.name for q in p.parent.iterdir()] == ["resume.pt"]  # no temp file, no sidecar


def test_missing_returns_none_silently(tmp_path):
    logs = []
    assert load_checkpoint(tmp_path / "absent.pt", log=logs.append) is None
    assert load_checkpoint(None, log=logs.append) is None
    assert logs == []


def _damaged(tmp_path, damage):
    p = save_checkpoint(state(), tmp_path / "resume.pt")
    p.write_bytes(damage(bytearray(p.read_bytes())))
    logs = []
    assert load_checkpoint(p, log=logs.append) is None
    assert not p.exists()
    assert len(logs) == 1 and logs[0].startswith(f"discarding corrupt checkpoint {p}: ")
    assert logs[0].endswith("; restarting this stage")
    return logs[0]


def flip(offset):
    def f(b):
        b[offset] ^= 0x01
        return bytes(b)

    return f


def test_flipped_payload_byte_is_discarded(tmp_path):
    # in the middle of the tensor data: torch.load alone would load it without complaint
    assert "SHA-256 mismatch" in _damaged(tmp_path, lambda b: flip(len(b) // 2)(b))


def test_flipped_digest_byte_is_discarded(tmp_path):
    assert "SHA-256 mismatch" in _damaged(tmp_path, flip(len(MAGIC) + 3))


def test_truncated_is_discarded(tmp_path):
    assert "SHA-256 mismatch" in _damaged(tmp_path, lambda b: bytes(b[: len(b) - 100]))
    assert "no checksum header" in _damaged(tmp_path, lambda b: bytes(b[:20]))


def test_unverifiable_plain_torch_file_is_discarded(tmp_path):
    """A checkpoint written without a recorded hash (plain torch.save, the format before this module) cannot be
    verified, so it is not trusted."""
    p = tmp_path / "resume.pt"
    torch.save(state(), p)
    logs = []
    assert load_checkpoint(p, log=logs.append) is None and not p.exists()
    assert "no checksum header" in logs[0] and str(p) in logs[0]


class Unloadable:
    def __reduce__(self):
        return (_raise_on_load, ())


def _raise_on_load():
    raise RuntimeError("programming error while unpickling")


def test_unrelated_exceptions_propagate(tmp_path, monkeypatch):
    # an intact file whose object fails to unpickle: a code problem, not damage; the file is kept
    p = save_checkpoint({"x": Unloadable()}, tmp_path / "resume.pt")
    with pytest.raises(RuntimeError, match="programming error"):
        load_checkpoint(p, log=lambda m: None)
    assert p.exists()
    # a read error other than "missing" (here: a directory) propagates too
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(IsADirectoryError):
        load_checkpoint(tmp_path / "dir.pt", log=lambda m: None)


def test_failed_save_keeps_previous_checkpoint(tmp_path):
    p = save_checkpoint(state(), tmp_path / "resume.pt")
    with pytest.raises(Exception):
        save_checkpoint({"f": lambda: 0}, p)  # a lambda cannot be pickled
    assert same(load_checkpoint(p, log=lambda m: None), state())
    assert [q.name for q in tmp_path.iterdir()] == ["resume.pt"]


def test_checkpoint_due_bounds_the_share_of_time_spent_saving():
    assert checkpoint_due(None, 5.0)  # the first one is always written
    assert not checkpoint_due(24.9, 0.5, max_share=0.02)  # 0.5 s per save, 2 %: every 25 s at most
    assert checkpoint_due(25.0, 0.5, max_share=0.02)
    assert checkpoint_due(0.0, 0.0)  # free saves: every epoch
    # epochs of 10 s, saves of 1 s, 5 %: one save per 20 s -> every 2nd epoch, 1 s per 20 s = 5 %
    since, saved = None, 0
    for _ in range(10):  # each iteration: one epoch has just ended
        if checkpoint_due(since, 1.0, max_share=0.05):
            since, saved = 0.0, saved + 1
        since += 10.0
    assert saved == 5
    with pytest.raises(ValueError, match="max_share"):
        checkpoint_due(1.0, 1.0, max_share=0)


def _train(ckpt, epochs=4, stop_after=None, log=lambda m: None):
    """A resumable toy training in the way training.py uses checkpoints: resume if a verified checkpoint
    exists, save one per epoch."""
    torch.manual_seed(0)
    X, w_true = torch.randn(64, 3), torch.tensor([1.0, -2.0, 0.5])
    w, start = torch.zeros(3, requires_grad=True), 0
    opt = torch.optim.Adam([w], lr=0.1)
    if (st := load_checkpoint(ckpt, log)) is not None:
        with torch.no_grad():
            w.copy_(st["w"])
        opt.load_state_dict(st["opt"])
        start = st["epoch"] + 1
    for epoch in range(start, epochs):
        loss = ((X @ w - X @ w_true) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        save_checkpoint({"w": w.detach().clone(), "opt": opt.state_dict(), "epoch": epoch}, ckpt)
        if stop_after is not None and epoch == stop_after:
            return None  # "interrupted"
    return w.detach()


def test_corrupt_resume_restarts_and_matches_an_uninterrupted_run(tmp_path):
    clean = _train(tmp_path / "clean.pt")
    ck = tmp_path / "resume.pt"
    assert _train(ck, stop_after=1) is None
    raw = bytearray(ck.read_bytes())
    raw[-200] ^= 0x10  # one flipped bit in the file
    ck.write_bytes(bytes(raw))
    logs = []
    resumed = _train(ck, log=logs.append)
    assert torch.equal(resumed, clean) and "discarding corrupt checkpoint" in logs[0]
    # and an intact checkpoint resumes to the same result
    ck2 = tmp_path / "resume2.pt"
    assert _train(ck2, stop_after=1) is None
    assert torch.equal(_train(ck2), clean)
