"""Where the default run's time goes (issue 20's budget): the stage timings of the latest run, the controlled
experiment's per-run cost and run counts, read from an artifacts folder (nothing is recomputed).

    .venv/bin/python benchmarks/main_job.py --artifacts artifacts [--out benchmarks/results/main_job.json]

`latest.json` holds the wall seconds of every stage of the last `clap run` (a cached stage takes about 0 s there,
so run it on a fresh artifacts folder to time a fresh clone); the controlled stage's design.json, runs.csv and
ladder_runs.csv hold the CPU-bound seconds of every trained run (one thread each, two at a time).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clap_lib.pipeline.controlled import controlled_for  # noqa: E402

#: stages timed inside "controlled" (counted once, there)
NESTED = ("trunk[", "ladder", "controlled runs", "controlled text")


def logged_stages(log: Path) -> pd.DataFrame:
    """The stage timings of the last "grid done:" line of a run.log (or of a `clap run` console log)."""
    line = [ln for ln in log.read_text(errors="replace").splitlines() if "grid done: " in ln][-1]
    rows = []
    for part in line.split("grid done: ", 1)[1].split("s, "):
        name, _, sec = part.rstrip("s").rpartition(" ")
        rows.append({"stage": name, "seconds": float(sec)})
    return pd.DataFrame(rows)


def summary(artifacts: Path, log: Path | None = None) -> dict:
    latest = json.loads((artifacts / "latest.json").read_text())
    stages = logged_stages(log) if log else pd.DataFrame(latest["timings"])
    top = ~stages["stage"].str.startswith(NESTED)  # these are timed inside the "controlled" stage too
    out = {"stages": stages.to_dict("records"), "total_seconds": float(stages.loc[top, "seconds"].sum())}
    found = controlled_for(artifacts / latest["grid"])
    if found and "dir" in found:
        d = found["dir"]
        runs = pd.read_csv(d / "runs.csv")
        blocks = runs.assign(block=runs["level"].where(runs["level"] == "dose", "grid"))
        blocks.loc[~runs["pretraining"].isin(["dirty", "clean", "none"]), "block"] = "extra network"
        per = blocks.groupby(["block", "gru"])["seconds"].agg(["count", "mean", "sum"]).reset_index()
        if (d / "ladder_runs.csv").is_file():
            lad = pd.read_csv(d / "ladder_runs.csv")
            per.loc[len(per)] = ["ladder", False, len(lad), lad["seconds"].mean(), lad["seconds"].sum()]
        out["controlled_runs"] = per.to_dict("records")
        out["design"] = json.loads((d / "design.json").read_text())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--log", type=Path, default=None, help="take the stage timings from this run log instead")
    a = ap.parse_args()
    s = summary(a.artifacts, a.log)
    print(pd.DataFrame(s["stages"]).to_string(index=False))
    print(f"total {s['total_seconds'] / 60:.1f} min of stage wall time")
    if "controlled_runs" in s:
        print(pd.DataFrame(s["controlled_runs"]).to_string(index=False))
    if a.out:
        a.out.write_text(json.dumps(s, indent=1, default=float))
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
