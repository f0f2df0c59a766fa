"""Which parameters each notebook execution gets, and what its cache key covers (no execution here)."""

from __future__ import annotations

from clap_lib import book


def test_declared_parameters_read_from_the_parameters_cell():
    names = book.declared_parameters(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py")
    assert {"profile", "artifacts", "esc50", "seed", "overrides", "paper_tables"} <= names
    assert "pretraining" not in names and "seeds" not in names
    assert {"pretraining", "training"} <= book.declared_parameters(book.NOTEBOOKS_DIR / "combination.py")


def test_jobs_pass_only_declared_parameters(tmp_path):
    params = book.BookParams(extra={"seeds": "0,1", "paper_tables": "/x/paper.csv"})
    jobs = {j.output.relative_to(tmp_path).as_posix(): j for j in book.jobs(params, out=tmp_path)}
    assert len(jobs) == len(book.SECTIONS) + 6
    assert jobs["summary.ipynb"].parameters["seeds"] == "0,1"
    assert "seeds" not in jobs["s3_1_accuracy_clusters.ipynb"].parameters
    assert jobs["s3_1_accuracy_clusters.ipynb"].parameters["paper_tables"] == "/x/paper.csv"
    combo = jobs["combinations/none_clean.ipynb"]
    assert combo.parameters["pretraining"] == "none" and combo.parameters["training"] == "clean"
    assert "paper_tables" not in combo.parameters and combo.title == "Pretraining none, training data clean"


def test_job_key_follows_the_content_of_a_file_parameter(tmp_path):
    csv = tmp_path / "paper.csv"
    csv.write_text("a\n1\n")
    job = book.Job(book.NOTEBOOKS_DIR / "s3_1_accuracy_clusters.py", tmp_path / "o.ipynb",
                   {"paper_tables": str(csv)})
    k1 = book.job_key(job, "grid", "lib")
    assert book.job_key(job, "grid", "lib") == k1
    csv.write_text("a\n2\n")  # same path, new content -> new key
    k2 = book.job_key(job, "grid", "lib")
    assert k2 != k1
    assert book.job_key(job, "grid2", "lib") != k2 and book.job_key(job, "grid", "lib2") != k2


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
        assert {"profile", "artifacts", "esc50", "seed", "overrides"} <= names
