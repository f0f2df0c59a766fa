"""tools.bookcheck: the static page checks on hand-written pages, the CLI, and the browser driver on a tiny
site (Plotly with RequireJS on the page; a figure whose plotly.js is missing must fail)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clap_lib.report.interactive import figure_html, plotly_js_path, tsne_scatter
from tools import bookcheck as bc
from tools.bookcheck import scan

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_JS = ROOT / "book" / "_vendor" / "require.js"


def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    site = tmp_path / "site"
    for name, body in pages.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(body, encoding="utf-8")
    return site


def _page(body: str, head: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body><article>{body}</article></body></html>"


def test_remote_references_in_html_and_css(tmp_path):
    site = _site(
        tmp_path,
        {
            "index.html": _page(
                '<img srcset="local.png 1x, https://x.org/a.png 2x"><div style="background: url(//y.org/b.png)"></div>'
                "<style>/* url(https://comment.org/c.png) */ .k { background: url('https://z.org/c.png') }</style>"
                '<a href="https://example.org/">a link is fine</a><script src="_static/local.js"></script>'
            ),
            "_static/theme.css": "@import 'https://fonts.org/f.css'; .a { background: url(img.png) }",
        },
    )
    assert scan.remote_references(site) == {
        "index.html": [
            "<img srcset=https://x.org/a.png>",
            "<div style=url(//y.org/b.png)>",
            "<style> url(https://z.org/c.png)",
        ],
        "_static/theme.css": ["url(https://fonts.org/f.css)"],
    }


def test_numref_placeholders_and_unlinked_xrefs(tmp_path):
    site = _site(
        tmp_path,
        {
            "ok.html": _page(
                '<a class="reference internal" href="#t"><span class="std std-numref">Table 1</span></a>'
                '<table id="t"><tr><td>1</td></tr></table>'
            ),
            "bad.html": _page(
                '<p>see Fig. %s and <span class="xref std std-numref">fig-missing</span></p>'
                '<p>also <a href="#x"><span class="xref std std-ref">linked</span></a></p><i id="x"></i>'
            ),
        },
    )
    assert scan.unresolved_numrefs(site) == {
        "bad.html": ["placeholder text 'Fig. %s'", "unresolved reference 'fig-missing' (xref std std-numref)"]
    }


def test_raw_identifiers_only_in_tables_and_as_whole_names(tmp_path):
    site = _site(
        tmp_path,
        {
            "t.html": _page(
                "<p>sil_x_a in prose is fine</p>"
                "<table><thead><tr><th>sil_x_a</th><th>Backbone silhouette</th></tr></thead>"
                "<tbody><tr><td>topo_xa_Ea = 0.3</td><td>sil_x_a2</td><td>crying_baby</td></tr></tbody></table>"
                "<table><tr><td>n_pairs_dirty</td></tr></table>"
            )
        },
    )
    found = scan.raw_identifiers_in_tables(site, bc.DEFAULT_RAW_IDENTIFIERS)
    assert found == {
        "t.html": [
            "table 1: <th> holds 'sil_x_a'",
            "table 1: <td> holds 'topo_xa_Ea'",
            "table 2: <td> holds 'n_pairs_dirty'",
        ]
    }
    assert scan.raw_identifiers_in_tables(site, []) == {}


def test_broken_internal_links_files_and_anchors(tmp_path):
    site = _site(
        tmp_path,
        {
            "a.html": _page(
                '<h1 id="top">A</h1><a href="b.html">b</a><a href="b.html#sec">sec</a>'
                '<a href="b.html#nope">nope</a><a href="missing.html">m</a><a href="#top">top</a>'
                '<a href="sub/">dir</a><a href="mailto:x@y.z">mail</a><a href="https://x.org/q">w</a>'
                '<a href="../outside.html">out</a><a href="#">self</a><img src="_images/p.png">'
                '<a href="b.html#with%20space">enc</a>'
            ),
            "b.html": _page('<section id="sec"></section><span id="with space"></span>'),
            "sub/index.html": _page("sub"),
            "_images/p.png": "png",
        },
    )
    assert scan.broken_internal_links(site) == {
        "a.html": [
            "<a href=b.html#nope>: no element id 'nope' in b.html",
            "<a href=missing.html>: no file missing.html",
            "<a href=../outside.html>: points outside the build",
        ]
    }


def test_bib_keys_and_unresolved_citations(tmp_path):
    bib = (
        "@string{icassp = {ICASSP}}\n@comment{ignored,}\n@inproceedings{tavares2025pitfalls,\n  title={x}}\n"
        "@Article{ kong2020panns ,\n title={y}}\n"
    )
    keys = scan.bib_keys(bib)
    assert keys == ["tavares2025pitfalls", "kong2020panns"]
    site = _site(tmp_path, {"c.html": _page("<p>as shown [tavares2025pitfalls] and [1] and [ kong2020panns ]</p>")})
    assert scan.unresolved_citations(site, keys) == {
        "c.html": ["unresolved citation [tavares2025pitfalls]", "unresolved citation [kong2020panns]"]
    }


def test_find_bibliography_counts_entries_and_citations(tmp_path):
    # The markup sphinxcontrib-bibtex 2.7 writes (checked against a real build in test_book_offline.py).
    cite = '<span class="bibtex-citation" id="id1">[<a class="reference internal" href="{href}">Kong, 2020</a>]</span>'
    site = _site(
        tmp_path,
        {
            "bibliography.html": _page(
                '<div role="list" class="citation-list">'
                '<div class="citation" id="id3" role="doc-biblioentry">A</div>'
                '<div class="citation" id="id4" role="doc-biblioentry">B</div></div>' + cite.format(href="#id3")
            ),
            "generated/s1.html": _page(
                cite.format(href="../bibliography.html#id3") * 2 + '<a href="../bibliography.html">not a citation</a>'
            ),
            "intro.html": _page("no citations"),
        },
    )
    assert scan.find_bibliography(site) == scan.Bibliography(
        page="bibliography.html", entries=2, cited_from={"bibliography.html": 1, "generated/s1.html": 2}
    )
    assert scan.find_bibliography(_site(tmp_path / "none", {"a.html": _page("x")})) is None


def test_figure_hover_problems():
    good = {
        "data": [
            {
                "type": "scatter",
                "x": [1, 2],
                "customdata": [["a", "f", 1], ["a", "g", 2]],
                "hovertemplate": "%{customdata[0]}",
            }
        ]
    }
    assert scan.figure_hover_problems(good) == []
    assert scan.figure_hover_problems({"data": [{"x": [1, 2], "hovertext": ["p", "q"]}]}) == []
    assert scan.figure_hover_problems({"data": []}) == ["figure has no traces"]
    assert scan.figure_hover_problems({"data": [{"x": [1, 2], "name": "n"}]}) == [
        "trace 'n': 2 points without per-point hover text"
    ]
    short = {"data": [{"x": [1, 2], "name": "n", "customdata": [["a"]], "hovertemplate": "%{customdata[0]}"}]}
    assert scan.figure_hover_problems(short) == ["trace 'n': hovertemplate shows customdata, which 2 points lack"]
    assert scan.figure_hover_problems({"data": [{"x": [1], "hoverinfo": "skip"}]}) == []
    assert scan.figure_hover_problems({"data": [{"type": "bar", "x": [1]}]}) == []


def test_static_checks_aggregate_and_the_cli(tmp_path):
    fig = tsne_scatter(np.zeros((2, 2)), ["dog", "rain"], ["f1.wav", "f2.wav"], [1, 2], title="t")
    good = _site(tmp_path / "good", {"index.html": _page(figure_html(fig) + '<a href="#top" id="top">x</a>')})
    static, bib = bc.static_checks(good, bc.CheckConfig(browser=False))
    assert static == {} and bib is None
    static, _ = bc.static_checks(good, bc.CheckConfig(browser=False, bib_keys=("k",)))
    assert static == {"citation": {"(book)": ["no page renders a bibliography (a {bibliography} directive)"]}}

    bad = _site(
        tmp_path / "bad", {"index.html": _page('<table><tr><td>sil_E_a</td></tr></table><a href="gone.html">x</a>')}
    )
    report = bc.check_site(bad, config=bc.CheckConfig(browser=False))
    assert not report.ok and report.pages == []
    assert report.static_problems == {
        "index.html": ["raw-identifier: table 1: <td> holds 'sil_E_a'", "link: <a href=gone.html>: no file gone.html"]
    }
    cli = [sys.executable, str(ROOT / "scripts" / "serve_and_check.py")]
    opts = ["--static-only", "--bib"]  # --bib with no file: no citation check
    proc = subprocess.run([*cli, str(bad), *opts], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "holds 'sil_E_a'" in proc.stdout and proc.stdout.rstrip().endswith("FAIL")
    proc = subprocess.run([*cli, str(good), *opts], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("OK"), proc.stdout + proc.stderr


def test_missing_browser_is_a_clear_error(tmp_path):
    site = _site(tmp_path, {"index.html": _page("x")})
    with pytest.raises(bc.BrowserError, match="chromedriver not found .*/nonexistent/chromedriver"):
        bc.check_site(site, browser=bc.BrowserConfig(chromium=sys.executable, chromedriver="/nonexistent/chromedriver"))


@pytest.fixture
def browser_ready():
    if not (bc.find_chromium() and bc.find_chromedriver()):
        pytest.skip(
            "headless Chromium + chromedriver not installed (Debian: apt-get install chromium "
            "chromium-driver; scripts/test.sh does it as root)"
        )
    if not REQUIRE_JS.is_file():
        pytest.skip("book/_vendor/require.js missing: run bash scripts/vendor_js.sh")


@pytest.mark.slow
def test_plotly_figure_with_requirejs_in_the_browser(tmp_path, browser_ready):
    """The figure draws with hover labels whichever of RequireJS / plotly.js the page loads first; a page whose
    plotly.js is missing fails the check (console error + figure not drawn)."""
    fig = tsne_scatter(
        np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]),
        ["dog", "rain", "dog"],
        ["1-100-A-0.wav", "2-200-B-1.wav", "3-300-C-2.wav"],
        [1, 2, 3],
        title="t",
    )
    body = figure_html(fig)
    req = '<script src="_static/require.js"></script>'
    plo = '<script src="_static/plotly.min.js"></script>'
    site = _site(
        tmp_path,
        {
            "plotly_first.html": _page(body, plo + req),
            "require_first.html": _page(body, req + plo),
            "no_plotly.html": _page(body, req),
        },
    )
    (site / "_static").mkdir()
    shutil.copy2(REQUIRE_JS, site / "_static" / "require.js")
    shutil.copy2(plotly_js_path(), site / "_static" / "plotly.min.js")
    shots = tmp_path / "shots"
    report = bc.check_site(site, screenshots=shots, browser=bc.BrowserConfig(timeout=30))
    pages = {p.page: p for p in report.pages}
    for name in ("plotly_first.html", "require_first.html"):
        p = pages[name]
        assert p.ok, (name, p.problems, p.console_errors)
        assert p.state["requirejs"] is True and p.state["plotlyDrawn"] == 1 and p.state["plotlyPoints"] == [3]
        (label,) = p.state["plotlyHover"]
        assert "dog" in label and "file 1-100-A-0.wav" in label and "fold 1" in label, label
        assert Path(p.screenshot).read_bytes()[:4] == b"\x89PNG"
    broken = pages["no_plotly.html"]
    assert not broken.ok
    assert "only 0/1 Plotly figures drawn (Plotly loaded: None)" in broken.problems
    assert any("plotly.js is not loaded" in e for e in broken.console_errors), broken.console_errors


def test_check_selection(tmp_path):
    site = _site(tmp_path, {"index.html": _page('<table><tr><td>sil_E_a</td></tr></table><a href="gone.html">x</a>')})
    static, _ = bc.static_checks(site, bc.CheckConfig(checks=("link",), browser=False))
    assert list(static) == ["link"]
    with pytest.raises(ValueError, match=r"unknown checks \['links'\]; allowed: remote, numref"):
        bc.CheckConfig(checks=("links",))
