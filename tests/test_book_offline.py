"""The HTML book works offline: no CDN asset, widgets, math and Plotly figures render in a browser with no network.

Builds a throwaway book in a temporary folder from the real ``_config.yml`` (+ ``book/_ext``, ``book/intro.md``,
``book/references.bib``, ``book/bibliography.md`` and the vendored ``book/_vendor``) plus one notebook, executed
here with nbclient, that shows an ``ipywidgets.IntSlider``, a matplotlib figure, an interactive T-SNE-style
Plotly scatter (:mod:`clap_lib.report.interactive`), a numbered table referenced by ``{numref}`` and a citation. The
book is built with ``jupyter-book build -W`` (warnings are errors), checked statically (remote references,
numrefs, raw column names in tables, internal links, hover data, citations) and then served on 127.0.0.1 and
opened in headless Chromium by :func:`tools.bookcheck.check_site` (Selenium + /usr/bin/chromedriver).

Screenshots go to ``$BOOK_SCREENSHOTS`` (or the older ``$BOOK_OFFLINE_SCREENSHOTS``) if set, else to a pytest
temporary folder (printed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools import bookcheck as bc
from tools.bookcheck import scan

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = ROOT / "_config.yml"  # the book's source is book/; its config and toc live at the repository root
VENDOR_REQUIRED = ("require.js", "html-manager/embed-amd.js", "mathjax/tex-svg.js")
# In a subfolder, like the real executed notebooks, so that relative asset paths ("../_static/...") and
# the widget manager's own URL arithmetic are exercised.
WIDGET_PAGE = "generated/offline_widgets"
BOOK_FILES = ("intro.md", "rerun.md", "references.bib", "bibliography.md")  # intro links to rerun (-W)
REMOTE_MARKERS = (
    "unpkg.com",
    "jsdelivr",
    "cdnjs",
    "googleapis",
    "gstatic",
    "googletagmanager",
    "plausible.io",
    "hypothes.is",
    "utteranc.es",
    "mybinder",
    "thebe@",
    "polyfill.io",
    "cdn.plot.ly",
)
# The scatter of the throwaway notebook: 3 classes x 4 points; hover must show class, file and fold.
SCATTER_CLASSES = ("dog", "rain", "crying_baby")

pytestmark = pytest.mark.slow


def _bib_keys() -> tuple[str, ...]:
    return bc.bib_keys_of([BOOK / "references.bib"])


def _jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def _ensure_vendored() -> Path:
    vendor = BOOK / "_vendor"
    if all((vendor / f).is_file() for f in VENDOR_REQUIRED):
        return vendor
    if shutil.which("npm") is None:
        pytest.skip("book/_vendor is not populated and npm is not installed to run scripts/vendor_js.sh")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "vendor_js.sh")], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"scripts/vendor_js.sh failed:\n{proc.stderr[-3000:]}"
    return vendor


def _make_widget_notebook(path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    classes = [c for c in SCATTER_CLASSES for _ in range(4)]
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Widgets offline\n\nA widget, a figure and a formula, $\\lVert f(x) \\rVert_2 = 1$, "
            "rendered without network access.\n\n$$ \\sum_k S_k = 1 $$\n\n"
            "The zero-shot recipe of {cite:t}`tavares2025pitfalls` builds on CLAP {cite:p}`elizalde2023clap`; "
            "{numref}`tab-offline-demo` holds two numbers.\n\n"
            "```{table} Two numbers with readable headers.\n:name: tab-offline-demo\n\n"
            "| Backbone silhouette | Projection silhouette |\n|---|---|\n| 0.12 | 0.08 |\n```"
        ),
        nbformat.v4.new_code_cell(
            "import ipywidgets as widgets\nslider = widgets.IntSlider(value=7, min=0, max=10, description='k')\nslider"
        ),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\n"
            "import matplotlib.pyplot as plt\n"
            "fig, ax = plt.subplots(figsize=(4, 2.5))\n"
            "ax.plot([0, 1, 2, 3], [0, 1, 4, 9], marker='o')\n"
            "ax.set_title('offline figure')\n"
            "plt.show()"
        ),
        nbformat.v4.new_code_cell(
            "import numpy as np\n"
            "from clap_lib.report.interactive import show, tsne_scatter\n"
            f"classes = {classes!r}\n"
            "points = np.random.default_rng(0).normal(size=(len(classes), 2))\n"
            "files = [f'1-{i}-A-0.wav' for i in range(len(classes))]\n"
            "folds = [1 + i % 5 for i in range(len(classes))]\n"
            "show(tsne_scatter(points, classes, files, folds, title='offline scatter'))"
        ),
    ]
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(nb, path)


def _standalone_config(text: str) -> str:
    """The repository config made relative to a throwaway book folder holding its own copy of _ext/."""
    assert "offline_assets: book/_ext" in text
    return text.replace("offline_assets: book/_ext", "offline_assets: _ext")


def _copy_book_files(src: Path) -> None:
    for name in BOOK_FILES:
        shutil.copy2(BOOK / name, src / name)
    shutil.copytree(BOOK / "_ext", src / "_ext", ignore=shutil.ignore_patterns("__pycache__"))


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """Build the throwaway book; yield (book_dir, html_dir, build_seconds)."""
    vendor = _ensure_vendored()
    src = tmp_path_factory.mktemp("offline_book")
    (src / "_config.yml").write_text(_standalone_config(CONFIG.read_text()))
    _copy_book_files(src)
    shutil.copytree(vendor, src / "_vendor")
    (src / "_toc.yml").write_text(
        f"format: jb-book\nroot: intro\nchapters:\n  - file: {WIDGET_PAGE}\n  - file: rerun\n  - file: bibliography\n"
    )
    (src / WIDGET_PAGE).parent.mkdir(parents=True, exist_ok=True)
    _make_widget_notebook(src / f"{WIDGET_PAGE}.ipynb")

    t0 = time.monotonic()
    proc = subprocess.run(
        [*_jupyter_book_cmd(), "build", str(src), "-W", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, (
        f"jupyter-book build -W failed (rc {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    )
    html = src / "_build" / "html"
    assert (html / "intro.html").is_file() and (html / f"{WIDGET_PAGE}.html").is_file()
    yield src, html, seconds


def test_config_uses_local_assets_only():
    import yaml

    cfg = yaml.safe_load(CONFIG.read_text())
    sphinx = cfg["sphinx"]["config"]
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["only_build_toc_files"] is True
    assert not bc.is_remote(sphinx["mathjax_path"])
    assert sphinx["mathjax_path"].startswith("_vendor/")
    js = list(sphinx["nb_ipywidgets_js"])
    # RequireJS first, then the glue script, then the widget manager.
    assert js == ["_vendor/require.js", "_vendor/ipywidgets-offline.js", "_vendor/html-manager/embed-amd.js"]
    assert all(not bc.is_remote(k) for k in js)
    assert "sphinx_thebe" not in sphinx["extensions"] and "offline_assets" in sphinx["extensions"]
    assert cfg["launch_buttons"]["thebe"] is False
    assert not any(v for k, v in cfg["launch_buttons"].items() if k.endswith("_url"))
    # Vendored files must not sit under book/_static/: jupyter-book would add every *.js there to
    # every page.
    assert not (BOOK / "_static" / "_vendor").exists()


def test_built_html_references_nothing_remote(built_book):
    _, html, _ = built_book
    problems = scan.remote_references(html)
    assert problems == {}, f"remote references in built files: {problems}"
    for page in bc.html_pages(html):
        text = page.read_text(encoding="utf-8")
        hits = [m for m in REMOTE_MARKERS if m in text]
        assert not hits, f"{page.name} mentions {hits}"
    widget_html = (html / f"{WIDGET_PAGE}.html").read_text(encoding="utf-8")
    assert 'src="../_static/_vendor/require.js' in widget_html
    assert 'src="../_static/_vendor/html-manager/embed-amd.js' in widget_html
    assert (
        widget_html.index("_vendor/require.js")
        < widget_html.index("_vendor/ipywidgets-offline.js")
        < widget_html.index("embed-amd.js")
    )
    assert "application/vnd.jupyter.widget-state+json" in widget_html
    assert 'src="_static/_vendor/mathjax/tex-svg.js' in (html / "intro.html").read_text(encoding="utf-8")
    # Pages without widgets do not pay for RequireJS / the widget bundle.
    assert "embed-amd.js" not in (html / "intro.html").read_text(encoding="utf-8")
    for f in (*VENDOR_REQUIRED, "ipywidgets-offline.js"):
        assert (html / "_static" / "_vendor" / f).is_file(), f
    # Every asset the widget bundle may load (Font Awesome fonts, hashed names) sits beside it.
    hm = html / "_static" / "_vendor" / "html-manager"
    assets = set(re.findall(r"[0-9a-f]{20}\.(?:woff2?|ttf|eot|svg|js)", (hm / "embed-amd.js").read_text()))
    assert assets and all((hm / a).is_file() for a in assets), sorted(a for a in assets if not (hm / a).is_file())


def _browser_found() -> bool:
    return bool(bc.find_chromium() and bc.find_chromedriver())


def _ensure_chromium() -> None:
    if _browser_found():
        return
    reason = "headless Chromium + chromedriver are not installed"
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=300, env=env)
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
                check=True,
                capture_output=True,
                timeout=600,
                env=env,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            reason += f" and `apt-get install chromium chromium-driver` failed: {str(exc)[:300]}"
        if _browser_found():
            return
    else:
        reason += " and cannot be installed here (needs root and apt-get)"
    pytest.skip(reason)


def test_static_checks_of_the_built_book(built_book):
    """numrefs resolved, citations resolved into a rendered bibliography, no broken link, hover data embedded."""
    _, html, _ = built_book
    static, bib = bc.static_checks(html, bc.CheckConfig(bib_keys=_bib_keys(), browser=False))
    assert static == {}, static
    assert bib is not None and bib.page == "bibliography.html", bib
    assert bib.entries == len(_bib_keys()), bib  # :all: lists every entry of references.bib
    assert bib.cited_from.get(f"{WIDGET_PAGE}.html", 0) >= 2, bib  # {cite:t} + {cite:p}
    page = html / f"{WIDGET_PAGE}.html"
    # {numref} became a link to the table, numbered.
    ref = [a for a in scan.soup(page).select("a.reference") if a.get("href", "").endswith("#tab-offline-demo")]
    assert ref and re.fullmatch(r"Table \d+", ref[0].get_text(strip=True)), ref
    figs = scan.plotly_figures(page)
    assert len(figs) == 1
    traces = figs[0]["data"]
    assert [t["name"] for t in traces] == sorted(SCATTER_CLASSES)
    assert sum(len(t["x"]) for t in traces) == 4 * len(SCATTER_CLASSES)
    assert all(len(t["customdata"]) == len(t["x"]) for t in traces)
    text = page.read_text(encoding="utf-8")
    assert text.count("_vendor/plotly.min.js") == 1  # once per page, from the vendored copy
    assert "plotly.min.js" not in (html / "intro.html").read_text(encoding="utf-8")  # only where needed
    assert (html / "_static" / "_vendor" / "plotly.min.js").is_file()


def test_pages_render_offline_in_chromium(built_book, tmp_path_factory):
    _, html, build_s = built_book
    _ensure_chromium()
    env_shots = os.environ.get("BOOK_SCREENSHOTS") or os.environ.get("BOOK_OFFLINE_SCREENSHOTS")
    shots = Path(env_shots or tmp_path_factory.mktemp("screenshots"))
    t0 = time.monotonic()
    try:
        report = bc.check_site(
            html, screenshots=shots, config=bc.CheckConfig(bib_keys=_bib_keys()), browser=bc.BrowserConfig(timeout=60)
        )
    except bc.BrowserError as exc:
        pytest.fail(f"could not drive Chromium: {exc}")
    print(
        f"\n{report.table()}\nbuild {build_s:.1f}s, browser check {time.monotonic() - t0:.1f}s, screenshots in {shots}"
    )
    pages = {p.page: p for p in report.pages}
    assert report.ok, report.table()
    assert {"intro.html", "rerun.html", "bibliography.html", f"{WIDGET_PAGE}.html"} <= set(pages)

    widget = pages[f"{WIDGET_PAGE}.html"]
    st = widget.state
    assert st["widgetViews"] >= 1 and st["widgetsRendered"] == st["widgetViews"], st
    assert "widget-slider" in st["widgetClasses"] and "jupyter-widgets" in st["widgetClasses"], st
    assert st["images"] >= 1 and not st["imagesBroken"], st  # the matplotlib PNG
    assert st["math"] >= 2 and st["mathTypeset"] == st["math"] and st["mjxContainers"] >= 2, st
    # The widget bundle looks its fonts up beside its module URL: the vendored copy of embed-amd.js.
    assert st["widgetModuleUrl"].endswith("/_static/_vendor/html-manager/libembed-amd.js"), st
    hashed = re.compile(r"/[0-9a-f]{20}\.(?:woff2?|ttf|eot|svg)$")
    for u in widget.urls:
        if hashed.search(u):
            assert "/_static/_vendor/html-manager/" in u, u
    # Plotly on a page that also runs RequireJS: drawn, with its data, hover label = class / file / fold.
    import plotly

    assert st["requirejs"] is True, st
    assert st["plotly"] == 1 and st["plotlyDrawn"] == 1, st
    assert st["plotlyPoints"] == [4 * len(SCATTER_CLASSES)], st
    assert st["plotlyVersion"] == plotly.offline.get_plotlyjs_version(), st
    assert [u.split("/_static/")[-1] for u in st["plotlyScripts"]] == ["_vendor/plotly.min.js"], st
    label = st["plotlyHover"][0]
    assert sorted(SCATTER_CLASSES)[0] in label and "file 1-" in label and "fold " in label, label

    intro = pages["intro.html"].state
    assert intro["math"] >= 2 and intro["mathTypeset"] == intro["math"] and intro["mjxContainers"] >= 2

    for p in report.pages:
        assert not p.external_requests, (p.page, p.external_requests)
        assert not p.console_errors, (p.page, p.console_errors)
        if "redirect" not in p.state:
            assert p.screenshot and Path(p.screenshot).stat().st_size > 5000, p.page
            assert Path(p.screenshot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checker_catches_remote_assets(tmp_path):
    """The checker is not vacuous: a page pulling from a CDN fails both the scan and the browser."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        "<!doctype html><html><head>"
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/x/style.css">'
        "<style>@import url(//fonts.googleapis.com/css?family=Roboto);</style>"
        '<script src="https://unpkg.com/nothing@1/index.js"></script>'
        "</head><body><p>hi</p><a href='https://example.org/'>a plain link is fine</a>"
        "<script>fetch('https://example.org/data.json').catch(() => {});</script></body></html>"
    )
    problems = scan.remote_references(site)
    assert len(problems["index.html"]) == 3, problems
    _ensure_chromium()
    report = bc.check_site(site, browser=bc.BrowserConfig(timeout=20))
    page = report.pages[0]
    assert not report.ok and not page.ok
    hosts = {u.split("/")[2] for u in page.external_requests}
    assert {"cdn.jsdelivr.net", "unpkg.com", "example.org"} <= hosts, page.external_requests
    assert any("ERR_NAME_NOT_RESOLVED" in f for f in page.failed_requests), page.failed_requests


def test_build_warns_about_a_remote_asset(tmp_path):
    """The local extension turns a CDN script that slips into the config into a -W build failure."""
    _ensure_vendored()
    src = tmp_path / "book"
    src.mkdir()
    cfg = _standalone_config(CONFIG.read_text())
    assert "mathjax_path: _vendor/mathjax/tex-svg.js" in cfg
    cfg = cfg.replace(
        "mathjax_path: _vendor/mathjax/tex-svg.js",
        "mathjax_path: https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js",
    )
    (src / "_config.yml").write_text(cfg)
    _copy_book_files(src)
    (src / "_vendor").symlink_to(BOOK / "_vendor", target_is_directory=True)
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: rerun\n  - file: bibliography\n")
    proc = subprocess.run([*_jupyter_book_cmd(), "build", str(src), "-W"], capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "offline_assets" in out and "cdn.jsdelivr.net" in out, out[-3000:]
