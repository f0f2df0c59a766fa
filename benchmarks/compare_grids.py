"""Compare two grid folders (e.g. the default run before and after a refactor): every summary file of the grid
stage and every CLAP run's outputs, byte for byte (timing fields excepted; checkpoints tensor by tensor). Prints a table and writes JSON.

    .venv/bin/python benchmarks/compare_grids.py OLD_ARTIFACTS NEW_ARTIFACTS [--out benchmarks/results/X.json]

Each artifacts folder's latest.json names its grid; CLAP runs are matched by their stage key (equal keys are
expected when a change is value-neutral; a run recomputed in NEW is compared with the cached one in OLD)."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

TIMING_FILES = {"history.json"}  # per-epoch wall-clock seconds: differ from run to run, compared without them


def _same_checkpoint(a: Path, b: Path) -> bool:
    """Checkpoints: the zip container's byte layout varies between saves; the tensors are what must be equal."""
    import torch

    x, y = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _digest(path: Path) -> str:
    if path.name in TIMING_FILES:
        data = json.loads(path.read_text())
        for row in data if isinstance(data, list) else []:
            if isinstance(row, dict):
                row.pop("seconds", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare(old: Path, new: Path) -> list[dict]:
    rows = []
    grid_old = old / json.loads((old / "latest.json").read_text())["grid"]
    grid_new = new / json.loads((new / "latest.json").read_text())["grid"]
    pairs = [(grid_old, grid_new)]
    pairs += [(old / "clap" / d.name, d) for d in sorted((new / "clap").iterdir()) if d.is_dir()]
    for a, b in pairs:
        for f in sorted(p for p in b.iterdir() if p.is_file() and p.name != "manifest.json"):
            g = a / f.name
            if not g.is_file():
                same = False
            elif f.suffix == ".pt":
                same = _same_checkpoint(g, f)
            else:
                same = _digest(g) == _digest(f)
            rows.append({"file": str(f.relative_to(new)), "identical": same})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--note", default="", help="what OLD and NEW are (commits, what was recomputed), kept in the JSON")
    args = ap.parse_args()
    rows = compare(args.old, args.new)
    for r in rows:
        print(f"{'identical' if r['identical'] else 'DIFFERS':10s} {r['file']}")
    n_diff = sum(not r["identical"] for r in rows)
    print(f"{len(rows) - n_diff} identical, {n_diff} differ")
    if args.out:
        args.out.write_text(json.dumps({"note": args.note, "files": rows, "n_differ": n_diff}, indent=2) + "\n")
    raise SystemExit(1 if n_diff else 0)


if __name__ == "__main__":
    main()
