"""clap_lib.report.interactive: the book's Plotly figures (structure, hover data, validation, the HTML they emit)."""

from __future__ import annotations

import json

import numpy as np
import plotly
import pytest

from clap_lib.report.interactive import (
    FADED_OPACITY,
    PLOTLY_CLASS,
    PLOTLY_DATA_TYPE,
    figure_html,
    plotly_js_path,
    show,
    tsne_scatter,
)
from tools.bookcheck import scan

POINTS = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]])
CLASSES = ["b", "a", "b", "c", "a"]
FILES = [f"1-{i}-A-0.wav" for i in range(5)]
FOLDS = [1, 2, 3, 4, 5]


def _spec(fig) -> dict:
    return json.loads(fig.to_json())


def test_tsne_scatter_one_trace_per_class_with_per_point_hover():
    fig = tsne_scatter(POINTS, CLASSES, FILES, FOLDS, title="T-SNE of x_a")
    traces = _spec(fig)["data"]
    assert [t["name"] for t in traces] == ["a", "b", "c"]  # sorted by default
    a = traces[0]
    assert a["x"] == [2.0, 8.0] and a["y"] == [3.0, 9.0]  # rows 1 and 4
    assert a["customdata"] == [["a", "1-1-A-0.wav", 2], ["a", "1-4-A-0.wav", 5]]
    assert all(f"%{{customdata[{i}]}}" in a["hovertemplate"] for i in range(3))
    assert traces[2]["customdata"] == [["c", "1-3-A-0.wav", 4]]
    assert len({t["marker"]["color"] for t in traces}) == 3
    assert scan.figure_hover_problems(_spec(fig)) == []


def test_tsne_scatter_dropdown_highlights_one_class():
    fig = tsne_scatter(POINTS, CLASSES, FILES, FOLDS, title="t", class_order=["c", "b", "a"])
    assert [t.name for t in fig.data] == ["c", "b", "a"]
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["all classes", "c", "b", "a"]
    assert buttons[0].args == ({"opacity": [1.0, 1.0, 1.0]},)
    assert buttons[2].args == ({"opacity": [FADED_OPACITY, 1.0, FADED_OPACITY]},)
    assert all(b.method == "restyle" for b in buttons)


def test_tsne_scatter_fifty_classes_get_fifty_colours():
    names = [f"class_{i}" for i in range(50)]
    fig = tsne_scatter(np.arange(100.0).reshape(50, 2), names, names, [1] * 50, title="t")
    assert len({t.marker.color for t in fig.data}) == 50


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"points": np.zeros((5, 3))}, "shape (n, 2)"),
        ({"points": np.array([[0, 1], [np.nan, 1], [0, 1], [0, 1], [0, 1]])}, "NaN"),
        ({"files": FILES[:4]}, "files has 4 entries"),
        ({"folds": FOLDS + [1]}, "folds has 6 entries"),
        ({"class_order": ["a", "b"]}, "['c'] are not in class_order"),
    ],
)
def test_tsne_scatter_rejects_bad_input(kwargs, message):
    args = {"points": POINTS, "classes": CLASSES, "files": FILES, "folds": FOLDS, "title": "t", **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        tsne_scatter(**args)


def test_figure_html_round_trips_through_the_page_scanner(tmp_path):
    fig = tsne_scatter(POINTS, ["</script><b>x"] + CLASSES[1:], FILES, FOLDS, title="t")
    html = figure_html(fig)
    assert html.count("</script>") == 2  # the class name inside the JSON is escaped
    assert f'class="{PLOTLY_CLASS}"' in html and f'type="{PLOTLY_DATA_TYPE}"' in html
    assert "cdn" not in html.lower() and "<script src" not in html  # plotly.js comes from the page head
    page = tmp_path / "p.html"
    page.write_text(f"<html><body>{html}</body></html>")
    (found,) = scan.plotly_figures(page)
    assert found["data"] == _spec(fig)["data"]
    assert found["config"]["displaylogo"] is False
    assert figure_html(fig) == html  # stable id: a rebuild does not change the page
    assert figure_html(fig, div_id="f2").startswith('<div id="f2"')
    other = figure_html(tsne_scatter(POINTS, CLASSES, FILES, FOLDS, title="u"))
    assert other.split('"')[1] != html.split('"')[1]


def test_show_is_an_html_display_object():
    fig = tsne_scatter(POINTS, CLASSES, FILES, FOLDS, title="t")
    assert show(fig, div_id="x").data == figure_html(fig, div_id="x")


def test_vendored_plotly_js_matches_the_python_package():
    path = plotly_js_path()
    head = path.read_text(encoding="utf-8")[:400]
    assert f"v{plotly.offline.get_plotlyjs_version()}" in head, head
