"""Reading what a grid run wrote, and the run log: no torch, so the report and the book import it cheaply.

Paths recorded in a grid (`results.csv`'s `run_dir`, `stages.json`, `latest.json`) are relative to the
artifacts root, so a copied or moved artifacts folder keeps working.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class GridResult:
    dir: Path
    results: pd.DataFrame  # run_dir resolved to absolute paths on load
    correlations: dict

    @property
    def root(self) -> Path:
        """The artifacts root (grid/<key>/ lies two levels below it)."""
        return self.dir.parent.parent

    def path(self, rel: str | Path) -> Path:
        return stored_path(self.root, rel)


def relative(root: Path, path: Path) -> str:
    """`path` relative to the artifacts `root` (as stored in the grid's files)."""
    return os.path.relpath(Path(path).resolve(), Path(root).resolve())


def stored_path(root: Path, rel: str | Path) -> Path:
    """A stored path: relative ones are under `root`; absolute ones (grids written before this) are kept. A path
    leading out of the artifacts folder (`..`, another absolute folder) is refused: a grid reads its own stages."""
    rel = Path(rel)
    path = rel if rel.is_absolute() else Path(root) / rel
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise ValueError(f"stored path {str(rel)!r} leads out of the artifacts folder {root}; refused")
    return path


def load_grid(grid_dir: str | Path) -> GridResult:
    grid_dir = Path(grid_dir)
    root = grid_dir.parent.parent
    df = pd.read_csv(grid_dir / "results.csv")
    if "run_dir" in df:
        df["run_dir"] = [str(stored_path(root, p)) for p in df["run_dir"]]
    return GridResult(grid_dir, df, json.loads((grid_dir / "correlations.json").read_text()))


def latest_grid_dir(artifacts: str | Path = "artifacts") -> Path:
    p = Path(artifacts) / "latest.json"
    if not p.is_file():
        raise FileNotFoundError(f"no finished grid under {artifacts}: run `python -m clap_lib run` first")
    try:
        grid = json.loads(p.read_text())["grid"]
        if not isinstance(grid, str):
            raise TypeError(f"'grid' is {type(grid).__name__}, not a path")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{p} is malformed ({type(e).__name__}: {e}); rerun `python -m clap_lib run` to rewrite it"
        ) from None
    return stored_path(Path(artifacts), grid)


def latest_grid(artifacts: str | Path = "artifacts") -> GridResult:
    return load_grid(latest_grid_dir(artifacts))


def grid_stages(grid: GridResult) -> dict[str, dict[str, Path]]:
    """{"backbone": {level: dir}, "clap": {"p/t": dir}} of a grid, as absolute paths."""
    raw = json.loads((grid.dir / "stages.json").read_text())
    return {part: {k: grid.path(v) for k, v in d.items()} for part, d in raw.items()}


class RunLog:
    """Prints and appends to `<artifacts>/run.log`: what ran, what was cached, how long each stage took."""

    def __init__(self, path: Path, quiet: bool = False, deferred: bool = False):
        """`deferred`: lines are kept in memory until :meth:`open` (a run whose input checks fail writes nothing,
        not even the artifacts folder)."""
        self.path, self.quiet, self.timings = path, quiet, []
        self._pending: list[str] | None = [] if deferred else None
        if not deferred:
            path.parent.mkdir(parents=True, exist_ok=True)

    def open(self) -> None:
        """Create the folder and write the lines kept so far."""
        pending, self._pending = self._pending or [], None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for line in pending:
            self._write(line)

    def __call__(self, msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        if not self.quiet:
            print(line, flush=True)
        if self._pending is not None:
            self._pending.append(line)
        else:
            self._write(line)

    def _write(self, line: str) -> None:
        if self.path is None:
            return
        for root in {str(self.path.parent.resolve()), str(self.path.parent)}:  # paths relative to the artifacts
            line = line.replace(root + os.sep, "")
        try:
            with open(self.path, "a") as f:
                f.write(line + "\n")
        except OSError as e:  # a read-only or full folder: a run whose stages are all cached still gives its result
            print(f"warning: cannot write {self.path} ({e.strerror}); the run goes on without its log", file=sys.stderr)
            self.path = None

    def timed(self, name: str, fn: Callable):
        t0 = time.time()
        out = fn()
        self.timings.append({"stage": name, "seconds": round(time.time() - t0, 3)})
        return out
