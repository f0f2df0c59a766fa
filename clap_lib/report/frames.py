"""Whole tables for the book's pages: a DataFrame shown as HTML with every row and every character of every cell.

A bare ``display(df)`` goes through pandas' notebook repr, which cuts cells at 50 characters ("...") and frames of
more than 60 rows to their first and last five ("144 rows x 5 columns"). :func:`whole_table` never does: a short
table is shown whole; a long one shows its first rows, a sentence saying how many rows there are, and the whole
table in a collapsed block (``<details>``, which works in the static HTML without a kernel).
"""

from __future__ import annotations

import html

import pandas as pd

__all__ = ["whole_table", "whole_table_html"]

#: longest table shown open; a longer one shows its first rows and the whole table collapsed below
MAX_OPEN_ROWS = 30


def _html(df: pd.DataFrame) -> str:
    # not `notebook=True`: that formatter cuts long cells to 50 characters like the notebook repr
    plain_index = isinstance(df.index, pd.RangeIndex) and df.index.name is None  # 0, 1, 2, ...: not shown
    return df.to_html(na_rep="-", index=not plain_index)


def whole_table_html(df: pd.DataFrame, top: int = 10, what: str = "rows", max_open: int = MAX_OPEN_ROWS) -> str:
    """HTML of `df`, never truncated. Up to `max_open` rows: the table. More: its first `top` rows, a sentence
    ("The first 10 of 144 rows; all 144 below.", `what` names the rows) and the whole table in a ``<details>``
    block."""
    if top < 1 or max_open < top:
        raise ValueError(f"need 1 <= top <= max_open, got top={top}, max_open={max_open}")
    n = len(df)
    if n <= max_open:
        return _html(df)
    what = html.escape(what)
    return (
        _html(df.head(top))
        + f"<p>The first {top} of {n} {what}; all {n} in the table below (click to open).</p>"
        + f"<details><summary>All {n} {what}</summary>{_html(df)}</details>"
    )


def whole_table(df: pd.DataFrame, top: int = 10, what: str = "rows", max_open: int = MAX_OPEN_ROWS):
    """:func:`whole_table_html` as a display object for a notebook cell: ``display(report.whole_table(df))``."""
    from IPython.display import HTML

    return HTML(whole_table_html(df, top, what, max_open))
