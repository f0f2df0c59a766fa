"""Two real `python -m clap_lib run` processes of one tiny config into one artifacts folder: the second waits
for each stage the first holds and reuses it; both end with the same results and nothing is left half-done."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fixtures import TINY_SETS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_two_runs_share_one_artifacts_folder(tiny_esc50, tmp_path):
    art = tmp_path / "a"
    sets = TINY_SETS | {
        "pretrainings": "none",
        "trainings": "dirty",
        "n_boot": "20",
        "n_perm": "20",
        "topo_n_perm": "20",
    }
    cmd = [
        sys.executable,
        "-m",
        "clap_lib",
        "run",
        "--profile",
        "lab",
        "--esc50",
        str(tiny_esc50),
        "--artifacts",
        str(art),
        "--quiet",
        *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")],
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # the second starts while the first is inside a stage
    second = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = first.communicate(timeout=900)
    out2, err2 = second.communicate(timeout=900)
    assert first.returncode == 0, err1[-2000:]
    assert second.returncode == 0, err2[-2000:]
    log = (art / "run.log").read_text()
    # every stage computed exactly once (features, one backbone, the text stage, one clap run, the grid)
    assert log.count("computed in") == 5, log
    assert not list(art.rglob(".*.tmp-*")), "a temporary folder was left behind"
    grids = sorted((art / "grid").iterdir())
    grids = [g for g in grids if g.is_dir() and not g.name.startswith(".")]
    assert len(grids) == 1
    df = pd.read_csv(grids[0] / "results.csv")
    assert len(df) == 1 and 0 <= df["accuracy"].iloc[0] <= 1
    assert out1.splitlines()[:3] == out2.splitlines()[:3]  # the same table printed by both
