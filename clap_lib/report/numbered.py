"""Numbered, captioned tables and figures for the book: the paper's Table 1-3 / Figure 2-4 and the extras.

A table becomes a MyST ``{list-table}`` with a caption and a label (``table-1`` ... fix the paper's numbers, see
book/_ext/fignumbers.py), emitted as a Markdown output that the book parses as MyST
(``nb_render_markdown_format: myst``), so Sphinx numbers it and ``{numref}`` resolves to it from any page. A figure
is glued (``myst_nb.glue``) and placed by a ``{glue:figure}`` directive in the page's text, which carries the
caption and the label.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

__all__ = ["numbered_table", "list_table", "cell_text", "glue_figure"]

_LABEL = re.compile(r"^[a-z][a-z0-9-]*$")
_SPECIAL = re.compile(r"([\\`*_\[\]<>|$#~{}])")  # MyST inline syntax a cell must not trigger
_LIST_START = re.compile(r"^(\d+)([.)])(\s|$)")  # "1." / "2)" would open an ordered list


def cell_text(value) -> str:
    """A cell's text, escaped for MyST: numbers with 3 decimals (small ones in 3 significant digits), NaN as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool | np.bool_):
        text = "yes" if value else "no"
    elif isinstance(value, int | np.integer):
        text = str(int(value))
    elif isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "-"
        text = str(int(v)) if v.is_integer() and abs(v) < 1e15 else (f"{v:.3g}" if 0 < abs(v) < 1e-3 else f"{v:.3f}")
    else:
        text = " ".join(str(value).split())  # one line: a newline would end the list item
    if not text:
        return " "
    text = _SPECIAL.sub(r"\\\1", text)
    text = _LIST_START.sub(r"\1\\\2\3", text)
    return "\\" + text if text[0] in "-+" and (len(text) == 1 or text[1] == " ") else text


def list_table(df: pd.DataFrame, caption: str, name: str, empty: str = "nothing to show for this run") -> str:
    """MyST source of `df` as a captioned, labelled list-table. A named (non-default) index becomes the first
    columns; the header of the first column names the columns' axis too ("training data \\ audio pretraining").
    An empty `df` (e.g. no correlation over fewer than 3 combinations) gives a one-cell table saying `empty`, so
    the page says what it cannot show and references to the label still resolve."""
    if df.empty:
        df = pd.DataFrame({"not shown": [empty[:1].upper() + empty[1:]]})
    if not _LABEL.match(name):
        raise ValueError(f"label {name!r}: lower-case letters, digits and '-' only, starting with a letter")
    if "\n" in caption or not caption.strip():
        raise ValueError("a table caption is one non-empty line")
    t = df.copy()
    axis = t.columns.name
    has_index = not (isinstance(t.index, pd.RangeIndex) and t.index.name is None)
    if has_index:
        t = t.reset_index()
    header = [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in t.columns]
    if has_index and axis:
        header[0] = f"{header[0]} \\ {axis}"
    lines = [f"```{{list-table}} {caption}", f":name: {name}", ":header-rows: 1", ""]
    for row in [header, *t.itertuples(index=False, name=None)]:
        cells = [cell_text(v) for v in row]
        lines.append(f"* - {cells[0]}")
        lines.extend(f"  - {c}" for c in cells[1:])
    lines.append("```")
    return "\n".join(lines) + "\n"


def numbered_table(df: pd.DataFrame, name: str, caption: str, empty: str = "nothing to show for this run"):
    """The table as a Markdown display object for a notebook cell (see the module docstring)."""
    from IPython.display import Markdown

    return Markdown(list_table(df, caption, name, empty))


def glue_figure(name: str, fig) -> None:
    """Glue a matplotlib / Plotly figure under `name` for a ``{glue:figure}`` directive, without showing it here."""
    from myst_nb import glue

    glue(name, fig, display=False)
    if hasattr(fig, "savefig"):
        import matplotlib.pyplot as plt

        plt.close(fig)
