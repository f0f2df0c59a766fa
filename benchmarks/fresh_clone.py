"""The main job's budget, measured as a user meets it (issue 20: at most 45 min from a fresh clone, peak memory under
4 GiB, a cached rerun under 60 s): clone the committed HEAD into a temporary folder beside `../shared`, run README's
main command there (`bash scripts/main.sh`: set-up, the default run, the book), then run it again with everything
cached. Prints a table and writes benchmarks/results/fresh_clone.json with

* the wall seconds of both runs and of their phases (set-up, `clap run`, book), read from the job's output;
* the peak of the summed resident memory of the job's whole process tree (the run and its worker processes),
  sampled every second;
* the stage timings and the controlled runs' per-run cost of the fresh run (benchmarks/main_job.py's summary).

Run it on an otherwise idle machine (it takes the main job's time, about 40 min here):

    .venv/bin/python benchmarks/fresh_clone.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from main_job import summary  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "fresh_clone.json"
#: the main job's phases, by the first line each prints
PHASES = (("setup", None), ("clap run", "grid start"), ("book", "[book]"))


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (0 for those that ended meanwhile)."""
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:  # it has ended
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def timed_job(repo: Path, log: Path) -> dict:
    """Run `bash scripts/main.sh` in `repo`; its wall seconds, the seconds each phase took (from the first line each
    prints), the peak memory of its process tree (sampled every second by a thread, also while the job is silent),
    and its exit status. The output goes to `log`."""
    t0 = time.perf_counter()
    marks: dict[str, float] = {"setup": 0.0}
    proc = subprocess.Popen(
        ["bash", "scripts/main.sh"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    peak, done = [0], threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.wait(1.0):
            peak[0] = max(peak[0], tree_rss(ps))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with log.open("w") as out:
        for line in proc.stdout:  # the job's lines as they come (a progress bar's updates are lines too)
            out.write(line)
            for name, first in PHASES[1:]:
                if name not in marks and first in line:
                    marks[name] = time.perf_counter() - t0
    rc = proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    starts = [marks.get(n) for n, _ in PHASES]
    phases = {}
    for i, (name, _) in enumerate(PHASES):
        if starts[i] is not None:
            end = next((s for s in starts[i + 1 :] if s is not None), wall)
            phases[name] = round(end - starts[i], 1)
    return {"rc": rc, "wall_seconds": round(wall, 1), "phases": phases, "peak_rss_gib": round(peak[0] / 2**30, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, default=None, help="clone here and keep it (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    shared = (ROOT.parent / "shared").resolve()
    if not shared.is_dir():
        raise SystemExit(f"no shared data folder at {shared}: the main job reads ESC-50 and the weights from there")
    base = a.keep or Path(tempfile.mkdtemp(prefix="fresh-clone-"))
    base.mkdir(parents=True, exist_ok=True)
    repo = base / "repo"
    if repo.exists():
        raise SystemExit(f"{repo} exists: give an empty --keep folder")
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    (base / "shared").symlink_to(shared)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    fresh = timed_job(repo, base / "fresh.log")
    cached = timed_job(repo, base / "cached.log") if fresh["rc"] == 0 else None
    result = {
        "commit": head.strip(),
        "machine": {"cpus": psutil.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
        "platform": platform.platform(),
        "fresh": fresh,
        "cached_rerun": cached,
        "budget": {"fresh_seconds": 45 * 60, "cached_seconds": 60, "peak_rss_gib": 4},
    }
    if fresh["rc"] == 0:  # the fresh run's stage seconds, from its own log (latest.json holds the cached rerun's)
        result["stages"] = summary(repo / "artifacts", base / "fresh.log")
    a.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"commit {result['commit']}")
    for name, r in (("fresh clone", fresh), ("cached rerun", cached)):
        if r:
            phases = ", ".join(f"{k} {v / 60:.1f} min" for k, v in r["phases"].items())
            print(
                f"{name:13s} {r['wall_seconds'] / 60:6.1f} min  (exit {r['rc']}; {phases}); "
                f"peak memory {r['peak_rss_gib']:.2f} GiB"
            )
    print(f"wrote {a.out}")
    if a.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    return fresh["rc"]


if __name__ == "__main__":
    sys.exit(main())
