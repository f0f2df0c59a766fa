"""Reliability, round three (issue 24): each case was a silent mistake or a traceback before."""
from __future__ import annotations

from pathlib import Path

import pytest

from clap_lib.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *sets: str, extra: tuple[str, ...] = ()) -> list[str]:
    return ["run", "--profile", "lab", "--artifacts", str(tmp_path / "a"), *extra,
            *[x for s in sets for x in ("--set", s)]]


def test_clap_batch_of_one_is_refused_before_work(tmp_path, capsys):
    # the contrastive loss of one pair is identically 0 (softmax over one candidate): nothing would learn
    import torch

    from clap_lib.models.loss import clip_loss

    e = torch.nn.functional.normalize(torch.randn(1, 8), dim=-1)
    assert clip_loss(e, torch.nn.functional.normalize(torch.randn(1, 8), dim=-1), torch.tensor(2.0)).item() == 0.0
    assert main(_run(tmp_path, "clap.batch_size=1")) == 2
    assert "clap.batch_size must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
