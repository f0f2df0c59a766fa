"""Running the grid: every stage in order for one configuration (`run_grid`), over seeds (`run_seeds`), and the grid
a notebook's papermill parameters describe (`notebook_grid`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.analysis.uncertainty import seed_summary
from clap_lib.config.experiment import ExperimentConfig, _one_of
from clap_lib.config.levels import PRETRAININGS, TABLE_METRICS, TRAININGS
from clap_lib.config.profiles import config_from_params
from clap_lib.io import atomic_json, atomic_write
from clap_lib.pipeline.cache import cache_key
from clap_lib.pipeline.controlled import controlled_step, design_captions, design_tables
from clap_lib.pipeline.esc50_inputs import Esc50Inputs
from clap_lib.pipeline.paper_strength import paper_strength_step
from clap_lib.pipeline.results import GridResult, RunLog, load_grid, relative
from clap_lib.pipeline.stages import backbone_stage, clap_stage, features_stage, grid_stage, text_stage
from clap_lib.training.distributed import World, init_world


def _inputs_of(profile: str):
    """The class that reads a profile's inputs (`check(cfg)`, `device(cfg)`, `read(...)`: a GridInputs)."""
    if profile == "paper":
        from clap_lib.paper.inputs import PaperInputs

        return PaperInputs
    return Esc50Inputs


def run_grid(
    cfg: ExperimentConfig,
    esc50_root: str | Path | None = None,
    artifacts: str | Path = "artifacts",
    quiet: bool = False,
    update_latest: bool = True,
    data_root: str | Path | None = None,
    step: str = "grid",
    *,
    roots: Mapping[str, str | Path | None] | None = None,
    world: World | None = None,
) -> GridResult | None:
    """Run (or load from the cache) every stage of the grid; `latest.json` points at the result unless
    `update_latest` is False (notebooks re-running one combination must not move the pointer). `step`
    "prepare" stops after the backbones, "clap" after the CLAP runs (returning None): jobs split the grid so.

    Under torchrun every rank calls this (`world`: default from the environment, clap_lib.training.distributed.init_world);
    rank 0 writes the artifacts and gets the result, the other ranks None. `roots` (paper profile): data set
    name -> folder, default datasets.default_roots(data_root)."""
    cfg.validate()
    if step not in ("prepare", "clap", "grid"):
        raise ValueError(f"unknown step {step!r}; allowed: prepare, clap, grid")
    reader = _inputs_of(cfg.profile)
    reader.check(cfg)  # before anything is written
    world = world or init_world(reader.device(cfg))
    _check_batches(cfg, world)
    if cfg.run.release_memory:
        from clap_lib.pipeline.memory import fixed_mmap_threshold

        fixed_mmap_threshold()
    if cfg.run.num_threads:
        torch.set_num_threads(cfg.run.num_threads)
    root = Path(artifacts)
    log = RunLog(root / "run.log", quiet, deferred=True) if world.is_main else _Silent()
    log(
        f"grid start: profile={cfg.profile} seed={cfg.seed} "
        f"combos={len(cfg.pretrainings) * len(cfg.trainings)}"
        + (
            f" device={world.device} processes={world.world_size}"
            if world.device.type != "cpu" or world.distributed
            else ""
        )
    )
    # everything that can fail on a bad input is checked before the first stage runs
    inp = reader.read(cfg, esc50_root, data_root, roots, world, log, with_pairs=step != "prepare")
    log.open()  # the inputs are good: the artifacts folder and run.log may be created now
    feats = log.timed(
        "features", lambda: features_stage(root, inp.meta, inp.fingerprint, cfg.audio, cfg.run.progress, log, world)
    )
    ok = np.load(feats.dir / "ok.npy")
    bbs = {
        p: log.timed(
            f"backbone[{p}]",
            lambda p=p: backbone_stage(root, cfg, feats, inp.backbone(p, feats, ok), log, world, inp.precision),
        )
        for p in inp.levels
    }
    if step == "prepare":
        return None
    pair_sets = {t: inp.pairs(t, feats, ok) for t in cfg.trainings}
    captions = inp.text_captions(pair_sets, ok)
    design = None
    if cfg.controlled.enabled and not world.distributed:  # one text stage for the grid and the controlled runs
        design = log.timed("controlled pairs", lambda: design_tables(cfg, inp, ok))
        captions = sorted(set(captions) | design_captions(design))
    text = log.timed("text", lambda: text_stage(root, cfg, captions, log, world)) if captions is not None else None
    runs = {}
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            runs[(p, t)] = log.timed(
                f"clap[{p},{t}]",
                lambda p=p, t=t: clap_stage(root, cfg, inp, feats, bbs[p], p, t, pair_sets[t], log, world, text),
            )
    if step == "clap":
        return None
    grid = log.timed("grid", lambda: grid_stage(root, cfg, inp, runs, bbs, pair_sets, ok, log, world, feats))
    strong = None
    if cfg.run.paper_strength is not None:  # an extra stage of its own key (the default run's)
        strong = log.timed(
            "paper_strength", lambda: paper_strength_step(root, cfg, inp.meta, inp.fingerprint, grid.key, log, world)
        )
    if design is not None and world.is_main:  # its own stages, after the grid's
        extra = {"mn04_as": strong} if strong is not None else {}  # Table 1's column at the paper's strength
        log.timed(
            "controlled", lambda: controlled_step(root, cfg, inp, feats, bbs, ok, grid.key, log, extra, design, text)
        )
    if not world.is_main:
        return None
    if update_latest:
        try:
            atomic_json(
                {"grid": relative(root, grid.dir), "key": grid.key, "timings": log.timings}, root / "latest.json"
            )
        except OSError:
            if _latest_key(root) != grid.key:  # the pointer would be wrong, not just its timings old
                raise
    log("grid done: " + ", ".join(f"{t['stage']} {t['seconds']:.1f}s" for t in log.timings))
    return load_grid(grid.dir)


def _latest_key(root: Path) -> str | None:
    try:
        return json.loads((root / "latest.json").read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def _check_batches(cfg: ExperimentConfig, world: World) -> None:
    """Every global batch must split evenly over the ranks (checked before any stage runs)."""
    sizes = [("clap.batch_size", cfg.clap.batch_size)]
    if any(cfg.weights.source(p).train is not None for p in cfg.pretrainings):
        sizes.append(("pretrain.batch_size", cfg.pretrain.batch_size))
    for name, size in sizes:
        if size % world.world_size:
            raise ValueError(f"{name}={size} is not a multiple of the {world.world_size} processes")


class _Silent:
    """The log of non-main ranks: nothing is printed twice."""

    timings: list = []

    def __call__(self, msg: str) -> None:
        pass

    def timed(self, name: str, fn):
        return fn()

    def open(self) -> None:
        pass


def run_seeds(
    cfg: ExperimentConfig,
    seeds: tuple[int, ...],
    esc50_root: str | Path | None = None,
    artifacts: str | Path = "artifacts",
    quiet: bool = False,
    data_root: str | Path | None = None,
) -> pd.DataFrame:
    """The grid repeated over `seeds` (training seed; the class split stays fixed by `split_seed`).

    Returns one row per (seed, combination) and writes it, with the mean / spread per combination, under
    `<artifacts>/seeds/<key>/`. `latest.json` points at the grid of the first seed; `latest_seeds.json` at these.
    """

    if not seeds:
        raise ValueError("seeds is empty; give at least one seed, e.g. 0,1,2")
    frames = []
    for i, s in enumerate(seeds):
        g = run_grid(replace(cfg, seed=int(s)), esc50_root, artifacts, quiet, update_latest=i == 0, data_root=data_root)
        frames.append(g.results.assign(seed=int(s), grid_key=g.dir.name))
    per_seed = pd.concat(frames, ignore_index=True)
    summary = seed_summary(per_seed, metric_cols=list(TABLE_METRICS))
    key = cache_key({"grids": [f.loc[0, "grid_key"] for f in frames]})
    out = Path(artifacts) / "seeds" / key
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(
        out / "per_seed.csv", lambda p: per_seed.drop(columns=["run_dir"], errors="ignore").to_csv(p, index=False)
    )
    atomic_write(out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    atomic_json(
        {"seeds": list(seeds), "grids": [f.loc[0, "grid_key"] for f in frames], "dir": relative(Path(artifacts), out)},
        Path(artifacts) / "latest_seeds.json",
    )
    return per_seed


def notebook_grid(
    artifacts: str | Path = "artifacts",
    esc50: str | Path | None = None,
    pretraining: str | None = None,
    training: str | None = None,
    **params,
) -> GridResult:
    """The grid a notebook's papermill parameters describe, from the cache or computed now.

    With `pretraining`/`training` only that combination is run (its cached stages are shared with the full
    grid). `params` are those of `config.config_from_params`; bad values raise before any work.
    """

    cfg = config_from_params(**params)
    if pretraining is not None:
        _one_of("pretraining", pretraining, PRETRAININGS)
        cfg = replace(cfg, pretrainings=(pretraining,))
    if training is not None:
        _one_of("training", training, TRAININGS)
        cfg = replace(cfg, trainings=(training,))
    return run_grid(
        replace(cfg, run=replace(cfg.run, progress=False)), esc50, artifacts, quiet=True, update_latest=False
    )
