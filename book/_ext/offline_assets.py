"""Sphinx extension: serve the book's JavaScript from local files and refuse remote assets.

Loaded from ``_config.yml`` (``sphinx.config.extensions`` + ``sphinx.local_extensions``).

* Copies ``<book>/_vendor/`` (filled by ``scripts/vendor_js.sh`` from npm packages: RequireJS, the
  ipywidgets HTML manager, MathJax 3) and this folder's ``static/`` (our own glue script,
  ``ipywidgets-offline.js``) to ``<html>/_static/_vendor/``. The folder is deliberately NOT
  under ``<book>/_static/``: jupyter-book 1.x adds every ``*.js``/``*.css`` found below ``_static``
  to every page.
* Copies the ``plotly.min.js`` shipped inside the installed Python ``plotly`` package (so it matches the
  version that wrote the figure JSON) to ``<html>/_static/_vendor/`` and loads it, once, on each page holding
  a :func:`clap_lib.report.interactive.show` figure. It goes in the head before RequireJS (lower priority number):
  plotly.js 4 sets ``window.Plotly`` whatever the page holds, but the UMD bundles of older releases register
  an anonymous AMD module instead when they see RequireJS's ``define`` (tests/test_bookcheck.py checks both
  orders in the browser).
* Fails early, with the command to run, when the vendored files are missing.
* Emits a warning (an error under ``jupyter-book build -W``) for every script or stylesheet that a page
  would load from another host, whichever extension or option put it there.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

from clap_lib.report.interactive import PLOTLY_CLASS, plotly_js_path

logger = logging.getLogger(__name__)

# Files under <book>/_vendor/ that the configuration refers to.
REQUIRED = ("require.js", "html-manager/embed-amd.js", "mathjax/tex-svg.js")
OUT_SUBDIR = "_vendor"  # below <html>/_static/
OWN_STATIC = Path(__file__).parent / "static"  # committed files copied next to the vendored ones
PLOTLY_JS = "plotly.min.js"  # below <html>/_static/_vendor/
PLOTLY_PRIORITY = 150  # before Sphinx's own scripts (200) and myst-nb's RequireJS (500)


def _is_remote(uri: str | None) -> bool:
    if not uri:
        return False
    uri = uri.strip().lower()
    return uri.startswith("//") or "://" in uri.split("?", 1)[0]


def _vendor_src(app: Sphinx) -> Path:
    return Path(app.confdir) / app.config.offline_vendor_dir


def check_vendor(app: Sphinx) -> None:
    if app.builder is None or app.builder.format != "html":
        return
    src = _vendor_src(app)
    missing = [f for f in REQUIRED if not (src / f).is_file()]
    if missing:
        raise ExtensionError(
            f"offline_assets: vendored browser files missing in {src}: {', '.join(missing)}. "
            "Run `bash scripts/vendor_js.sh` in the repository root first."
        )


def check_page_assets(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Warn about any remote <script src> / <link href> a page would get."""
    for key in ("script_files", "css_files"):
        for asset in context.get(key, []) or []:
            uri = getattr(asset, "filename", asset)
            if _is_remote(uri if isinstance(uri, str) else None):
                logger.warning(
                    "offline_assets: page %r would load a remote asset %s (from %s); "
                    "vendor it and point the configuration at the local copy",
                    pagename,
                    uri,
                    key,
                    type="offline_assets",
                    subtype="remote",
                )


def add_plotly(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Load plotly.js on the pages (and only those) that hold an interactive figure."""
    if f'class="{PLOTLY_CLASS}"' in (context.get("body") or ""):
        app.add_js_file(f"{OUT_SUBDIR}/{PLOTLY_JS}", priority=PLOTLY_PRIORITY)


def copy_vendor(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder is None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / OUT_SUBDIR
    shutil.copytree(_vendor_src(app), dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".stamp"))
    shutil.copytree(OWN_STATIC, dest, dirs_exist_ok=True)
    shutil.copy2(plotly_js_path(), dest / PLOTLY_JS)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("offline_vendor_dir", "_vendor", "html")
    app.add_css_file(f"{OUT_SUBDIR}/book.css")  # static/book.css: wide tables scroll in their own box
    app.connect("builder-inited", check_vendor)
    # Late priority: run after the extensions that add per-page files (myst-nb, sphinx.ext.mathjax).
    app.connect("html-page-context", add_plotly)
    app.connect("html-page-context", check_page_assets, priority=900)
    app.connect("build-finished", copy_vendor)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
