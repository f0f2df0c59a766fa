"""Time the default grid: every stage from an empty cache, then the fully cached re-run; peak memory.

    .venv/bin/python benchmarks/pipeline.py                    # cold run in a fresh folder, then a warm re-run
    .venv/bin/python benchmarks/pipeline.py --artifacts artifacts --set width=0.25
    .venv/bin/python benchmarks/pipeline.py --existing artifacts   # per-stage compute times recorded when an
                                                                   # existing cache was built + a timed re-run

Prints a table and writes benchmarks/results/pipeline.json. Budget (issue 11, the default gpvad grid): cold <= 15
min, warm < 1 min, peak memory < 4 GiB, on the 2-core CPU machine; measure it with nothing else running (the
load average is recorded beside the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.config.experiment import DEFAULT_PROFILE
from clap_lib.config.parse import parse_sets  # noqa: E402
from clap_lib.config.profiles import make_config
from clap_lib.pipeline.grid import run_grid  # noqa: E402
from clap_lib.pipeline.results import latest_grid_dir, stored_path  # noqa: E402

# issue 11: the default grid from an empty cache in at most 15 minutes on 2 cores, cached rerun < 60 s, < 4 GiB
BUDGET = {"cold_seconds": 15 * 60, "warm_seconds": 60, "peak_rss_gib": 4}


def peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux
    return (
        max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        / 2**20
    )


def timed_run(cfg, esc50, artifacts) -> tuple[float, list[dict]]:
    t0 = time.time()
    run_grid(cfg, esc50, artifacts, quiet=True)
    pointer = json.loads((Path(artifacts) / "latest.json").read_text())
    return time.time() - t0, pointer["timings"]


def built_seconds(artifacts: Path) -> list[dict]:
    """Compute seconds of every stage of the latest grid, as recorded in its manifest when it was built."""
    grid = latest_grid_dir(artifacts)
    stages = json.loads((grid / "stages.json").read_text())
    dirs = {f"backbone[{k}]": stored_path(artifacts, d) for k, d in stages["backbone"].items()}
    dirs |= {f"clap[{k.replace('/', ',')}]": stored_path(artifacts, d) for k, d in stages["clap"].items()}
    clap_payload = json.loads((next(iter(dirs.values())) / "manifest.json").read_text())["payload"]
    dirs = {"features": artifacts / "features" / clap_payload["features"]} | dirs | {"grid": grid}
    return [
        {"stage": name, "seconds": round(json.loads((d / "manifest.json").read_text())["seconds"], 1)}
        for name, d in dirs.items()
    ]


def from_existing(cfg, args) -> int:
    artifacts = Path(args.existing)
    warm, warm_stages = timed_run(cfg, args.esc50, artifacts)
    built = built_seconds(artifacts)
    total = sum(s["seconds"] for s in built)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "mode": "existing cache",
        "note": args.note,
        "artifacts": str(artifacts),
        "first_run_compute_seconds": round(total, 1),
        "cached_rerun_seconds": round(warm, 2),
        "peak_rss_gib_rerun": round(peak_rss_gib(), 2),
        "stages": built,
        "rerun_stages": warm_stages,
        "budget": BUDGET,
        "within_budget": {"first_run": total <= BUDGET["cold_seconds"], "rerun": warm < BUDGET["warm_seconds"]},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'stage':<24}{'compute when built (s)':>24}")
    for s in built:
        print(f"{s['stage']:<24}{s['seconds']:>24.1f}")
    print(f"{'total':<24}{total:>24.1f}\ncached re-run: {warm:.2f} s; within budget: {result['within_budget']}")
    print(f"written: {out}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifacts", default=None, help="cache folder (default: a fresh temporary one = cold run)")
    ap.add_argument("--esc50", default=None)
    ap.add_argument("--profile", default=DEFAULT_PROFILE)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument(
        "--existing",
        default=None,
        metavar="ARTIFACTS",
        help="do not recompute: read each stage's compute time from its manifest in this cache",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pipeline.json"))
    ap.add_argument("--note", default="", help="how the machine was loaded while the stages ran (kept in the JSON)")
    args = ap.parse_args(argv)
    cfg = make_config(args.profile, parse_sets(args.set))
    if args.existing:
        return from_existing(cfg, args)
    tmp = None
    if args.artifacts is None:
        tmp = tempfile.TemporaryDirectory(prefix="clap_bench_")
        args.artifacts = tmp.name
    cold, stages = timed_run(cfg, args.esc50, args.artifacts)
    warm, warm_stages = timed_run(cfg, args.esc50, args.artifacts)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "profile": args.profile,
        "overrides": args.set,
        "artifacts": args.artifacts if tmp is None else "(temporary)",
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "note": args.note,
        "first_run_seconds": round(cold, 1),
        "cached_rerun_seconds": round(warm, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "stages": stages,
        "rerun_stages": warm_stages,
        "budget": BUDGET,
        "within_budget": {
            "first_run": cold <= BUDGET["cold_seconds"],
            "rerun": warm < BUDGET["warm_seconds"],
            "memory": peak_rss_gib() < BUDGET["peak_rss_gib"],
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'stage':<24}{'first run (s)':>15}{'re-run (s)':>12}")
    for a, b in zip(stages, warm_stages):
        print(f"{a['stage']:<24}{a['seconds']:>15.1f}{b['seconds']:>12.2f}")
    print(f"{'total':<24}{cold:>15.1f}{warm:>12.2f}")
    print(f"peak memory {result['peak_rss_gib']:.2f} GiB; within budget: {result['within_budget']}")
    print(f"written: {out}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
