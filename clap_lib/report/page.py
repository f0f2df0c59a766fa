"""The one context every book page is built from: the run's config, its grid, its combinations and (when the
book was built with seeds) its seed repeats. A page can then never disagree with the run it shows: every number
it prints comes from `PageContext`, which the notebooks build from their papermill parameters.

A page reads its grid by folder (`grid`, passed by the book build) and never runs the pipeline: the build computes
the grid once (hashing the ESC-50 audio once) before any notebook runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clap_lib import report
from clap_lib.analysis.claims import evaluate_claims
from clap_lib.config.experiment import DEFAULT_PROFILE, ExperimentConfig, config_payload
from clap_lib.config.parse import parse_seeds
from clap_lib.config.profiles import config_from_params
from clap_lib.io import _jsonable
from clap_lib.pipeline.results import GridResult, latest_grid_dir, load_grid, stored_path

#: Every page's papermill parameters, declared once: each notebook's `parameters` cell lists exactly these (in this
#: order; tests/test_book_jobs.py checks it), `context` takes them and the book build passes them.
PAGE_PARAMETERS = (
    "profile",
    "artifacts",
    "grid",
    "seed",
    "split_seed",
    "target_classes",
    "swap_split",
    "width",
    "overrides",
    "seeds",
)
#: and the per-combination page's two more
COMBINATION_PARAMETERS = ("pretraining", "training")


@dataclass(frozen=True)
class PageContext:
    cfg: ExperimentConfig
    grid: GridResult
    artifacts: Path
    per_seed: pd.DataFrame | None  # one row per (seed, combination) when the book was built with --seeds

    @property
    def res(self) -> pd.DataFrame:
        return self.grid.results

    @property
    def T(self) -> list[str]:
        return list(self.cfg.split.target)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.per_seed["seed"].unique())) if self.per_seed is not None else (self.cfg.seed,)

    def claims(self):
        """The paper's claims on this run: every seed's row when seed repeats exist (combination means, intervals
        over seeds and clips), else the one grid."""

        rows = self.per_seed if self.per_seed is not None else self.res
        return evaluate_claims(rows, n_boot=self.cfg.n_boot, n_perm=self.cfg.n_perm, seed=self.cfg.seed)

    def runs(self):

        return report.load_runs(self.grid)


def context(
    profile: str = DEFAULT_PROFILE,
    artifacts: str | Path = "artifacts",
    grid: str | Path = "",
    seed=0,
    split_seed=0,
    target_classes: str = "",
    swap_split=False,
    width=None,
    overrides: str = "",
    seeds: str = "",
) -> PageContext:
    """The run the parameters describe, read from its grid folder: `grid` (the book build passes it), else the
    latest grid under `artifacts`. The grid must have been run with exactly this configuration (checked against
    its config.json). Seed repeats must have been trained
    before, by `python -m clap_lib book build --seeds ...` or `run --seeds ...`."""
    cfg = config_from_params(profile, seed, split_seed, target_classes, swap_split, width, overrides)
    grid_dir = Path(grid) if str(grid) else latest_grid_dir(artifacts)
    check_grid_config(grid_dir, cfg)
    found = load_grid(grid_dir)
    return PageContext(cfg, found, Path(artifacts), load_seed_results(artifacts, parse_seeds(seeds), grid_dir.name))


def check_grid_config(grid_dir: Path, cfg: ExperimentConfig) -> None:
    """The grid in `grid_dir` was run with `cfg` (what can change a result: `config_payload`), else an error naming
    the settings that differ."""
    path = Path(grid_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no finished grid at {grid_dir} ({path.name} missing): run `python -m clap_lib run` "
            f"(or `book build`) with this page's parameters first"
        )
    stored = json.loads(path.read_text())["config"]
    wanted = json.loads(json.dumps(config_payload(cfg), default=_jsonable))
    differ = sorted(k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k))
    if differ:
        raise ValueError(
            f"the grid at {grid_dir} was run with other settings than this page's parameters "
            f"({', '.join(differ)}): run `python -m clap_lib run` with them, or pass `-p grid DIR`"
        )


def load_seed_results(artifacts: str | Path, seeds: tuple[int, ...], grid_key: str) -> pd.DataFrame | None:
    """The per-seed table `run_seeds` wrote for exactly these seeds of this run's config (its grid `grid_key`
    is one of them), or None when none were asked for."""
    if not seeds:
        return None
    pointer = Path(artifacts) / "latest_seeds.json"
    if not pointer.is_file():
        raise FileNotFoundError(
            f"no seed repeats under {artifacts}: run `python -m clap_lib run --seeds "
            f"{','.join(map(str, seeds))}` (or `book build --seeds ...`) first"
        )
    info = json.loads(pointer.read_text())
    if tuple(info["seeds"]) != tuple(seeds):
        raise ValueError(
            f"the seed repeats under {artifacts} are for seeds {info['seeds']}, not {list(seeds)}: "
            f"run `python -m clap_lib run --seeds {','.join(map(str, seeds))}` first"
        )
    if grid_key not in info.get("grids", []):
        raise ValueError(
            f"the seed repeats under {artifacts} were run with another configuration than this page's "
            f"(grid {grid_key}); rerun `python -m clap_lib run --seeds ...` with the same --set values"
        )
    return pd.read_csv(stored_path(Path(artifacts), info["dir"]) / "per_seed.csv")


def glue(name: str, value) -> None:
    """`myst_nb.glue` of a number or text for the page's sentences ({glue:text}`name:.3f`): numpy scalars become
    Python numbers, which the text role can format."""
    import numpy as np
    from myst_nb import glue as _glue

    if isinstance(value, np.integer | bool):
        value = int(value)
    elif isinstance(value, np.floating):
        value = float(value)
    _glue(name, value, display=False)
