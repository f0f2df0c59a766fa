"""The real book, built from a tiny run: every table and figure present, pages clean in headless Chromium.

Executes the repository's notebooks with papermill (parameters pointing at the tiny run), builds the book with
`jupyter-book build -W` into a temporary copy of book/, then checks the HTML.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from clap_lib import book as book_mod
from clap_lib import report
from fixtures import TINY_OVERRIDES

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _sac():
    spec = importlib.util.spec_from_file_location("serve_and_check", ROOT / "scripts" / "serve_and_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


sac = _sac()


@pytest.fixture(scope="module")
def tiny_book(tiny_grid, tiny_esc50, tmp_path_factory):
    vendor = ROOT / "book" / "_vendor"
    if not (vendor / "require.js").is_file():
        pytest.skip("book/_vendor is empty: run `bash scripts/vendor_js.sh` (the README test command does)")
    grid, artifacts = tiny_grid
    src = tmp_path_factory.mktemp("book")
    for name in ("intro.md", "rerun.md"):
        shutil.copy2(ROOT / "book" / name, src / name)
    shutil.copytree(ROOT / "book" / "_ext", src / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "_vendor").symlink_to(vendor, target_is_directory=True)
    params = book_mod.BookParams(artifacts=str(artifacts), esc50=str(tiny_esc50), overrides=TINY_OVERRIDES)
    lines: list[str] = []
    html = book_mod.build(params, book=src, log=lines.append)
    return grid, src, html, lines


def _text(html: Path, page: str) -> str:
    return (html / page).read_text()


def test_every_page_is_built_and_uses_the_tiny_run(tiny_book):
    grid, src, html, lines = tiny_book
    for n in book_mod.SECTIONS:
        assert (html / "generated" / f"{n}.html").is_file(), n
    for p in ("dirty", "clean", "none"):
        for t in ("dirty", "clean"):
            assert f"Pretraining {p}, training data {t}" in _text(html, f"generated/combinations/{p}_{t}.html")
    assert sum("executed" in ln for ln in lines) == len(book_mod.SECTIONS) + 6


def test_tables_show_this_runs_numbers(tiny_book):
    grid, _, html, _ = tiny_book
    page = _text(html, "generated/s3_1_accuracy_clusters.html")
    assert "Table 1" in page and "Table 2" in page and "random guess" in page
    t1 = report.table1(grid.results)
    for cell in t1[["dirty", "clean"]].to_numpy().ravel():
        assert cell.split(" ")[0] in page  # the value (and its interval, if any) as the table prints it
    t3 = _text(html, "generated/s3_2_text_topology.html")
    assert "Table 3" in t3
    for v in grid.results["topo_Ea_Et"]:
        assert f"{v:.3f}" in t3


def test_figures_are_embedded(tiny_book):
    _, _, html, _ = tiny_book
    for page, n_min in (("s3_1_accuracy_clusters", 2), ("s3_2_text_topology", 2), ("s3_3_backbones", 1),
                        ("s2_model_training", 2)):
        imgs = re.findall(r"<img[^>]+src=\"([^\"]+)\"", _text(html, f"generated/{page}.html"))
        assert len(imgs) >= n_min, (page, imgs)
        for src in imgs:
            if not src.startswith("data:"):
                assert (html / "generated" / src).resolve().is_file(), src
    assert "Figure 2" in _text(html, "generated/s3_1_accuracy_clusters.html")
    assert "Figure 3" in _text(html, "generated/s3_2_text_topology.html")
    assert "Figure 4" in _text(html, "generated/s3_3_backbones.html")


def test_explorer_has_saved_widget_state(tiny_book):
    _, _, html, _ = tiny_book
    page = _text(html, "generated/explore.html")
    assert "application/vnd.jupyter.widget-state+json" in page and "StackModel" in page and "LinkModel" in page


def test_rebuild_reuses_executed_notebooks(tiny_book, tiny_esc50):
    grid, src, _, _ = tiny_book
    lines: list[str] = []
    params = book_mod.BookParams(artifacts=str(Path(grid.dir).parents[1]), esc50=str(tiny_esc50),
                                 overrides=TINY_OVERRIDES)
    book_mod.build(params, book=src, html=False, log=lines.append)
    assert not any("executed" in ln for ln in lines) and sum("up to date" in ln for ln in lines) == \
        len(book_mod.SECTIONS) + 6


def test_pages_open_in_chromium_without_errors_or_remote_requests(tiny_book, tmp_path_factory):
    _, _, html, _ = tiny_book
    exe = sac.find_chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (the README test command installs Debian's chromium)")
    shots = Path(os.environ.get("BOOK_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    rep = sac.check_site(html, screenshots=shots, chromium=exe, timeout=60)
    print(f"\n{rep.table()}\nscreenshots in {shots}")
    assert rep.ok, rep.table()
    pages = {p.page: p for p in rep.pages}
    st = pages["generated/explore.html"].state
    # one Tab view holding the three explorers; every control of theirs must be in the rendered DOM
    assert st["widgetViews"] >= 1 and st["widgetsRendered"] == st["widgetViews"], st
    assert {"widget-tab", "widget-dropdown", "widget-slider", "widget-html"} <= set(st["widgetClasses"]), st
    assert len(list(shots.glob("*.png"))) >= len(book_mod.SECTIONS)
