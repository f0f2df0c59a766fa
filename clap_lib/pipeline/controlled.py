"""The controlled experiment (issue 20): many converged CLAP runs on cached backbone outputs, after the grid.

`run_grid` calls :func:`controlled_step` when `cfg.controlled.enabled`. It reuses the grid's backbone stages (x_a of
every clip) and adds:

* a `trunk` stage per backbone whose top is fine-tuned (the CRNN's convolutional trunk outputs of every clip, the
  bi-GRU's input, computed once);
* a `text` stage of every caption the design's pair tables hold and the 50 label prompts;
* one `controlled_run` stage per run (clap_lib.pipeline.controlled_design: splits x seeds x pretrainings x
  {dirty, clean, unseen, matched}, and the dose curves), keyed by exactly its inputs, so an interrupted design
  resumes where it stopped and a changed setting retrains only the runs it touches; runs go to
  `cfg.controlled.workers` processes of one thread each;
* a `controlled` stage collecting the records for the book: runs.csv, clips.csv, classes.csv, design.json
  (and embeddings.npz of split 0's first seed). A pointer `<artifacts>/controlled_runs/<grid key>.json` tells
  the book which belongs to a grid (:func:`controlled_for`).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from clap_lib.config.experiment import ExperimentConfig
from clap_lib.data.captions import prompt_for
from clap_lib.data.esc50 import ESC50_CLASSES, EVAL_FOLD
from clap_lib.data.pairs import training_pairs
from clap_lib.io import atomic_json, atomic_npy, atomic_npz
from clap_lib.models import backbones
from clap_lib.pipeline.cache import Stage, cache_key, run_stage
from clap_lib.pipeline.controlled_design import Run, class_counts, design_runs, pair_tables, rows_of, split_of
from clap_lib.pipeline.controlled_run import Job, run_job
from clap_lib.pipeline.evaluation import load_features
from clap_lib.pipeline.keys import TEXT_FIELDS, _pick
from clap_lib.pipeline.stages import text_stage

VERSION = 3  # 2: the three S of Table 3 per run; 3: fused Adam, validation E_a once per clip
RECORDS_VERSION = 2  # what the collected records hold (design.json's text); the runs' keys do not move
#: settings that choose which runs exist, not how one trains: not in a run's key
_NOT_RECIPE = ("workers", "seeds", "dose_seeds", "doses", "ladder", "ladder_seeds")
POINTERS = "controlled_runs"


def trunk_stage(root: Path, cfg: ExperimentConfig, feats: Stage, bb: Stage, log) -> Stage:
    """The frozen convolutional trunk's output of every clip (clips, frames / 4, 128), eval mode."""

    def write(out: Path, work: Path) -> dict:
        net = (
            backbones.spec(cfg.backbone)
            .from_state(cfg, torch.load(bb.dir / "backbone.pt", map_location="cpu", weights_only=True))
            .eval()
        )
        logmels = load_features(feats)[0]
        with torch.no_grad():
            trunk = torch.cat(
                [
                    net.trunk(torch.from_numpy(np.array(logmels[i : i + 64], dtype=np.float32)))
                    for i in range(0, len(logmels), 64)
                ]
            )
        atomic_npy(out / "trunk.npy", trunk.numpy())
        return {"shape": list(trunk.shape)}

    return run_stage(root, "trunk", {"backbone": bb.key, "features": feats.key, "version": VERSION}, write, log)[0]


def design_captions(tables: dict) -> set[str]:
    """Every caption the design's pair tables hold, and the 50 label prompts (the text stage encodes them)."""
    pairs = pd.concat([frame for t, v, _ in tables.values() for frame in (*t.values(), v)])
    return set(pairs["caption"]) | {prompt_for(c) for c in ESC50_CLASSES}


def design_tables(cfg: ExperimentConfig, inp, ok: np.ndarray) -> dict:
    """{(split, seed): (pair tables, validation pairs, class counts)} of every split and seed the design uses."""
    dirty_all = training_pairs(cfg, inp.meta, ok, inp.split, "dirty", inp.captions)[0]
    splits = (0, 1) if cfg.controlled.both_splits else (0,)
    out = {}
    for s in splits:
        sp = split_of(inp.split, s)
        for seed in cfg.controlled.seeds:
            tables, val = pair_tables(dirty_all, inp.captions.pools, sp, seed, cfg.controlled)
            out[(s, seed)] = (tables, val, class_counts(tables, sp).assign(split=s, seed=seed))
    return out


def _jobs(
    cfg,
    runs: list[Run],
    tables: dict,
    bbs: dict[str, Stage],
    trunks: dict[str, Stage],
    text: Stage,
    meta: pd.DataFrame,
    ok: np.ndarray,
    grid_split,
) -> dict[str, tuple[Job, dict]]:
    """{run id: (job, cache payload)}."""
    captions = json.loads((text.dir / "captions.json").read_text())
    row = {c: i for i, c in enumerate(captions)}
    out = {}
    for r in runs:
        sp = split_of(grid_split, r.split)
        pairs, val, _ = tables[(r.split, r.seed)]
        ev = np.flatnonzero((meta["fold"] == EVAL_FOLD).to_numpy() & ok & meta["category"].isin(sp.target).to_numpy())
        y = meta["category"].to_numpy()[ev]
        t_index = {c: i for i, c in enumerate(sp.target)}
        train, val_rows = rows_of(pairs[r.table], row), rows_of(val, row)
        job = Job(
            r.id,
            r.seed,
            cfg,
            str(bbs[r.pretraining].dir / "x_a.npy"),
            str(text.dir / "x_t.npy"),
            train,
            val_rows,
            ev,
            np.array([t_index[c] for c in y]),
            np.array([row[prompt_for(c)] for c in sp.target]),
            str(trunks[r.pretraining].dir / "trunk.npy") if r.gru else None,
            str(bbs[r.pretraining].dir / "backbone.pt") if r.gru else None,
            keep_embeddings=r.split == 0
            and r.seed == cfg.controlled.seeds[0]
            and r.level != "dose"
            and not r.pretraining.startswith("ladder:"),
        )
        payload = {
            "run": asdict(r),
            "backbone": bbs[r.pretraining].key,
            "text": text.key,
            "trunk": trunks[r.pretraining].key if r.gru else None,
            "pairs": cache_key(train.tolist()),
            "val": cache_key(val_rows.tolist()),
            "eval": cache_key(ev.tolist()),
            "recipe": {k: v for k, v in asdict(cfg.controlled).items() if k not in _NOT_RECIPE},
            "metrics": _pick(cfg, ("topo_k_min", "topo_k_max", "topo_n_perm")),
            "version": VERSION,
        }
        out[r.id] = (job, payload)
    return out


def _write_run(out: Path, run: Run, res: dict) -> dict:
    atomic_json(res["record"], out / "record.json")
    atomic_npz(out / "clips.npz", **res["clips"])
    atomic_json(res["history"], out / "history.json")
    if res["embeddings"] is not None:
        atomic_npz(out / "embeddings.npz", **res["embeddings"])
    return {"seconds": res["record"]["seconds"]}


def _train_all(root: Path, cfg, runs: list[Run], jobs: dict, log) -> dict[str, Stage]:
    """Every run's stage: cached ones reused, the others trained by `cfg.controlled.workers` processes."""
    stages = {r.id: Stage(root, "controlled_run", cache_key(jobs[r.id][1])) for r in runs}
    todo = [r for r in runs if not stages[r.id].is_valid()]
    log(
        f"controlled: {len(runs)} runs, {len(runs) - len(todo)} cached, {len(todo)} to train "
        f"on {cfg.controlled.workers} worker(s)"
    )
    if not todo:
        return stages
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="controlled runs", disable=not cfg.run.progress)

    def store(r: Run, res: dict) -> None:
        run_stage(root, "controlled_run", jobs[r.id][1], lambda out, work: _write_run(out, r, res), lambda m: None)

    if cfg.controlled.workers == 1:
        for r in todo:
            store(r, run_job(jobs[r.id][0], cfg.controlled))
            bar.update()
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked torch thread pools
        with ProcessPoolExecutor(cfg.controlled.workers, mp_context=ctx) as pool:
            futures = {pool.submit(run_job, jobs[r.id][0], cfg.controlled): r for r in todo}
            for fut in as_completed(futures):
                r = futures[fut]
                store(r, fut.result())
                bar.update()
                bar.set_postfix_str(r.id)
    bar.close()
    return stages


def _collect(
    out: Path,
    runs: list[Run],
    stages: dict[str, Stage],
    tables: dict,
    meta: pd.DataFrame,
    cfg,
    seconds: float,
    ladder: Stage | None = None,
) -> dict:
    """runs.csv, clips.csv, classes.csv, embeddings.npz and design.json of the grid, dose and extra runs;
    ladder_runs.csv (one row per ladder run) and ladder.csv (per network) of the ladder."""
    rungs = [r for r in runs if r.pretraining.startswith("ladder:")]
    ladder_rows = [
        {"network": r.pretraining[len("ladder:") :], "run": r.id, "split": r.split, "seed": r.seed, "level": r.level}
        | json.loads((stages[r.id].dir / "record.json").read_text())
        for r in rungs
    ]
    if ladder_rows:
        pd.DataFrame(ladder_rows).to_csv(out / "ladder_runs.csv", index=False)
    if ladder is not None:
        (out / "ladder.csv").write_text((ladder.dir / "ladder.csv").read_text())
    all_seconds = sum(row["seconds"] for row in ladder_rows)
    runs = [r for r in runs if not r.pretraining.startswith("ladder:")]
    records, clip_rows, emb = [], [], {}
    for r in runs:
        d = stages[r.id].dir
        rec = json.loads((d / "record.json").read_text())
        records.append(
            {
                "run": r.id,
                "split": r.split,
                "seed": r.seed,
                "pretraining": r.pretraining,
                "level": r.level,
                "f": r.f,
                **{k: v for k, v in rec.items() if k != "run"},
            }
        )
        with np.load(d / "clips.npz") as c:
            clip_rows.append(
                pd.DataFrame({k: c[k] for k in c.files}).assign(
                    run=r.id, split=r.split, seed=r.seed, pretraining=r.pretraining, level=r.level, f=r.f
                )
            )
        if (d / "embeddings.npz").is_file():
            with np.load(d / "embeddings.npz") as e:
                emb |= {f"{r.pretraining}/{r.level}/{k}": e[k] for k in e.files}
    runs_df = pd.DataFrame(records)
    pairs = {r.id: tables[(r.split, r.seed)][0][r.table] for r in runs}
    runs_df["n_pairs"] = [len(pairs[i]) for i in runs_df["run"]]
    runs_df["n_target_pairs"] = [
        int(pairs[i]["category"].isin(split_of(cfg.split, s).target).sum())
        for i, s in zip(runs_df["run"], runs_df["split"])
    ]
    runs_df.to_csv(out / "runs.csv", index=False)
    clips = pd.concat(clip_rows, ignore_index=True)
    clips["category"] = meta["category"].to_numpy()[clips["clip"]]
    targets = {r.id: split_of(cfg.split, r.split).target for r in runs}
    clips["predicted"] = [targets[i][p] for i, p in zip(clips["run"], clips["predicted"])]
    clips.to_csv(out / "clips.csv", index=False)
    pd.concat([t[2] for t in tables.values()], ignore_index=True).to_csv(out / "classes.csv", index=False)
    if emb:
        atomic_npz(out / "embeddings.npz", **emb)
    cc = cfg.controlled
    atomic_json(
        {
            "config": asdict(cc),
            "n_runs": len(runs),
            "levels": list(dict.fromkeys(r.level for r in runs)),
            "doses": list(cc.doses),
            "seeds": list(cc.seeds),
            "dose_seeds": list(cc.dose_seeds),
            "splits": sorted({r.split for r in runs}),
            "d_embed": cc.d_embed,
            "chance": float(runs_df["chance"].mean()),
            "cuts": _cuts(cc),
            "pretrainings": list(dict.fromkeys(r.pretraining for r in runs)),
            "train_seconds": float(runs_df["seconds"].sum()),
            "ladder_train_seconds": float(all_seconds),
            "ladder_seeds": list(cc.ladder_seeds) if rungs else [],
            "wall_seconds": seconds,
        },
        out / "design.json",
    )
    return {"n_runs": len(runs)}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _cuts(cc) -> list[str]:
    """What this design leaves out of the issue's full one, in words for the book."""
    out = []
    if cc.d_embed != 1024:
        out.append(
            f"the joint space is {cc.d_embed}-d, not the paper's 1024-d: a projector step costs about 3x less "
            "(benchmarks/results/controlled.md), and the design's runs share the main job's time"
        )
    if len(cc.dose_seeds) == 1:
        out.append(
            f"the dose curves use 1 seed of the {len(cc.seeds)}, so their intervals are over clips only: the main "
            "job's 45-minute budget forces cuts, and dose-curve seeds are the first the design gives up"
        )
    elif len(cc.dose_seeds) < len(cc.seeds):
        out.append(f"the dose curves use {len(cc.dose_seeds)} of the {len(cc.seeds)} seeds")
    if not cc.both_splits:
        out.append("only the grid's class split is evaluated (25 of the 50 classes)")
    if cc.gru and cc.gru_crop is not None:
        out.append(
            f"the bi-GRU is fine-tuned on random windows of {cc.gru_crop} trunk frames (a 5 s clip has "
            "62); x_a at evaluation is that of the whole clip"
        )
    if cc.ladder:
        out.append(
            f"the ladder's runs train the projectors only, on class split 0 and {_count(len(cc.ladder_seeds), 'seed')}"
            + (
                " (one seed per network is the ladder's first cut under the main job's 45-minute budget)"
                if len(cc.ladder_seeds) == 1
                else ""
            )
            + ", at the levels unseen and dirty; its pretraining-dose networks train only their bi-GRU (on the frozen"
            " trunk)"
        )
    out.append(
        "the dose runs train the projectors only (no fine-tuning of the backbone's top); their f = 0 and "
        "f = 1 points are the grid's unseen and dirty runs after the same frozen phase"
    )
    return out


def controlled_step(
    root: Path,
    cfg: ExperimentConfig,
    inp,
    feats: Stage,
    bbs: dict[str, Stage],
    ok: np.ndarray,
    grid_key: str,
    log,
    extra: dict[str, Stage] | None = None,
    tables: dict | None = None,
    text: Stage | None = None,
) -> Stage | None:
    """run_grid's step (single process): the design's stages, then the records and the pointer for `grid_key`.
    `extra`: other networks' stages holding x_a.npy of every clip (name -> stage), trained at the grid's levels.
    `tables` (:func:`design_tables`) and `text` (a text stage holding :func:`design_captions`): computed here when
    not given."""
    cc = cfg.controlled
    if not cc.enabled:
        return None
    t0 = time.perf_counter()
    pres = tuple(p for p in cfg.pretrainings if p in bbs)
    can = hasattr(backbones.spec(cfg.backbone).random_init(cfg, 1, 0), "trunk")
    extra = extra or {}
    tables = tables if tables is not None else log.timed("controlled pairs", lambda: design_tables(cfg, inp, ok))
    if text is None:
        text = log.timed("controlled text", lambda: text_stage(root, cfg, sorted(design_captions(tables)), log))
    trunks = {
        p: log.timed(f"trunk[{p}]", lambda p=p: trunk_stage(root, cfg, feats, bbs[p], log))
        for p in pres
        if can and (cc.gru or cc.ladder)
    }
    ladder = {}
    if cc.ladder and can:
        from clap_lib.pipeline.ladder import ladder_step, ladder_table_stage

        ladder = ladder_step(root, cfg, inp, feats, ok, bbs, trunks, extra.get("mn04_as"), log)
        extra = extra | {
            "ladder_table": log.timed("ladder", lambda: ladder_table_stage(root, cfg, inp.meta, ok, ladder, log))
        }
    runs = design_runs(cc, pres, can and cc.gru, tuple(k for k in extra if k != "ladder_table"), tuple(ladder))
    sources = {**bbs, **extra, **{f"ladder:{n}": st for n, (st, _) in ladder.items()}}
    jobs = _jobs(cfg, runs, tables, sources, trunks, text, inp.meta, ok, inp.split)
    stages = log.timed("controlled runs", lambda: _train_all(root, cfg, runs, jobs, log))
    table = extra.get("ladder_table")
    payload = {
        "runs": sorted(s.key for s in stages.values()),
        "version": VERSION,
        "text": _pick(cfg, TEXT_FIELDS),
        "ladder": table.key if table else None,
        "records": RECORDS_VERSION,
    }
    stage = run_stage(
        root,
        "controlled",
        payload,
        lambda out, work: _collect(out, runs, stages, tables, inp.meta, cfg, time.perf_counter() - t0, table),
        log,
    )[0]
    atomic_json({"stage": stage.rel}, Path(root) / POINTERS / f"{grid_key}.json")
    return stage


def controlled_for(grid_dir: str | Path) -> dict | None:
    """The controlled records of the grid in `grid_dir` (`<artifacts>/grid/<key>`): {"dir": folder}, or
    {"skipped": why}; None when its run had no such stage (controlled.enabled false, or another profile)."""
    grid_dir = Path(grid_dir)
    p = grid_dir.parent.parent / POINTERS / f"{grid_dir.name}.json"
    if not p.is_file():
        return None
    pointer = json.loads(p.read_text())
    d = grid_dir.parent.parent / pointer["stage"]
    if not (d / "manifest.json").is_file():
        return {"skipped": f"its stage folder {d.name} is missing"}
    return {"dir": d}
