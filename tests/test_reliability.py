"""Faults provoked on purpose: bad parameters, a killed run, corrupt artifacts. Nothing wrong or lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures import TINY_SETS

from clap_lib.cli import main
from clap_lib.config.profiles import config_from_params, make_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["profile=fast"], "unknown parameter 'profile'"),  # the profile is chosen with --profile, not --set
        (["width=0"], "width must be in (0, 4], got 0.0"),
        (["pretrain.epochs=-1"], "pretrain.epochs must be > 0, got -1"),
        (["target_classes=dog,unicorn"], "unknown target class(es) ['unicorn']; allowed: dog, rooster"),
        (["pretrainings=dirty,filthy"], "unknown pretraining 'filthy'; allowed: dirty, clean, none"),
        (["clap.lr=1"], "unknown parameter 'clap.lr'; allowed in clap: batch_size"),
        (["seed=abc"], "seed must be an integer, got 'abc'"),
    ],
)
def test_bad_parameters_stop_before_any_work(sets, message, tmp_path, capsys):
    args = ["run", "--profile", "lab", "--artifacts", str(tmp_path / "a")] + [x for s in sets for x in ("--set", s)]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # nothing was started


def test_none_is_a_pretraining_not_a_missing_value():
    cfg = make_config(
        "lab", {"pretrainings": "none", "trainings": "clean", "target_classes": "none", "topo_k_max": "null"}
    )
    assert cfg.pretrainings == ("none",) and cfg.trainings == ("clean",)
    assert cfg.target_classes is None and cfg.topo_k_max is None  # fields that admit None
    with pytest.raises(ValueError, match="width must be a number"):
        make_config("lab", {"width": "none"})


def test_bad_profile_and_missing_data_path(tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse accepts any text; make_config names the allowed ones
        main(["run", "--profile"])
    assert main(["run", "--profile", "fast", "--artifacts", str(tmp_path / "a")]) == 2
    assert "unknown profile 'fast'; allowed: gpvad, lab, paper" in capsys.readouterr().err
    assert (
        main(["run", "--profile", "lab", "--esc50", str(tmp_path / "nowhere"), "--artifacts", str(tmp_path / "a")]) == 2
    )
    err = capsys.readouterr().err
    assert "ESC-50 not found" in err and "nowhere" in err and "python -m clap_lib download esc50" in err


def test_notebook_parameters_are_validated():
    with pytest.raises(ValueError, match="unknown profile 'bogus'; allowed: gpvad, lab, paper"):
        config_from_params(profile="bogus")
    with pytest.raises(ValueError, match=r"unknown target class\(es\) \['unicorn'\]"):
        config_from_params(target_classes="dog,unicorn")
    with pytest.raises(ValueError, match="width must be in"):
        config_from_params(profile="lab", width=-0.5)
    with pytest.raises(ValueError, match="unknown parameter 'clap.epochs'"):
        config_from_params(overrides="clap.epochs=3")
    with pytest.raises(ValueError, match="swap_split must be one of true/false"):
        config_from_params(swap_split="maybe")


@pytest.mark.slow
def test_bad_value_through_papermill_names_it(tmp_path):
    import jupytext
    import papermill as pm

    nb = jupytext.read(ROOT / "notebooks" / "s3_1_accuracy_clusters.py")
    with pytest.raises(pm.PapermillExecutionError) as e:
        pm.execute_notebook(
            nb,
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "bogus"},
            kernel_name="python3",
            cwd=str(ROOT),
            progress_bar=False,
        )
    assert "unknown profile 'bogus'; allowed: gpvad, lab, paper" in e.value.evalue


def _cli(esc50: Path, artifacts: Path) -> list[str]:
    sets = TINY_SETS | {
        "pretrainings": "clean",
        "trainings": "dirty",
        "clap.frozen_epochs": "6",
        "clap.max_unfrozen_epochs": "2",
        "clap.early_stop_patience": "2",
    }
    return [
        sys.executable,
        "-m",
        "clap_lib",
        "run",
        "--profile",
        "lab",
        "--quiet",
        "--esc50",
        str(esc50),
        "--artifacts",
        str(artifacts),
        *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")],
    ]


def _only_metrics(artifacts: Path) -> dict:
    (d,) = [
        p
        for p in (artifacts / "clap").iterdir()
        if p.is_dir() and not p.name.endswith(".work") and not p.name.startswith(".")
    ]
    return json.loads((d / "metrics.json").read_text())


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tiny_esc50, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    clean = tmp_path / "uninterrupted"
    subprocess.run(_cli(tiny_esc50, clean), check=True, env=env, cwd=ROOT, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _cli(tiny_esc50, killed), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not list((killed / "clap").glob("*.work/resume.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before a CLAP checkpoint appeared; nothing to interrupt"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "latest.json").exists()
    # a killed stage left no valid output, only its resumable work folder
    assert not [p for p in (killed / "clap").iterdir() if p.is_dir() and (p / "manifest.json").is_file()]

    resumed = subprocess.run(_cli(tiny_esc50, killed), env=env, cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run_log = (killed / "run.log").read_text()
    assert "reusing" in run_log  # log-mels and the pretraining were not redone
    # the CLAP stage continued from its verified checkpoint instead of starting over
    assert "resuming from checkpoint" in run_log and "resume.pt" in run_log
    a, b = _only_metrics(clean), _only_metrics(killed)
    assert a == b  # bit-identical metrics: deterministic, and resume loses nothing

    # a corrupt artifact is detected and recomputed, to the same values
    (d,) = [p for p in (killed / "clap").iterdir() if (p / "manifest.json").is_file()]
    (d / "metrics.json").write_text("{")
    again = subprocess.run(_cli(tiny_esc50, killed), env=env, cwd=ROOT, capture_output=True, text=True)
    rerun_log = (killed / "run.log").read_text()[len(run_log) :]
    assert again.returncode == 0 and "recomputing" in rerun_log
    assert f"corrupt file {(d / 'metrics.json').relative_to(killed)}" in rerun_log  # run.log: relative paths
    assert _only_metrics(killed) == a


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_exits_130(tiny_esc50, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        _cli(tiny_esc50, tmp_path / "a"), env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while not (tmp_path / "a" / "run.log").is_file() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # inside the run
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1] == "interrupted; rerun the same command to resume" and "Traceback" not in err
