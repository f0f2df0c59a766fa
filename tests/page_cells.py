"""Running a book page's notebook cells in a test: a fake page context (the paper's own tables as the grid's results,
no run artifacts), `controlled_for` answering what the test says, `display` and `myst_nb.glue` recorded; and
synthetic controlled records (tests/controlled_records.py) whose accuracy rises as leakage is removed. Used by
tests/test_controlled_claims_page.py and tests/test_controlled_pages.py; :func:`run_page` runs a whole page over a
finished-grid folder (tests/test_report_controlled.py, tests/test_report_ladder.py). No training, no book."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from controlled_records import synthetic_records, write_records

from clap_lib import report
from clap_lib.analysis import paper_tables
from clap_lib.config.profiles import make_config
from clap_lib.pipeline.results import GridResult
from clap_lib.report.page import PageContext

ROOT = Path(__file__).resolve().parents[1]
CFG = make_config("gpvad", {"n_boot": "200", "n_perm": "2000"})
#: the chapter's tables the other pages refer to
CHAPTER_LABELS = {"tbl-controlled-accuracy", "tbl-controlled-silhouettes", "tbl-controlled-topology"}


def reversed_order(p: str, level: str, f: float, seed: int) -> float:
    """Accuracy that rises as leakage is removed: claim 1 fails on it, unlike on the paper's tables."""
    return 1.0 - {"dirty": 0.9, "clean": 0.6, "none": 0.3}.get(p, 0.5) * (0.5 if level == "clean" else 1.0)


def reversed_records(folder: Path) -> Path:
    """Records of 4 pretrainings (mn04_as beyond the paper's 3), 3 seeds, 2 splits of 4 classes x 10 clips."""
    r = synthetic_records(
        pretrainings=("dirty", "clean", "none", "mn04_as"), n_classes=4, clips_per_class=10, accuracy=reversed_order
    )
    return write_records(folder, r)


@dataclass(frozen=True)
class FakeContext(PageContext):
    def runs(self):  # no run artifacts: the cells run here never read them
        return {}


def fake_context(tmp_path: Path) -> FakeContext:
    """A page context whose grid results are the paper's own tables (every claim holds on them)."""
    res = paper_tables.load().assign(random_guess=0.02)
    return FakeContext(CFG, GridResult(tmp_path / "grid" / "k1", res, {}), tmp_path, None)


def _notebook(name: str):
    import jupytext

    return jupytext.read(ROOT / "notebooks" / f"{name}.py").cells


def markdown_cells(name: str) -> str:
    return "\n".join(c.source for c in _notebook(name) if c.cell_type == "markdown")


def run_cells(monkeypatch, tmp_path, name: str, found, pick=lambda src: True) -> tuple[str, dict]:
    """The notebook's parameters cell and the code cells that `pick` selects, run with :func:`fake_context` and
    `controlled_for` answering `found`; the text it displayed (Markdown, HTML) and what it glued."""
    import IPython.display
    import myst_nb

    shown, glued = [], {}
    fake = types.ModuleType("clap_lib.pipeline.controlled")
    fake.controlled_for = lambda grid_dir: found
    monkeypatch.setitem(sys.modules, "clap_lib.pipeline.controlled", fake)
    show = lambda obj, **kw: shown.append(getattr(obj, "data", obj))  # noqa: E731
    monkeypatch.setattr(IPython.display, "display", show)
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.__setitem__(key, value))
    monkeypatch.setattr("clap_lib.report.page.context", lambda **kw: fake_context(tmp_path))
    ctx = fake_context(tmp_path)
    # what the set-up cell would have defined, for the cells run without it
    scope = {"ctx": ctx, "cfg": ctx.cfg, "res": ctx.res, "display": show, "Markdown": IPython.display.Markdown}
    scope["report"] = report
    for cell in _notebook(name):
        if cell.cell_type == "code" and ("parameters" in cell.source or pick(cell.source)):
            exec(compile(cell.source, f"{name}.py", "exec"), scope)
    return "\n".join(s for s in shown if isinstance(s, str)), glued


def refs_resolve(text: str, also: set[str] = frozenset()) -> set[str]:
    """The labels the text defines; every {numref} in it must name one of them, `also`, or a chapter table."""
    chapter = (ROOT / "notebooks" / "controlled.py").read_text()
    assert all(f'"{label}"' in chapter for label in CHAPTER_LABELS)
    labels = set(re.findall(r":name: ([a-z0-9-]+)", text))
    assert set(re.findall(r"\{numref\}`([a-z0-9-]+)`", text)) <= labels | CHAPTER_LABELS | set(also)
    return labels


def grid_folder(tmp_path: Path) -> Path:
    """A finished-grid folder as page.context checks it (tests/test_book_jobs.py does the same)."""
    from clap_lib.config.experiment import config_payload
    from clap_lib.io import atomic_json

    grid = tmp_path / "artifacts" / "grid" / "k1"
    grid.mkdir(parents=True)
    (grid / "results.csv").write_text("pretraining,training,accuracy\ndirty,dirty,0.5\n")
    atomic_json({}, grid / "correlations.json")
    atomic_json({"config": config_payload(make_config("gpvad"))}, grid / "config.json")
    return grid


def run_page(monkeypatch, grid: Path, found, name: str) -> tuple[list[str], dict]:
    """Every code cell of notebook `name` run here with `grid` as its parameter and `controlled_for` answering
    `found`; returns the Markdown it displayed and what it glued (figures closed once glued)."""
    import IPython.display
    import matplotlib.pyplot as plt
    import myst_nb

    shown, glued = [], {}
    fake = types.ModuleType("clap_lib.pipeline.controlled")
    fake.controlled_for = lambda grid_dir: found
    monkeypatch.setitem(sys.modules, "clap_lib.pipeline.controlled", fake)
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(getattr(obj, "data", obj)))
    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.__setitem__(key, value))
    glue_figure = lambda key, fig: (glued.__setitem__(key, fig), plt.close(fig))  # noqa: E731
    monkeypatch.setattr("clap_lib.report.numbered.glue_figure", glue_figure)
    monkeypatch.setattr("clap_lib.report.glue_figure", glue_figure)
    scope = {}
    for cell in _notebook(name):
        if cell.cell_type == "code":
            exec(compile(cell.source, f"{name}.py", "exec"), scope)
            if "parameters" in cell.source and "profile =" in cell.source:
                scope["grid"], scope["artifacts"] = str(grid), str(grid.parent.parent)
    return [s for s in shown if isinstance(s, str)], glued
