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


def test_truncated_esc50_csv_is_refused_naming_the_counts(tmp_path, capsys):
    import pandas as pd

    from clap_lib.data.esc50 import read_esc50_meta
    from fixtures import write_tiny_esc50

    root = write_tiny_esc50(tmp_path / "esc50", per_fold=1, seconds=0.1)
    csv = root / "meta" / "esc50.csv"
    meta = pd.read_csv(csv)
    assert len(read_esc50_meta(root)) == 250
    meta.iloc[:-9].to_csv(csv, index=False)  # still parses, 9 clips short
    with pytest.raises(ValueError, match=r"lists 241 clips but .*audio holds 250 audio files: 9 are not in the csv"):
        read_esc50_meta(root)
    assert main(["dry-run", "--profile", "lab", "--esc50", str(root), "--set", "captions=bank"]) == 1
    out = capsys.readouterr().out
    assert "lists 241 clips but" in out and "250 audio files" in out


def test_default_data_folders_come_from_the_project_not_the_working_directory(tmp_path, monkeypatch, capsys):
    from clap_lib.data import paths
    from clap_lib.data.esc50 import locate_esc50
    from fixtures import write_tiny_esc50

    monkeypatch.delenv("CLAP_DATA", raising=False)
    monkeypatch.delenv("CLAP_ESC50", raising=False)
    project = tmp_path / "home" / "project"  # its data: tmp/home/shared/data
    (project / "clap_lib").mkdir(parents=True)
    ours = write_tiny_esc50(tmp_path / "home" / "shared" / "data" / "esc50", per_fold=1, seconds=0.1)
    decoy_cwd = tmp_path / "elsewhere" / "work"  # a decoy ../shared/data/esc50 relative to the working directory
    decoy_cwd.mkdir(parents=True)
    write_tiny_esc50(tmp_path / "elsewhere" / "shared" / "data" / "esc50", per_fold=1, seconds=0.1)
    monkeypatch.chdir(decoy_cwd)
    assert paths.shared_data_dir(project) == ours.parent.resolve()
    # the package's own default: this checkout's folder, wherever the process starts
    real = paths.shared_data_dir()
    assert real is None or "elsewhere" not in str(real)
    monkeypatch.setattr(paths, "PROJECT_ROOT", project)
    monkeypatch.setattr(paths.shared_data_dir, "__defaults__", (project,))
    assert locate_esc50() == ours.resolve()
    # every run says which data it reads before any work
    assert main(_run(tmp_path, "seed=abc")) == 2  # a bad value: nothing printed, nothing run
    main(_run(tmp_path, "captions=bank", "pretrainings=none", "trainings=dirty", extra=("--quiet",
              "--esc50", str(tmp_path / "nowhere"))))
    out = capsys.readouterr()
    assert f"data folders: ESC-50 not found ({tmp_path / 'nowhere'}); shared data {ours.parent.resolve()}" in out.out
