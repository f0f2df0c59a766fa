"""What the safety nets cost: checkpoints, atomic writes, content hashes, as a share of a cold run.

    .venv/bin/python benchmarks/reliability.py                      # none/clean: features + one CLAP stage
    .venv/bin/python benchmarks/reliability.py --set pretrainings=dirty --set trainings=dirty

Runs the given part of the default (lab) grid from an empty cache in a temporary folder, with the
reliability machinery instrumented (not switched off): per-epoch resumable checkpoints
(`io.atomic_torch_save`), the input-data fingerprint (`data.data_fingerprint`, every ESC-50 file hashed), the
manifest hashes written and checked (`cache._sha256`) and the non-finite-loss checks. Their summed wall
time over the run's wall time is the overhead; issue 6 allows at most 5 %. Prints a table and writes
benchmarks/results/reliability.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib import cache, data, experiment, training  # noqa: E402
from clap_lib.cli import _parse_sets, apply_overrides  # noqa: E402

BUDGET_SHARE = 0.05


def instrument(module, name: str, totals: dict, label: str) -> None:
    """Replace module.name by a wrapper adding its wall time to totals[label] (restored by the caller)."""
    fn = getattr(module, name)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            totals[label] += time.perf_counter() - t0
            totals[f"{label} (calls)"] += 1

    setattr(module, name, timed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--esc50", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "reliability.json"))
    args = ap.parse_args(argv)
    sets = {"pretrainings": "none", "trainings": "clean"} | _parse_sets(args.set)
    cfg = apply_overrides(experiment.make_config("lab"), sets)

    totals: dict[str, float] = defaultdict(float)
    # every module that holds its own reference to a wrapped function gets the wrapper
    instrument(training, "atomic_torch_save", totals, "checkpoints (atomic torch.save per epoch)")
    instrument(training, "_check_finite", totals, "non-finite loss checks")
    instrument(cache, "_sha256", totals, "manifest hashes (write + verify)")
    instrument(data, "data_fingerprint", totals, "ESC-50 content fingerprint")
    instrument(experiment, "data_fingerprint", totals, "ESC-50 content fingerprint")
    with tempfile.TemporaryDirectory(prefix="clap_rel_") as tmp:
        t0 = time.perf_counter()
        experiment.run_grid(cfg, args.esc50, tmp, progress=False, quiet=True)
        wall = time.perf_counter() - t0
    parts = {k: round(v, 3) for k, v in totals.items() if not k.endswith("(calls)")}
    calls = {k[:-8]: int(v) for k, v in totals.items() if k.endswith("(calls)")}
    spent = sum(parts.values())
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "overrides": sets,
              "run_seconds": round(wall, 1), "overhead_seconds": round(spent, 2),
              "overhead_share": round(spent / wall, 4), "budget_share": BUDGET_SHARE,
              "within_budget": spent / wall <= BUDGET_SHARE, "parts": parts, "calls": calls}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"{'safety net':<46}{'calls':>7}{'seconds':>10}{'share':>8}")
    for k, v in parts.items():
        print(f"{k:<46}{calls.get(k, 0):>7}{v:>10.2f}{v / wall:>8.1%}")
    print(f"{'total':<46}{'':>7}{spent:>10.2f}{spent / wall:>8.1%}   (run {wall:.1f} s; budget "
          f"{BUDGET_SHARE:.0%}: {'ok' if result['within_budget'] else 'OVER'})")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
