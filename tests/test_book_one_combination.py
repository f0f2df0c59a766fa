"""A book of a grid of one combination (`--set pretrainings=none --set trainings=dirty`, which the README presents as
normal): every page builds and says what it cannot show for this run (issue 24)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixtures import TINY_OVERRIDES

from clap_lib.report import book as book_mod

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BOOK_FILES = ("intro.md", "rerun.md", "bibliography.md", "references.bib")
VENDORED = ("require.js", "html-manager/embed-amd.js", "mathjax/tex-svg.js", "ipywidgets-offline.js")


@pytest.fixture(scope="module")
def one_combination_book(tiny_esc50, tmp_path_factory):
    src = tmp_path_factory.mktemp("book")
    for name in BOOK_FILES:
        shutil.copy2(ROOT / "book" / name, src / name)
    shutil.copytree(ROOT / "book" / "_ext", src / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    vendor = ROOT / "book" / "_vendor"
    if (vendor / "require.js").is_file():
        (src / "_vendor").symlink_to(vendor, target_is_directory=True)
    else:  # the Sphinx build only needs the files to exist (the browser check, tests/test_book_build.py, runs them)
        for f in VENDORED:
            (src / "_vendor" / f).parent.mkdir(parents=True, exist_ok=True)
            (src / "_vendor" / f).write_text("// placeholder: run scripts/vendor_js.sh for the real file\n")
    artifacts = tmp_path_factory.mktemp("artifacts")
    params = book_mod.BookParams(
        profile="lab",
        artifacts=str(artifacts),
        esc50=str(tiny_esc50),
        overrides=TINY_OVERRIDES + "; pretrainings=none; trainings=dirty",
    )
    lines: list[str] = []
    html = book_mod.build(params, book=src, log=lines.append)
    return src, html, lines, artifacts


def test_a_grid_of_one_combination_builds_a_book(one_combination_book):
    _, html, lines, _ = one_combination_book
    for n in book_mod.SECTIONS:
        assert (html / "generated" / f"{n}.html").is_file(), n
    assert [p.name for p in (html / "generated" / "combinations").glob("*.html")] == ["none_dirty.html"]
    # the correlation table says why it is empty instead of crashing the page
    page = (html / "generated" / "s3_1_accuracy_clusters.html").read_text()
    assert "A correlation needs at least 3 combinations; this run has 1" in page
    assert any(ln.startswith("[book] data folders: ESC-50 ") for ln in lines)


def test_the_published_book_and_artifacts_hold_no_machine_path(one_combination_book):
    """No absolute path of this machine in the HTML, the downloadable _sources/*.ipynb, the executed notebooks,
    run.log or skipped.json; the parameters papermill injected are not shown."""
    src, html, _, artifacts = one_combination_book
    assert book_mod.machine_paths(html.parent) == []  # _build: html/ (with _sources/) and jupyter_execute/
    assert book_mod.machine_paths(src / "generated") == []
    logs = [artifacts / "run.log", *artifacts.glob("features/*/skipped.json")]
    assert len(logs) == 2 and not [p for f in logs for p in book_mod.machine_paths(f.parent) if p[0] == f.name]
    page = (html / "generated" / "summary.html").read_text()
    assert "injected-parameters" not in page and "overrides = " not in page.split("Parameters (papermill")[-1]


def test_pages_of_one_combination_print_no_warning(one_combination_book):
    src, _, _, _ = one_combination_book
    import nbformat

    for nb_path in sorted((src / "generated").rglob("*.ipynb")):
        nb = nbformat.read(nb_path, as_version=4)
        stderr = [o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        assert not [t for t in stderr if "Warning" in t], (nb_path.name, stderr)
