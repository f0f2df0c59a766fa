"""Interactive figures of the book (Plotly) that work in the static HTML: no kernel, no CDN.

* :func:`tsne_scatter` -- a 2-D embedding (T-SNE of x_a or E_a), one trace per class, hover label with class,
  file name and fold, class highlighting by legend click (double click isolates) or by the dropdown.
* :func:`show` -- the notebook output for a figure: a ``<div>`` + the figure JSON + a call to ``Plotly.newPlot``.
  plotly.js itself is NOT embedded: the book's ``offline_assets`` extension copies the ``plotly.min.js`` shipped
  inside the Python package (:func:`plotly_js_path`, so JS and Python versions always match) to
  ``_static/_vendor/`` and loads it once, in the page head before RequireJS, on every page holding a figure.

In a notebook::

    from clap_lib.report.interactive import show, tsne_scatter
    show(tsne_scatter(points, classes, files, folds, title="T-SNE of x_a"))   # last expression of the cell
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go

PLOTLY_CLASS = "clap-plotly"  # marker class of a figure's div (offline_assets looks for it)
PLOTLY_DATA_TYPE = "application/vnd.clap-plotly+json"  # <script type> holding the figure JSON
FADED_OPACITY = 0.12  # other classes while one is highlighted
# Over 50 distinct colours (enough for every ESC-50 class; cycled beyond), the 10 most distinct first.
_Q = plotly.colors.qualitative
_PALETTE = tuple(dict.fromkeys(_Q.D3 + _Q.Dark24 + _Q.Alphabet))


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled with the installed Python package (same version as the figure JSON)."""
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"plotly {plotly.__version__} ships no {path}; reinstall plotly")
    return path


def _column(name: str, values, n: int) -> list:
    values = list(values)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries, points has {n} rows: they must match")
    return values


def tsne_scatter(
    points: np.ndarray,
    classes: Sequence[str],
    files: Sequence[str],
    folds: Sequence[int],
    title: str,
    class_order: Sequence[str] | None = None,
    height: int = 600,
) -> go.Figure:
    """Scatter of 2-D points coloured by class, hover = class / file / fold, legend + dropdown highlighting.

    ``class_order``: legend/dropdown order (default: sorted class names); every class in ``classes`` must be in it.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points hold NaN or infinite values")
    n = len(pts)
    classes = [str(c) for c in _column("classes", classes, n)]
    files = [str(f) for f in _column("files", files, n)]
    folds = [int(f) for f in _column("folds", folds, n)]
    order = list(class_order) if class_order is not None else sorted(set(classes))
    unknown = sorted(set(classes) - set(order))
    if unknown:
        raise ValueError(f"classes {unknown} are not in class_order {order}")
    order = [c for c in order if c in set(classes)]

    fig = go.Figure()
    labels = np.asarray(classes)
    for i, name in enumerate(order):
        idx = np.flatnonzero(labels == name)
        fig.add_trace(
            go.Scatter(
                x=pts[idx, 0].tolist(),
                y=pts[idx, 1].tolist(),
                mode="markers",
                name=name,
                marker={"size": 7, "color": _PALETTE[i % len(_PALETTE)], "line": {"width": 0.5, "color": "white"}},
                # Lists, not arrays: the page's JSON stays readable (and checkable) instead of base64 typed arrays.
                customdata=[[name, files[j], folds[j]] for j in idx],
                hovertemplate="<b>%{customdata[0]}</b><br>file %{customdata[1]}<br>fold %{customdata[2]}"
                "<extra></extra>",
            )
        )
    k = len(order)
    buttons = [{"label": "all classes", "method": "restyle", "args": [{"opacity": [1.0] * k}]}]
    buttons += [
        {
            "label": name,
            "method": "restyle",
            "args": [{"opacity": [1.0 if j == i else FADED_OPACITY for j in range(k)]}],
        }
        for i, name in enumerate(order)
    ]
    fig.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        height=height,
        template="plotly_white",
        hovermode="closest",
        xaxis={"title": "t-SNE 1", "zeroline": False},
        yaxis={"title": "t-SNE 2", "zeroline": False},
        legend={"title": {"text": "class (click: hide, double-click: only this)"}, "itemsizing": "constant"},
        # Top right, clear of the title: the dropdown highlights one class and fades the others.
        updatemenus=[
            {
                "buttons": buttons,
                "direction": "down",
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
            }
        ],
        margin={"t": 90},
    )
    return fig


def figure_html(fig: go.Figure, div_id: str | None = None) -> str:
    """HTML for one figure: its div, its JSON and the script that draws it with the page's ``window.Plotly``.

    ``div_id`` defaults to a hash of the figure (stable across rebuilds); pass one to show the same figure twice.
    """
    spec = {**json.loads(fig.to_json()), "config": {"responsive": True, "displaylogo": False}}
    text = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")  # no "</script>" inside the JSON
    div_id = div_id or "clap-plotly-" + hashlib.sha1(text.encode()).hexdigest()[:12]
    height = int(fig.layout.height or 500)
    return (
        f'<div id="{div_id}" class="{PLOTLY_CLASS}" style="width:100%;height:{height}px"></div>\n'
        f'<script type="{PLOTLY_DATA_TYPE}" id="{div_id}-json">{text}</script>\n'
        "<script>(function () {\n"
        f'  var el = document.getElementById("{div_id}");\n'
        f'  var spec = JSON.parse(document.getElementById("{div_id}-json").textContent);\n'
        "  function draw() {\n"
        "    if (!window.Plotly) {\n"
        '      console.error("clap_lib.report.interactive: plotly.js is not loaded on this page");\n'
        "      return;\n"
        "    }\n"
        "    window.Plotly.newPlot(el, spec.data, spec.layout, spec.config);\n"
        "  }\n"
        # The page head loads plotly.js before this runs; in a live notebook it may come later.
        '  if (window.Plotly || document.readyState !== "loading") draw();\n'
        '  else document.addEventListener("DOMContentLoaded", draw);\n'
        "})();</script>\n"
    )


def show(fig: go.Figure, div_id: str | None = None):
    """Notebook output of ``fig`` for the book (an ``IPython.display.HTML``): make it a cell's last expression."""
    from IPython.display import HTML

    return HTML(figure_html(fig, div_id))
