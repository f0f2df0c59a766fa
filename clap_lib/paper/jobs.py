"""`python -m clap_lib jobs`: the grid as independent jobs (torchrun command lines), printed or run here.

    python -m clap_lib jobs [--nproc N] [--run K] [--pretrainings ...] [--trainings ...] -- [ARGS for every job]

Phase 0 prepares the shared stages, phase 1 is one CLAP training per combination (independent: one node each),
phase 2 writes the summary from the cache (clap_lib.training.distributed.grid_jobs).
"""

from __future__ import annotations

import argparse

from clap_lib.config.levels import PAPER_TRAININGS, PRETRAININGS


def main(argv: list[str] | None = None) -> int:
    from clap_lib.training.distributed import Launcher, format_jobs, grid_jobs, run_jobs

    ap = argparse.ArgumentParser(
        prog="python -m clap_lib jobs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--nproc", type=int, default=1, help="processes (GPUs) per job; > 1 runs under torchrun")
    ap.add_argument(
        "--run",
        type=int,
        default=0,
        metavar="K",
        help="run the plan here, K jobs of a phase at once (default: print it)",
    )
    ap.add_argument("--pretrainings", default=",".join(PRETRAININGS))
    ap.add_argument("--trainings", default=",".join(PAPER_TRAININGS))
    ap.add_argument("args", nargs=argparse.REMAINDER, help="after --: arguments for every job (--profile, --set ...)")
    a = ap.parse_args(argv)
    rest = a.args[1:] if a.args[:1] == ["--"] else a.args
    split = lambda s: tuple(x.strip() for x in s.split(",") if x.strip())  # noqa: E731
    plan = grid_jobs(rest, Launcher(nproc=a.nproc), split(a.pretrainings), split(a.trainings))
    if a.run:
        return run_jobs(plan, a.run)
    print(format_jobs(plan))
    return 0
