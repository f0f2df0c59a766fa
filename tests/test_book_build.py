"""The real book, built from a tiny run: every table and figure present, pages clean in headless Chromium.

Executes the repository's notebooks with papermill (parameters pointing at the tiny run), builds the book with
`jupyter-book build -W` into a temporary copy of book/, then checks the HTML (tools.bookcheck).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from fixtures import TINY_OVERRIDES

from clap_lib import report
from clap_lib.report import book as book_mod

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BOOK_FILES = ("intro.md", "rerun.md", "bibliography.md", "references.bib")


@pytest.fixture(scope="module")
def tiny_book(tiny_grid, tiny_esc50, tmp_path_factory):
    vendor = ROOT / "book" / "_vendor"
    if not (vendor / "require.js").is_file():
        pytest.skip("book/_vendor is empty: run `bash scripts/vendor_js.sh` (the README test command does)")
    grid, artifacts = tiny_grid
    src = tmp_path_factory.mktemp("book")
    for name in BOOK_FILES:
        shutil.copy2(ROOT / "book" / name, src / name)
    shutil.copytree(ROOT / "book" / "_ext", src / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "_vendor").symlink_to(vendor, target_is_directory=True)
    params = book_mod.BookParams(
        profile="lab", artifacts=str(artifacts), esc50=str(tiny_esc50), overrides=TINY_OVERRIDES
    )
    lines: list[str] = []
    html = book_mod.build(params, book=src, log=lines.append)
    return grid, src, html, lines


def _soup(html: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((html / page).read_text(), "html.parser")


def _cells(soup: BeautifulSoup) -> list[str]:
    return [td.get_text(" ", strip=True) for td in soup.find_all(["td", "th"])]


def test_every_page_is_built_and_uses_the_tiny_run(tiny_book):
    grid, src, html, lines = tiny_book
    for n in book_mod.SECTIONS:
        assert (html / "generated" / f"{n}.html").is_file(), n
    for p in ("dirty", "clean", "none"):
        for t in ("dirty", "clean"):
            text = (html / f"generated/combinations/{p}_{t}.html").read_text()
            assert f"Pretraining {p}, training data {t}" in text
    assert sum("executed" in ln for ln in lines) == len(book_mod.SECTIONS) + 6


def test_tables_show_this_runs_numbers_in_their_cells(tiny_book):
    grid, _, html, _ = tiny_book
    soup = _soup(html, "generated/s3_1_accuracy_clusters.html")
    cells = _cells(soup)
    t1 = report.table1(grid.results)
    for cell in t1.drop(columns="random guess").to_numpy().ravel():
        assert cell in cells, cell  # the value with its interval, in a cell of its own
    # the paper's printed value beside it (Table 1, dirty/dirty: 0.73) and the glued sentence uses this run's value
    assert "0.73" in cells
    acc = grid.results.set_index(["pretraining", "training"]).loc[("dirty", "dirty"), "accuracy"]
    assert f"{acc:.3f}" in soup.get_text()
    t3 = _cells(_soup(html, "generated/s3_2_text_topology.html"))
    for cell in report.table3(grid.results).to_numpy().ravel():
        assert cell in t3, cell


def test_no_raw_column_name_in_a_rendered_table(tiny_book):
    _, _, html, _ = tiny_book
    raw = ("sil_x_a", "sil_E_a", "topo_xa_Ea", "topo_xt_Et", "topo_Ea_Et", "random_guess", "n_pairs")
    for page in html.glob("generated/**/*.html"):
        for cell in _cells(BeautifulSoup(page.read_text(), "html.parser")):
            assert not any(r in cell.split() for r in raw), (page.name, cell)


def test_figures_are_embedded(tiny_book):
    _, _, html, _ = tiny_book
    for page, n_min in (
        ("s3_1_accuracy_clusters", 2),
        ("s3_2_text_topology", 2),
        ("s3_3_backbones", 1),
        ("s2_model_training", 1),
    ):
        imgs = re.findall(r"<img[^>]+src=\"([^\"]+)\"", (html / f"generated/{page}.html").read_text())
        assert len(imgs) >= n_min, (page, imgs)
        for src in imgs:
            if not src.startswith("data:"):
                assert (html / "generated" / src).resolve().is_file(), src
    assert "Figure 2" in (html / "generated/s3_1_accuracy_clusters.html").read_text()
    assert "Figure 3" in (html / "generated/s3_2_text_topology.html").read_text()
    assert "Figure 4" in (html / "generated/s3_3_backbones.html").read_text()


def _captions(html: Path, page: str) -> list[str]:
    return [c.get_text(" ", strip=True) for c in _soup(html, page).select("span.caption-number")]


def test_tables_and_figures_carry_the_papers_numbers_and_references_resolve(tiny_book):
    """Table 1-3 / Figure 2-4 are numbered as in the paper although the summary and Section 2 come first (their own
    tables are numbered after them), and {numref} from another page links to the right caption."""
    _, _, html, _ = tiny_book
    s31 = _captions(html, "generated/s3_1_accuracy_clusters.html")
    assert s31[0] == "Table 1" and {"Table 2", "Figure 2"} <= set(s31)
    assert all(int(c.split()[1]) > 3 for c in s31 if c.startswith("Table") and c not in ("Table 1", "Table 2"))
    assert {"Table 3", "Figure 3"} <= set(_captions(html, "generated/s3_2_text_topology.html"))
    assert "Figure 4" in _captions(html, "generated/s3_3_backbones.html")
    recipe = _captions(html, "generated/s2_model_training.html")
    assert recipe and all(int(c.split()[1]) > 3 for c in recipe if c.startswith("Table"))
    every = [c for page in html.glob("generated/**/*.html") for c in _captions(html, str(page.relative_to(html)))]
    assert len(every) == len(set(every))  # no number twice
    summary = _soup(html, "generated/summary.html")  # a page before Section 3 refers to its Table 1 / Figure 4
    refs = {
        a.get_text(" ", strip=True): a["href"] for a in summary.select("a.reference") if a.select("span.std-numref")
    }
    assert refs["Table 1"].startswith("s3_1_accuracy_clusters.html#table-1"), refs
    assert refs["Figure 4"].startswith("s3_3_backbones.html#figure-4"), refs


def test_explorer_has_saved_widget_state_and_hover_plots(tiny_book):
    _, _, html, _ = tiny_book
    page = (html / "generated/explore.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in page and "StackModel" in page and "LinkModel" in page
    from tools.bookcheck import scan

    figs = scan.plotly_figures(html / "generated/explore.html")
    assert len(figs) >= 2 and not any(scan.figure_hover_problems(f) for f in figs)


def test_rebuild_reuses_executed_notebooks(tiny_book, tiny_esc50):
    grid, src, _, _ = tiny_book
    lines: list[str] = []
    params = book_mod.BookParams(
        profile="lab", artifacts=str(Path(grid.dir).parents[1]), esc50=str(tiny_esc50), overrides=TINY_OVERRIDES
    )
    book_mod.build(params, book=src, html=False, log=lines.append)
    assert (
        not any("executed" in ln for ln in lines)
        and sum("up to date" in ln for ln in lines) == len(book_mod.SECTIONS) + 6
    )


def test_book_set_seed_reaches_every_page():
    """`book build --set seed=1` gives the pages seed=1 itself, not seed 0 plus an override string."""
    p = book_mod.BookParams.from_sets("lab", "artifacts", None, {"seed": "1", "clap.frozen_epochs": "3"})
    assert p.seed == 1 and p.overrides == "clap.frozen_epochs=3"
    jobs = book_mod.jobs(p)
    assert jobs and all(j.parameters.get("seed", 1) == 1 for j in jobs)
    assert p.config().seed == 1 and p.config().clap.frozen_epochs == 3


def test_pages_pass_the_book_checker_in_chromium(tiny_book, tmp_path_factory):
    from tools.bookcheck import BrowserConfig, CheckConfig, bib_keys_of, check_site, find_chromedriver, find_chromium

    _, src, html, _ = tiny_book
    if find_chromium() is None or find_chromedriver() is None:
        pytest.skip("Chromium / chromedriver are not installed (the README test command installs Debian's)")
    shots = Path(os.environ.get("BOOK_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    rep = check_site(
        html, shots, CheckConfig(bib_keys=bib_keys_of([src / "references.bib"])), BrowserConfig(timeout=60)
    )
    print(f"\n{rep.table()}\nscreenshots in {shots}")
    assert rep.ok, rep.table()
    assert len(list(shots.glob("*.png"))) >= len(book_mod.SECTIONS)
