"""The one context every book page is built from: the run's config, its grid, its combinations and (when the
book was built with seeds) its seed repeats. A page can then never disagree with the run it shows: every number
it prints comes from `PageContext`, which the notebooks build from their papermill parameters."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from clap_lib.config.experiment import DEFAULT_PROFILE, ExperimentConfig
from clap_lib.config.profiles import config_from_params
from clap_lib.config.parse import parse_seeds
from clap_lib.pipeline.results import GridResult, resolve


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
        from clap_lib.analysis.claims import evaluate_claims

        rows = self.per_seed if self.per_seed is not None else self.res
        return evaluate_claims(rows, n_boot=self.cfg.n_boot, n_perm=self.cfg.n_perm, seed=self.cfg.seed)

    def runs(self):
        from clap_lib import report

        return report.load_runs(self.grid)


def context(artifacts: str | Path = "artifacts", esc50: str | Path | None = None, profile: str = DEFAULT_PROFILE,
            seed=0, split_seed=0, target_classes: str = "", swap_split=False, width=None, overrides: str = "",
            seeds: str = "", pretraining: str | None = None, training: str | None = None) -> PageContext:
    """The run the parameters describe, from the cache (computed now if it never ran; seeds must have been
    trained before, by `python -m clap_lib book build --seeds ...` or `run --seeds ...`)."""
    from clap_lib.pipeline.grid import notebook_grid

    params = dict(profile=profile, seed=seed, split_seed=split_seed, target_classes=target_classes,
                  swap_split=swap_split, width=width, overrides=overrides)
    cfg = config_from_params(**params)
    grid = notebook_grid(artifacts, esc50, pretraining=pretraining, training=training, **params)
    return PageContext(cfg, grid, Path(artifacts), load_seed_results(artifacts, parse_seeds(seeds), grid.dir.name))


def load_seed_results(artifacts: str | Path, seeds: tuple[int, ...], grid_key: str) -> pd.DataFrame | None:
    """The per-seed table `run_seeds` wrote for exactly these seeds of this run's config (its grid `grid_key`
    is one of them), or None when none were asked for."""
    if not seeds:
        return None
    pointer = Path(artifacts) / "latest_seeds.json"
    if not pointer.is_file():
        raise FileNotFoundError(f"no seed repeats under {artifacts}: run `python -m clap_lib run --seeds "
                                f"{','.join(map(str, seeds))}` (or `book build --seeds ...`) first")
    info = json.loads(pointer.read_text())
    if tuple(info["seeds"]) != tuple(seeds):
        raise ValueError(f"the seed repeats under {artifacts} are for seeds {info['seeds']}, not {list(seeds)}: "
                         f"run `python -m clap_lib run --seeds {','.join(map(str, seeds))}` first")
    if grid_key not in info.get("grids", []):
        raise ValueError(f"the seed repeats under {artifacts} were run with another configuration than this page's "
                         f"(grid {grid_key}); rerun `python -m clap_lib run --seeds ...` with the same --set values")
    return pd.read_csv(resolve(Path(artifacts), info["dir"]) / "per_seed.csv")


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
