"""The one command line: `python -m clap_lib run|show|config|dry-run|download|book|audit|jobs|overlap ...`.

Every bad value stops before any work with one line naming it and the allowed ones (exit 2); Ctrl-C prints one
line and exits 130 (rerun the same command to resume: every stage is cached and checkpointed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

from clap_lib.config.experiment import DEFAULT_PROFILE, PROFILES, config_payload
from clap_lib.config.parse import parse_seeds, parse_sets
from clap_lib.config.profiles import config_from_sets

STEPS = ("prepare", "clap", "grid")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help=f"{', '.join(PROFILES)} (default {DEFAULT_PROFILE}: published AudioSet-trained CRNNs)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set seed=1 --set clap.frozen_epochs=10 (see `config`)",
    )
    p.add_argument("--esc50", default=None, help="ESC-50 root (default: $CLAP_ESC50, then ../shared/data/esc50)")
    p.add_argument(
        "--data-root",
        default=None,
        help="folder holding captions/, gpvad/, audioset/, clotho/, audiocaps/, ... (default: $CLAP_DATA, "
        "then ../shared/data)",
    )
    p.add_argument("--artifacts", default="artifacts", help="cache/output folder (default: artifacts)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m clap_lib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the pretraining x training grid (cached stages are reused)")
    _config_args(run)
    run.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="repeat the grid over these training seeds and report mean / spread per combination",
    )
    run.add_argument("--pretrainings", default=None, help="comma-separated levels (same as --set pretrainings=...)")
    run.add_argument("--trainings", default=None, help="comma-separated levels (same as --set trainings=...)")
    run.add_argument(
        "--step",
        choices=STEPS,
        default="grid",
        help="prepare: features + backbones; clap: + CLAP runs; grid (default): + summary (see `jobs`)",
    )
    run.add_argument("--quiet", action="store_true")
    run.add_argument("--dry-run", action="store_true", help="check the data, train nothing (same as `dry-run`)")
    _config_args(sub.add_parser("config", help="print the resolved configuration and exit"))
    _config_args(sub.add_parser("dry-run", help="check every dataset and weight file the profile needs; train nothing"))
    sh = sub.add_parser("show", help="print the results table of the latest grid (manifests checked)")
    sh.add_argument("--artifacts", default="artifacts")
    dl = sub.add_parser("download", help="fetch a dataset or weights (needs internet; none here)")
    dl.add_argument("name")
    dl.add_argument("--dest", required=True)
    sub.add_parser("book", help="execute the notebooks and build the HTML book (see `book --help`)", add_help=False)
    sub.add_parser("audit", help="leakage audit of any model's embeddings (see `audit --help`)", add_help=False)
    sub.add_parser(
        "jobs", help="print / run the torchrun command lines of the paper grid (see `jobs --help`)", add_help=False
    )
    sub.add_parser(
        "overlap",
        help="which ESC-50 clips your training data holds, by Freesound ID (see `overlap --help`)",
        add_help=False,
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:
        # sub-programs with their own parsers
        if argv and argv[0] == "book":
            from clap_lib.report.book import main as book_main

            return book_main(argv[1:])
        if argv and argv[0] == "audit":
            from clap_lib.report.audit import main as audit_main

            return audit_main(argv[1:])
        if argv and argv[0] == "jobs":
            from clap_lib.paper.jobs import main as jobs_main

            return jobs_main(argv[1:])
        if argv and argv[0] == "overlap":
            from clap_lib.data.freesound_overlap import main as overlap_main

            return overlap_main(argv[1:])
        args = parser().parse_args(argv)
        if args.cmd == "show":
            return _show(args.artifacts)
        if args.cmd == "download":
            from clap_lib.paper.datasets import download

            for p in download(args.name, args.dest):
                print(p)
            return 0
        sets = parse_sets(args.set)
        for axis in ("pretrainings", "trainings"):
            value = getattr(args, axis, None)
            if value is not None:  # `--trainings ""` is an empty list (an error), not "not given"
                if axis in sets and sets[axis] != value.strip():
                    raise ValueError(f"{axis} is given twice: --{axis} {value!r} and --set {axis}={sets[axis]!r}")
                sets[axis] = value
        cfg = config_from_sets(args.profile, sets)
        if getattr(args, "quiet", False):  # no progress bar either: ours, and those of the libraries (tqdm, HF)
            os.environ.update(TQDM_DISABLE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
            cfg = replace(cfg, run=replace(cfg.run, progress=False))
        if args.cmd == "config":
            print(json.dumps(config_payload(cfg) | {"run": cfg.run.__dict__}, indent=2, default=str))
            return 0
        if args.cmd == "dry-run" or args.dry_run:
            from clap_lib.paper.dry_run import dry_run

            return dry_run(cfg, args.esc50, args.data_root)
        if args.seeds is not None and not args.seeds.strip():
            raise ValueError("--seeds is empty; give comma-separated integers, e.g. 0,1,2, or leave it out")
        seeds = parse_seeds(args.seeds)
        from clap_lib.data.esc50 import data_folders

        print(data_folders(args.esc50, args.data_root), flush=True)
        from clap_lib.pipeline.grid import run_grid, run_seeds

        if seeds:
            from clap_lib.analysis.uncertainty import seed_summary
            from clap_lib.config.levels import TABLE_METRICS

            per_seed = run_seeds(cfg, seeds, args.esc50, args.artifacts, args.quiet, args.data_root)
            print(seed_summary(per_seed, metric_cols=list(TABLE_METRICS)).round(3).to_string(index=False))
            return 0
        g = run_grid(cfg, args.esc50, args.artifacts, quiet=args.quiet, data_root=args.data_root, step=args.step)
        if g is None:  # a step short of the summary, or a non-main rank under torchrun
            return 0
        cols = ["pretraining", "training", "accuracy", "sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et"]
        print(g.results[[c for c in cols if c in g.results]].round(3).to_string(index=False))
        print(json.dumps(g.correlations, indent=2))
        return 0
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only artifacts folder, a full disk
        folder = getattr(args, "artifacts", "artifacts")
        print(
            f"error: cannot write in the artifacts folder {folder}: {e.strerror or e}"
            + (f" ({e.filename})" if e.filename else ""),
            file=sys.stderr,
        )
        return 1


def _show(artifacts: str) -> int:
    from clap_lib.pipeline.results import grid_stages, latest_grid

    g = latest_grid(artifacts)
    stages = [d for part in grid_stages(g).values() for d in part.values()]
    _check_manifests(g.dir, [g.dir, *stages])
    # the features stage the backbones were computed from (named in their manifests' payloads)
    features = {json.loads((d / "manifest.json").read_text())["payload"].get("features") for d in stages}
    _check_manifests(g.dir, [g.root / "features" / k for k in sorted(features - {None})])
    print(g.results.drop(columns=["run_dir"], errors="ignore").to_string(index=False))
    print(json.dumps(g.correlations, indent=2))
    return 0


def _check_manifests(grid_dir, dirs) -> None:
    from clap_lib.pipeline.cache import check_stage_dir

    for d in dirs:
        check_stage_dir(d)


if __name__ == "__main__":
    sys.exit(main())
