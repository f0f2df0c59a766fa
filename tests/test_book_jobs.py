"""Which parameters each notebook execution gets, and what its cache key covers (no execution here)."""

from __future__ import annotations

import shutil

from clap_lib.report import book


def test_declared_parameters_read_from_the_parameters_cell():
    names = book.declared_parameters(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py")
    assert {"profile", "artifacts", "esc50", "seed", "overrides", "seeds"} <= names
    assert "pretraining" not in names
    assert {"pretraining", "training"} <= book.declared_parameters(book.NOTEBOOKS_DIR / "combination.py")


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
    job = book.Job(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py", tmp_path / "o.ipynb", {"seed": 0})
    k1 = book.job_key(job, "grid", "lib")
    assert book.job_key(job, "grid", "lib") == k1
    assert book.job_key(job, "grid2", "lib") != k1 and book.job_key(job, "grid", "lib2") != k1
    assert book.job_key(book.Job(job.source, job.output, {"seed": 1}), "grid", "lib") != k1


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
    assert parts["Each combination"] == [{"file": "generated/combinations/dirty_strict"},
                                         {"file": "generated/combinations/none_clean"}]
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
        assert {"profile", "artifacts", "esc50", "seed", "overrides", "seeds"} <= names
