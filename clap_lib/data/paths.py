"""Where the shared data lives: `$CLAP_DATA`, else a `shared/data` folder beside the checkout (never one found from
the working directory: which data a run reads must not depend on where it is started)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "CLAP_DATA"

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir(project: Path = PROJECT_ROOT) -> Path | None:
    """`$CLAP_DATA`, else the first `shared/data` beside the `project` checkout or one of its parent folders."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    for d in (project, *project.parents):
        cand = d.parent / "shared" / "data"
        if cand.is_dir():
            return cand.resolve()
    return None
