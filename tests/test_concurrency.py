"""Two real processes computing the same stage into one artifacts folder (cache.run_stage under a file lock),
and the removal of temporary folders left by dead processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from clap_lib.pipeline.cache import cache_key, clean_orphans, run_stage

ROOT = Path(__file__).resolve().parents[1]

# One run: compute appends its pid to calls.txt, touches started-<pid>, sleeps, writes one file, and checks
# that nobody else is in its work dir (only the lock holder may use it).
RUN = r"""
import json, os, sys, time
from pathlib import Path
from clap_lib.pipeline.cache import run_stage

root, marker = Path(sys.argv[1]), Path(sys.argv[2])

def compute(out, work):
    with open(root / "calls.txt", "a") as f:
        f.write(f"{os.getpid()}\n")
    (work / f"in-{os.getpid()}").touch()
    marker.touch()
    time.sleep(float(sys.argv[3]))
    others = sorted(p.name for p in work.iterdir() if p.name != f"in-{os.getpid()}")
    (out / "result.json").write_text(json.dumps({"by": os.getpid(), "others_in_work": others}))
    return {"pid": os.getpid()}

stage, cached = run_stage(root, "s", {"p": 1}, compute, log=lambda m: print(m, file=sys.stderr))
print(json.dumps({"key": stage.key, "cached": cached, "result": json.loads((stage.dir / "result.json").read_text())}))
"""


def _start(root: Path, marker: Path, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(root), str(marker), str(sleep)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_compute_a_stage_once(tmp_path):
    root = tmp_path / "artifacts"
    root.mkdir()
    first = _start(root, tmp_path / "first-started", sleep=3.0)
    deadline = time.monotonic() + 120
    while not (tmp_path / "first-started").exists():  # the second run starts while the first is computing
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "first run never reached compute"
        time.sleep(0.05)
    second = _start(root, tmp_path / "second-started", sleep=0.0)
    outs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        outs.append((json.loads(out.strip().splitlines()[-1]), err))
    (a, err_a), (b, err_b) = outs
    assert (root / "calls.txt").read_text().split() == [str(first.pid)]  # compute ran once
    assert not (tmp_path / "second-started").exists()
    assert a["key"] == b["key"] == cache_key({"p": 1})
    assert (a["cached"], b["cached"]) == (False, True)
    assert a["result"] == b["result"] == {"by": first.pid, "others_in_work": []}
    assert "another process is computing it" in err_b and "computed by another process" in err_b
    left = sorted(p.name for p in (root / "s").iterdir())
    assert left == [f".{a['key']}.lock", a["key"]]  # no .tmp-*, work dir removed on completion


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: this pid now names no process
    return proc.pid


def test_orphans_of_dead_processes_are_removed(tmp_path):
    folder = tmp_path / "clap"
    host, dead = socket.gethostname(), _dead_pid()
    names = {
        "dead": f".aaaa.tmp-{host}-{dead}",
        "dead_legacy": f".bbbb.tmp-{dead}",
        "live": f".cccc.tmp-{host}-{os.getpid()}",
        "other_host": f".dddd.tmp-not-{host}-{dead}",
        "stage": "eeee",
        "work": "eeee.work",
    }
    for n in names.values():
        (folder / n).mkdir(parents=True)
        (folder / n / "x.npy").write_bytes(b"x")
    logs = []
    removed = clean_orphans(folder, log=logs.append)
    assert sorted(p.name for p in removed) == sorted([names["dead"], names["dead_legacy"]])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [names["live"], names["other_host"], names["stage"], names["work"]]
    )
    assert any(str(dead) in m for m in logs)
    assert clean_orphans(tmp_path / "absent") == []


def test_run_stage_cleans_orphans_first(tmp_path):
    orphan = tmp_path / "s" / f".{cache_key({'p': 1})}.tmp-{socket.gethostname()}-{_dead_pid()}"
    orphan.mkdir(parents=True)
    run_stage(tmp_path, "s", {"p": 1}, lambda out, work: (out / "a").write_text("a") and {}, log=lambda m: None)
    assert not orphan.exists()
