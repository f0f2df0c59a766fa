"""The paper's Tables 1-3 as data: load, validate, re-derive its correlations, compare with a run.

The values are *not* bundled: no verified copy of the paper's tables could be obtained on the machines this
project is built on (no internet), and a number typed from memory would be a fabricated result. Transcribe
them once from the paper into a CSV with the columns in ``COLUMNS`` (one row per pretraining x training
combination; the schema is in ``clap_lib/paper_tables_template.csv``), then point at it with the
``paper_tables`` notebook parameter, ``CLAP_PAPER_TABLES``, or drop it as ``paper_tables.csv`` in the shared
data folder (``$CLAP_DATA``, else ``../shared/data``) or in the package as ``clap_lib/paper_tables.csv``. Every page then shows the paper's number next to this run's, the difference,
and the paper's own correlations (0.97 and 0.85, p = 0.032, in its text) re-derived from its tables by
``paper_correlations``, so a transcription error shows up as a mismatch with the text.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .paths import shared_data_dir
from .experiment import PRETRAININGS, TRAININGS
from .metrics import pearson

ENV = "CLAP_PAPER_TABLES"
PACKAGED = Path(__file__).with_name("paper_tables.csv")
TEMPLATE = Path(__file__).with_name("paper_tables_template.csv")
SHARED_NAME = "paper_tables.csv"  # looked for in the shared data folder ($CLAP_DATA, else ../shared/data)
KEYS = ("pretraining", "training")
# table -> value columns (names as in a run's results.csv)
TABLES = {1: ("accuracy",), 2: ("sil_x_a", "sil_E_a"), 3: ("topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")}
VALUES = tuple(c for cols in TABLES.values() for c in cols)
COLUMNS = KEYS + VALUES
# Ranges a transcribed value must lie in: accuracy and S in [0, 1], silhouette in [-1, 1].
RANGES = {"accuracy": (0.0, 1.0), "sil_x_a": (-1.0, 1.0), "sil_E_a": (-1.0, 1.0),
          "topo_xa_Ea": (0.0, 1.0), "topo_xt_Et": (0.0, 1.0), "topo_Ea_Et": (0.0, 1.0)}


def shown_path(p: Path) -> str:
    """A path as the user would type it: relative to the repository when inside it."""
    try:
        return str(p.resolve().relative_to(Path(__file__).resolve().parents[1]))
    except ValueError:
        return str(p)


class PaperTablesMissing(FileNotFoundError):
    """No CSV of the paper's tables was given or found."""


def locate(path: str | Path | None = None) -> Path:
    """The CSV to use: `path`, else $CLAP_PAPER_TABLES, else `paper_tables.csv` in the shared data folder, else
    the packaged file; a clear error if none."""
    for cand, origin in ((path, "the paper_tables parameter"), (os.environ.get(ENV), f"${ENV}")):
        if cand:
            p = Path(cand).expanduser()
            if not p.is_file():
                raise PaperTablesMissing(f"{origin} points at {str(p)!r}, which is not a file")
            return p
    shared = shared_data_dir()
    for cand in ((shared / SHARED_NAME) if shared else None, PACKAGED):
        if cand is not None and cand.is_file():
            return cand
    raise PaperTablesMissing(
        "the paper's Tables 1-3 are not bundled (no verified copy could be obtained offline). Transcribe them "
        f"into a CSV shaped like `{shown_path(TEMPLATE)}` and pass it as `paper_tables=...` (book: "
        f"`--paper-tables FILE`), set `${ENV}`, or save it as `{SHARED_NAME}` in the shared data folder or as "
        f"`{shown_path(PACKAGED)}`")


def validate(df: pd.DataFrame, source: str = "paper tables") -> pd.DataFrame:
    """Check columns, combinations and ranges; return the table sorted in the paper's order."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}; expected {list(COLUMNS)}")
    df = df[list(COLUMNS)].copy()
    for col, allowed in (("pretraining", PRETRAININGS), ("training", TRAININGS)):
        bad = sorted(set(df[col]) - set(allowed))
        if bad:
            raise ValueError(f"{source}: unknown {col} value(s) {bad}; allowed: {list(allowed)}")
    dup = df[df.duplicated(list(KEYS), keep=False)]
    if len(dup):
        raise ValueError(f"{source}: combination(s) given twice: {sorted(set(map(tuple, dup[list(KEYS)].values)))}")
    want = {(p, t) for p in PRETRAININGS for t in TRAININGS}
    absent = sorted(want - set(map(tuple, df[list(KEYS)].values)))
    if absent:
        raise ValueError(f"{source}: combination(s) missing: {absent}; the paper has all 6")
    for col in VALUES:
        vals = pd.to_numeric(df[col], errors="coerce")
        lo, hi = RANGES[col]
        bad = df.loc[~vals.between(lo, hi), list(KEYS)]
        if len(bad):
            raise ValueError(f"{source}: {col} must be a number in [{lo}, {hi}]; bad rows: "
                             f"{[tuple(r) for r in bad.values]}")
        df[col] = vals.astype(float)
    order = {"pretraining": PRETRAININGS, "training": TRAININGS}
    return df.sort_values(list(KEYS), key=lambda s: s.map(order[s.name].index)).reset_index(drop=True)


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's tables, validated (see `locate` for where they are looked for)."""
    p = locate(path)
    return validate(pd.read_csv(p), source=str(p))


def paper_correlations(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's two correlations re-derived from its own tables: Pearson(accuracy, silhouette of E_a)
    and Pearson(log accuracy, S(E_a, E_t)), each with its parametric two-sided p-value."""
    rows = []
    for name, x, y in (("accuracy vs silhouette E_a", df["accuracy"], df["sil_E_a"]),
                       ("log accuracy vs S(E_a, E_t)", np.log(df["accuracy"]), df["topo_Ea_Et"])):
        r = pearson(np.asarray(x, float), np.asarray(y, float))
        rows.append({"correlation": name, "Pearson r": r.r, "p": r.p, "n": r.n})
    return pd.DataFrame(rows).set_index("correlation")


def side_by_side(results: pd.DataFrame, paper: pd.DataFrame, table: int) -> pd.DataFrame:
    """One row per combination of the run: for each column of `table`, this run's value, the paper's and
    the difference (run - paper)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {list(TABLES)}, got {table!r}")
    merged = results[list(KEYS) + list(TABLES[table])].merge(paper, on=list(KEYS), how="left",
                                                             suffixes=("", "_paper"))
    out = merged[list(KEYS)].copy()
    for col in TABLES[table]:
        out[f"{col} (run)"] = merged[col]
        out[f"{col} (paper)"] = merged[f"{col}_paper"]
        out[f"{col} (run - paper)"] = merged[col] - merged[f"{col}_paper"]
    return out.set_index(list(KEYS))
