"""Where the shared data lives: `$CLAP_DATA`, else a `shared/data` folder beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "CLAP_DATA"


def shared_data_dir() -> Path | None:
    """`$CLAP_DATA`, else the first `shared/data` found beside the working directory or this checkout."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            cand = d.parent / "shared" / "data"
            if cand.is_dir():
                return cand
    return None
