"""Which parameters each notebook execution gets, and what its cache key covers (no execution here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from clap_lib.report import book


def test_declared_parameters_read_from_the_parameters_cell():
    names = book.declared_parameters(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py")
    assert {"profile", "artifacts", "grid", "seed", "overrides", "seeds"} <= names
    assert "pretraining" not in names
    assert {"pretraining", "training"} <= book.declared_parameters(book.NOTEBOOKS_DIR / "combination.py")


def test_every_parameters_cell_declares_the_one_parameter_list():
    """The pages' parameters are declared once (page.PAGE_PARAMETERS): each notebook's cell lists exactly them, in
    that order, the page context takes them and the book build passes them."""
    import inspect

    import jupytext
    from papermill.translators import PythonTranslator

    from clap_lib.report import page

    for source in sorted(book.NOTEBOOKS_DIR.glob("*.py")):
        cell = next(c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", []))
        names = tuple(p.name for p in PythonTranslator.inspect(cell))
        extra = page.COMBINATION_PARAMETERS if source.stem == book.COMBINATION else ()
        assert names == page.PAGE_PARAMETERS + extra, source.name
    assert tuple(inspect.signature(page.context).parameters) == page.PAGE_PARAMETERS
    assert tuple(book.BookParams().as_parameters()) == page.PAGE_PARAMETERS


def test_pages_never_run_the_pipeline():
    """A page reads the grid folder the build passes (`grid`); neither the page context nor any notebook imports
    the grid runner, so a book build hashes the ESC-50 audio once (in `book.build`)."""
    import ast

    from clap_lib.report import page

    sources = [Path(page.__file__), *sorted(book.NOTEBOOKS_DIR.glob("*.py"))]
    for src in sources:
        mods = {n.module for n in ast.walk(ast.parse(src.read_text())) if isinstance(n, ast.ImportFrom)}
        assert not mods & {"clap_lib.pipeline.grid", "clap_lib.pipeline.stages"}, src.name


def test_page_context_reads_the_grid_it_is_given_and_checks_its_config(tmp_path):
    from clap_lib.config.experiment import config_payload
    from clap_lib.config.profiles import make_config
    from clap_lib.io import atomic_json
    from clap_lib.report import page

    grid = tmp_path / "artifacts" / "grid" / "k1"
    grid.mkdir(parents=True)
    (grid / "results.csv").write_text("pretraining,training,accuracy\ndirty,dirty,0.5\n")
    atomic_json({}, grid / "correlations.json")
    atomic_json({"config": config_payload(make_config("lab"))}, grid / "config.json")
    ctx = page.context(profile="lab", artifacts=tmp_path / "artifacts", grid=str(grid))
    assert ctx.grid.dir == grid and ctx.res["accuracy"].tolist() == [0.5]
    with pytest.raises(ValueError, match=r"other settings than this page's parameters \(seed\)"):
        page.context(profile="lab", artifacts=tmp_path / "artifacts", grid=str(grid), seed=1)
    with pytest.raises(FileNotFoundError, match="config.json missing"):
        page.context(profile="lab", artifacts=tmp_path / "artifacts", grid=str(tmp_path / "nowhere"))


def test_jobs_pass_only_declared_parameters(tmp_path):
    params = book.BookParams(profile="lab", seeds="0,1", extra={"unknown_to_every_page": 1})
    jobs = {j.output.relative_to(tmp_path).as_posix(): j for j in book.jobs(params, out=tmp_path)}
    assert len(jobs) == len(book.SECTIONS) + 6
    assert jobs["summary.ipynb"].parameters["seeds"] == "0,1"
    assert all("unknown_to_every_page" not in j.parameters for j in jobs.values())
    combo = jobs["combinations/none_clean.ipynb"]
    assert combo.parameters["pretraining"] == "none" and combo.parameters["training"] == "clean"
    assert combo.title == "Pretraining none, training data clean"
    assert "pretraining" not in jobs["summary.ipynb"].parameters


def test_jobs_follow_the_runs_training_levels(tmp_path):
    params = book.BookParams(profile="lab", overrides="trainings=dirty,clean,strict")
    names = {j.output.name for j in book.jobs(params, out=tmp_path)}
    assert {"dirty_strict.ipynb", "none_strict.ipynb"} <= names and len(names) == len(book.SECTIONS) + 9


def test_job_key_follows_grid_library_and_parameters(tmp_path):
    job = book.NotebookJob(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py", tmp_path / "o.ipynb", {"seed": 0})
    k1 = book.job_key(job, "grid", "lib")
    assert book.job_key(job, "grid", "lib") == k1
    assert book.job_key(job, "grid2", "lib") != k1 and book.job_key(job, "grid", "lib2") != k1
    assert book.job_key(book.NotebookJob(job.source, job.output, {"seed": 1}), "grid", "lib") != k1


def test_library_fingerprint_covers_package_data(tmp_path, monkeypatch):
    """The bundled paper tables are shown by the pages: a change to them re-executes the pages."""
    fake = tmp_path / "repo"
    (fake / "clap_lib").mkdir(parents=True)
    (fake / "clap_lib" / "a.py").write_text("x = 1\n")
    (fake / "clap_lib" / "paper_tables.csv").write_text("a\n1\n")
    monkeypatch.setattr(book, "ROOT", fake)
    k1 = book.library_fingerprint()
    (fake / "clap_lib" / "paper_tables.csv").write_text("a\n2\n")
    assert book.library_fingerprint() != k1
    shutil.rmtree(fake)


def test_combination_toc_lists_the_runs_combinations(tmp_path):
    import yaml

    out = book.combination_toc(book.ROOT / "_toc.yml", [("dirty", "strict"), ("none", "clean")], tmp_path / "t.yml")
    parts = {p["caption"]: p["chapters"] for p in yaml.safe_load(out.read_text())["parts"]}
    assert parts["Each combination"] == [
        {"file": "generated/combinations/dirty_strict"},
        {"file": "generated/combinations/none_clean"},
    ]
    assert {"file": "bibliography"} in parts["Using this project"]


def test_papermill_parses_every_parameters_cell(caplog):
    """papermill's own parser sees the same names (a '=' inside a comment breaks it, silently dropping help)."""
    import jupytext
    from papermill.translators import PythonTranslator

    for source in sorted(book.NOTEBOOKS_DIR.glob("*.py")):
        (cell,) = [c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", [])]
        caplog.clear()
        names = {p.name for p in PythonTranslator.inspect(cell)}
        assert "Unable to parse" not in caplog.text, (source.name, caplog.text)
        assert names == book.declared_parameters(source), source.name
        assert {"profile", "artifacts", "grid", "seed", "overrides", "seeds"} <= names
