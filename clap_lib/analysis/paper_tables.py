"""The paper's Tables 1-3 as data: load, validate, re-derive its correlations, compare with a run.

The values are bundled as ``clap_lib/analysis/paper_tables.csv``: Tables 1-3 of Tavares, Ayres, Wang, Smaragdis, "On class
separability pitfalls in audio-text contrastive zero-shot learning", ICASSP 2025 (arXiv 2408.13068), as printed
(two decimals; published figures, cited in the file's first line; Table 1's random guess is 0.02, 1 of 50
classes). ``load()`` finds them with no argument; another CSV with the columns in
``COLUMNS`` (schema: ``clap_lib/analysis/paper_tables_template.csv``; ``#`` lines are comments) can be given with the
``paper_tables`` notebook parameter, ``CLAP_PAPER_TABLES``, or as ``paper_tables.csv`` in the shared data folder.

**The paper's correlations, twice.** Its text states Pearson(acc, sil E_a) = 0.97 (p < 0.01) and
Pearson(log acc, S(E_a, E_t)) = 0.85 (p = 0.032), computed from unrounded values; re-derived from the printed
tables they are 0.972 (p = 0.0012) and 0.845 (p = 0.034). :func:`correlation_rounding_range` gives the exact range
of each r when every printed entry may be anywhere within +-0.005 of its printed value (r maximised and minimised
over that box), and :func:`paper_correlations_both` puts the text's value, the re-derived one and that range
side by side, with whether the text's value is reachable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from clap_lib.analysis.resampling import pearson
from clap_lib.analysis.uncertainty import seed_intervals
from clap_lib.config.levels import PAPER_TRAININGS, PRETRAININGS, TRAININGS
from clap_lib.data.paths import shared_data_dir

ENV = "CLAP_PAPER_TABLES"
PACKAGED = Path(__file__).with_name("paper_tables.csv")
TEMPLATE = Path(__file__).with_name("paper_tables_template.csv")
SHARED_NAME = "paper_tables.csv"  # looked for in the shared data folder ($CLAP_DATA, else ../shared/data)
PRINTED_HALF_WIDTH = 0.005  # the tables print two decimals
#: the correlations as the paper's text states them: r, p, and how p is stated ("=" or "<").
TEXT_CORRELATIONS = {
    "accuracy vs silhouette E_a": {"r": 0.97, "p": 0.01, "p_relation": "<"},
    "log accuracy vs S(E_a, E_t)": {"r": 0.85, "p": 0.032, "p_relation": "="},
}
KEYS = ("pretraining", "training")
# table -> value columns (names as in a run's results.csv)
TABLES = {1: ("accuracy",), 2: ("sil_x_a", "sil_E_a"), 3: ("topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et")}
VALUES = tuple(c for cols in TABLES.values() for c in cols)
COLUMNS = KEYS + VALUES
# Ranges a transcribed value must lie in: accuracy and S in [0, 1], silhouette in [-1, 1].
RANGES = {
    "accuracy": (0.0, 1.0),
    "sil_x_a": (-1.0, 1.0),
    "sil_E_a": (-1.0, 1.0),
    "topo_xa_Ea": (0.0, 1.0),
    "topo_xt_Et": (0.0, 1.0),
    "topo_Ea_Et": (0.0, 1.0),
}


def shown_path(p: Path) -> str:
    """A path as the user would type it: relative to the repository when inside it."""
    try:
        return str(p.resolve().relative_to(Path(__file__).resolve().parents[2]))
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
        f"the paper's Tables 1-3 are not bundled: `{shown_path(PACKAGED)}` is missing from this installation. "
        f"Give a CSV shaped like `{shown_path(TEMPLATE)}` as `paper_tables=...` (book: `--paper-tables FILE`), "
        f"set `${ENV}`, or save it as `{SHARED_NAME}` in the shared data folder"
    )


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
    want = {(p, t) for p in PRETRAININGS for t in PAPER_TRAININGS}
    absent = sorted(want - set(map(tuple, df[list(KEYS)].values)))
    if absent:
        raise ValueError(
            f"{source}: combination(s) missing: {absent}; the paper has all 6 of "
            f"{list(PRETRAININGS)} x {list(PAPER_TRAININGS)}"
        )
    for col in VALUES:
        vals = pd.to_numeric(df[col], errors="coerce")
        lo, hi = RANGES[col]
        bad = df.loc[~vals.between(lo, hi), list(KEYS)]
        if len(bad):
            raise ValueError(
                f"{source}: {col} must be a number in [{lo}, {hi}]; bad rows: {[tuple(r) for r in bad.values]}"
            )
        df[col] = vals.astype(float)
    order = {"pretraining": PRETRAININGS, "training": TRAININGS}
    return df.sort_values(list(KEYS), key=lambda s: s.map(order[s.name].index)).reset_index(drop=True)


def load(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's tables, validated (see `locate` for where they are looked for)."""
    p = locate(path)
    return validate(pd.read_csv(p, comment="#"), source=str(p))


_CORRELATIONS = {
    "accuracy vs silhouette E_a": ("accuracy", "sil_E_a", False),
    "log accuracy vs S(E_a, E_t)": ("accuracy", "topo_Ea_Et", True),
}


def _pair(df: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray, bool]:
    xc, yc, log = _CORRELATIONS[name]
    return np.asarray(df[xc], float), np.asarray(df[yc], float), log


def paper_correlations(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's two correlations re-derived from its own tables: Pearson(accuracy, silhouette of E_a)
    and Pearson(log accuracy, S(E_a, E_t)), each with its parametric two-sided p-value."""
    rows = []
    for name in _CORRELATIONS:
        x, y, log = _pair(df, name)
        r = pearson(np.log(x) if log else x, y)
        rows.append({"correlation": name, "Pearson r": r.r, "p": r.p, "n": r.n})
    return pd.DataFrame(rows).set_index("correlation")


def _p_of_r(r: float, n: int) -> float:
    """Two-sided parametric p of Pearson r with n pairs (t with n - 2 df), as scipy.stats.pearsonr."""
    if abs(r) >= 1:
        return 0.0
    t = abs(r) * np.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(t, n - 2))


def correlation_rounding_range(
    x, y, log_x: bool = False, half_width: float = PRINTED_HALF_WIDTH
) -> tuple[float, float]:
    """``(min r, max r)`` of Pearson(f(x + d), y + e) over every perturbation ``|d_i|, |e_i| <= half_width``
    (``f = log`` if ``log_x``): the values the correlation of the unrounded numbers can take when ``x``, ``y``
    are printed to ``half_width``. r is smooth in the perturbation, so each extreme is found by L-BFGS-B in the
    box, started at the centre and at the corner that the gradient points to (r is near-linear there); the
    better of the two is kept."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    f = np.log if log_x else (lambda v: v)

    def r(d: np.ndarray) -> float:
        return float(np.corrcoef(f(x + d[:n]), y + d[n:])[0, 1])

    bounds = [(-half_width, half_width)] * (2 * n)
    grad = optimize.approx_fprime(np.zeros(2 * n), r, 1e-7)
    ext = []
    for sign in (-1.0, 1.0):  # minimise r, then -r
        starts = (np.zeros(2 * n), sign * half_width * np.sign(grad))
        best = min(
            (optimize.minimize(lambda d: -sign * r(d), s0, bounds=bounds, method="L-BFGS-B") for s0 in starts),
            key=lambda res: res.fun,
        )
        ext.append(-sign * best.fun)
    return float(ext[0]), float(ext[1])


def paper_correlations_both(df: pd.DataFrame | None = None, half_width: float = PRINTED_HALF_WIDTH) -> pd.DataFrame:
    """The paper's correlations as its text states them beside those re-derived from its printed tables.

    One row per correlation: ``text r``, ``text p`` (with ``text p relation``, "=" or "<"), ``tables r``,
    ``tables p`` (from the printed values), ``r low`` / ``r high`` (:func:`correlation_rounding_range`: the range
    the unrounded r can take), ``p low`` / ``p high`` (the p-values of those, p being decreasing in r > 0),
    ``text r reachable`` (the text's r, itself rounded to two decimals, overlaps ``[r low, r high]``) and
    ``text p reachable`` (the stated p is compatible with ``[p low, p high]``). ``df`` defaults to :func:`load`.
    """
    df = load() if df is None else validate(df)
    df = df[df["training"].isin(PAPER_TRAININGS)]
    derived = paper_correlations(df)
    rows = []
    for name, text in TEXT_CORRELATIONS.items():
        x, y, log = _pair(df, name)
        lo, hi = correlation_rounding_range(x, y, log, half_width)
        n = len(x)
        p_lo, p_hi = sorted((_p_of_r(hi, n), _p_of_r(lo, n)))
        if text["p_relation"] == "<":
            p_ok = p_lo < text["p"]
        else:  # stated to 3 decimals
            p_ok = p_lo <= text["p"] + 0.0005 and text["p"] - 0.0005 <= p_hi
        rows.append(
            {
                "correlation": name,
                "text r": text["r"],
                "text p": text["p"],
                "text p relation": text["p_relation"],
                "tables r": derived.loc[name, "Pearson r"],
                "tables p": derived.loc[name, "p"],
                "r low": lo,
                "r high": hi,
                "p low": p_lo,
                "p high": p_hi,
                "text r reachable": bool(lo <= text["r"] + 0.005 and text["r"] - 0.005 <= hi),
                "text p reachable": bool(p_ok),
                "n": n,
            }
        )
    return pd.DataFrame(rows).set_index("correlation")


def _one_row_per_combination(results: pd.DataFrame) -> pd.DataFrame:
    """A multi-seed results table (several rows per combination) summarised as mean [lo, hi] per combination
    (:func:`clap_lib.analysis.uncertainty.seed_intervals`); a one-row-per-combination table unchanged."""
    if not results.duplicated(list(KEYS)).any():
        return results

    return seed_intervals(results, metric_cols=[c for c in VALUES if c in results.columns])


def side_by_side(results: pd.DataFrame, paper: pd.DataFrame, table: int) -> pd.DataFrame:
    """One row per combination of the run: for each column of ``table``, the paper's value, this run's (with
    its interval ``(run lo)`` / ``(run hi)`` when the results carry ``<col>_lo`` / ``<col>_hi``, else NaN) and
    the difference ``(run - paper)``. Combinations the paper does not have (training ``strict``) show the
    paper's value and the difference as missing (NaN), never 0. Several rows per combination (seeds) are
    summarised first as mean [lo, hi] over seeds and test clips."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {list(TABLES)}, got {table!r}")
    cols = list(TABLES[table])
    missing = [c for c in list(KEYS) + cols if c not in results.columns]
    if missing:
        raise ValueError(f"results are missing column(s) {missing} needed for Table {table}")
    results = _one_row_per_combination(results)
    order = {"pretraining": PRETRAININGS, "training": TRAININGS}
    results = results.sort_values(
        list(KEYS), key=lambda s: s.map(lambda v: order[s.name].index(v) if v in order[s.name] else len(order[s.name]))
    )
    merged = results.merge(paper[list(KEYS) + cols], on=list(KEYS), how="left", suffixes=("", "_paper"))
    out = merged[list(KEYS)].copy()
    for col in cols:
        nan = pd.Series(np.nan, index=merged.index)
        out[f"{col} (paper)"] = merged[f"{col}_paper"]
        out[f"{col} (run)"] = merged[col]
        out[f"{col} (run lo)"] = merged[f"{col}_lo"] if f"{col}_lo" in merged else nan
        out[f"{col} (run hi)"] = merged[f"{col}_hi"] if f"{col}_hi" in merged else nan
        out[f"{col} (run - paper)"] = merged[col] - merged[f"{col}_paper"]
    return out.set_index(list(KEYS))
