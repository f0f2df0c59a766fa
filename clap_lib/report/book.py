"""Build the Jupyter Book: execute the section notebooks with papermill, then `jupyter-book build -W`.

    python -m clap_lib book build [--artifacts DIR] [--set key=value ...] [--no-html] [--force]

1. The grid is loaded from the cache (or computed, if this configuration has never run): the build's one run of
   the pipeline, so the ESC-50 audio is hashed once.
2. Every notebook in `notebooks/` (jupytext text files) is executed by papermill into `book/generated/` with the
   grid's folder as its `grid` parameter (a page reads it and never runs the pipeline): the section notebooks once, `combination.py` once per (pretraining, training). An executed notebook is
   reused while its source, its parameters, the grid it reads and the library code are unchanged (the
   hash is stored in the notebook's metadata), so rebuilding after editing a page's text takes seconds.
3. `jupyter-book build book --config _config.yml --toc _toc.yml -W` makes the HTML (warnings are errors).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from clap_lib.config.experiment import DEFAULT_PROFILE
from clap_lib.config.parse import parse_seeds, parse_sets
from clap_lib.config.profiles import config_from_params
from clap_lib.data.esc50 import data_folders
from clap_lib.report.book_html import BOOK_DIR, ROOT, build_html, machine_paths, unmachined
from clap_lib.report.kernels import interruptible
from clap_lib.report.page import PAGE_PARAMETERS

NOTEBOOKS_DIR = ROOT / "notebooks"
GENERATED = "generated"
SECTIONS = (
    "s2_model_training",
    "s2_2_datasets",
    "s3_1_accuracy_clusters",
    "s3_2_text_topology",
    "s3_3_backbones",
    "summary",
    "controlled",
    "ladder",
    "claims",
    "audit",
    "explore",
)
COMBINATION = "combination"
FILE_PARAMETERS: tuple[str, ...] = ()  # parameters naming a file, keyed by the file's content


@dataclass(frozen=True)
class NotebookJob:
    """One papermill execution: a notebook source, where its output goes, and its parameters."""

    source: Path
    output: Path
    parameters: dict
    title: str | None = None  # replaces the notebook's first heading (per-combination pages)


@dataclass(frozen=True)
class BookParams:
    """The run the book shows: the pages' parameters (`page.PAGE_PARAMETERS`), where ESC-50 is (read by the build's
    one run of the pipeline, never by a page) and extra parameters for the pages."""

    profile: str = DEFAULT_PROFILE
    artifacts: str = "artifacts"
    esc50: str | None = None
    grid: str = ""  # set by `build` to the grid it ran; every page reads that folder
    seed: int = 0
    split_seed: int = 0
    target_classes: str = ""
    swap_split: bool = False
    width: float | None = None
    overrides: str = ""
    seeds: str = ""
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_sets(
        cls,
        profile: str,
        artifacts: str,
        esc50: str | None,
        sets: dict[str, str],
        seeds: str = "",
        extra: dict | None = None,
    ) -> BookParams:
        """The parameters of `--set` values: those with a parameter of their own (seed, split_seed, ...) go there,
        so that no page reads a default where the run used another value; the rest go to `overrides`."""
        own = {k: sets[k] for k in ("seed", "split_seed", "target_classes", "swap_split", "width") if k in sets}
        rest = {k: v for k, v in sets.items() if k not in own}
        cfg = config_from_params(profile, **own, overrides="; ".join(f"{k}={v}" for k, v in rest.items()))
        return cls(
            profile=profile,
            artifacts=artifacts,
            esc50=esc50,
            seed=cfg.seed,
            split_seed=cfg.split_seed,
            target_classes=",".join(cfg.target_classes or ()),
            swap_split=cfg.swap_split,
            width=float(sets["width"]) if "width" in sets else None,
            overrides="; ".join(f"{k}={v}" for k, v in rest.items()),
            seeds=seeds,
            extra=extra or {},
        )

    def config(self):
        return config_from_params(
            self.profile, self.seed, self.split_seed, self.target_classes, self.swap_split, self.width, self.overrides
        )

    def as_parameters(self, relative_to: Path | None = None) -> dict:
        """The notebooks' parameters; folders absolute, or relative to `relative_to` (the notebooks' working
        directory: a published page then holds no path of this machine)."""
        d = {k: getattr(self, k) for k in PAGE_PARAMETERS}

        def where(path) -> str:
            path = Path(path).resolve()
            return str(path) if relative_to is None else os.path.relpath(path, relative_to)

        d["artifacts"] = where(self.artifacts)
        if d["grid"]:
            d["grid"] = where(d["grid"])
        return d | self.extra


def declared_parameters(source: Path) -> set[str]:
    """Names assigned in a notebook's `parameters` cell, read by papermill's own parser (papermill would only
    warn about any other name)."""
    import jupytext
    from papermill.translators import PythonTranslator

    for cell in jupytext.read(source).cells:
        if "parameters" in cell.metadata.get("tags", []):
            return {p.name for p in PythonTranslator.inspect(cell)}
    return set()


def jobs(params: BookParams, notebooks: Path = NOTEBOOKS_DIR, out: Path = BOOK_DIR / GENERATED) -> list[NotebookJob]:
    """One job per section notebook and per combination, each given only the parameters it declares."""
    base = params.as_parameters(relative_to=ROOT)  # the kernels run in ROOT
    declared: dict[Path, set[str]] = {}  # combination.py serves 6 jobs: parse it once

    def job(source: Path, output: Path, extra: dict | None = None, title: str | None = None) -> NotebookJob:
        if source not in declared:
            declared[source] = declared_parameters(source)
        names = declared[source]
        return NotebookJob(source, output, {k: v for k, v in (base | (extra or {})).items() if k in names}, title)

    found = [n for n in SECTIONS if (notebooks / f"{n}.py").is_file()]
    out_jobs = [job(notebooks / f"{n}.py", out / f"{n}.ipynb") for n in found]
    cfg = params.config()
    for p in cfg.pretrainings:
        for t in cfg.trainings:
            out_jobs.append(
                job(
                    notebooks / f"{COMBINATION}.py",
                    out / "combinations" / f"{p}_{t}.ipynb",
                    {"pretraining": p, "training": t},
                    f"Pretraining {p}, training data {t}",
                )
            )
    return out_jobs


def library_fingerprint() -> str:
    """Hash of the library's source and package data (the paper's tables, the caption bank): a change
    re-executes the notebooks that show its output."""
    h = hashlib.sha256()
    pkg = ROOT / "clap_lib"
    for p in sorted([*pkg.rglob("*.py"), *pkg.rglob("*.csv"), *pkg.rglob("*.json")]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def job_key(job: NotebookJob, grid_key: str, lib: str) -> str:
    # a parameter naming a file (the paper's tables) is keyed by the file's content, not just its path
    files = {
        k: hashlib.sha256((ROOT / v).read_bytes()).hexdigest()
        for k, v in job.parameters.items()
        if k in FILE_PARAMETERS and v and (ROOT / v).is_file()  # relative to the kernels' folder
    }
    blob = json.dumps(
        {
            "source": job.source.read_text(),
            "parameters": job.parameters,
            "title": job.title,
            "grid": grid_key,
            "lib": lib,
            "files": files,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cached_key(path: Path) -> str | None:
    try:
        return json.loads(path.read_text())["metadata"].get("clap_book", {}).get("key")
    except (OSError, ValueError, KeyError):
        return None  # missing or half-written: execute again


def execute(job: NotebookJob, key: str, log=print) -> bool:
    """Execute one notebook unless an output with the same key exists; returns True if it ran."""
    import jupytext
    import nbformat
    import papermill as pm

    if job.output.is_file() and _cached_key(job.output) == key:
        log(f"[book] {job.output.name}: up to date")
        return False
    t0 = time.time()
    nb = jupytext.read(job.source)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    job.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.output.with_name(f".{job.output.stem}.tmp-{os.getpid()}.ipynb")
    try:
        done = interruptible(
            lambda: pm.execute_notebook(
                nb,
                str(tmp),
                parameters=job.parameters,
                kernel_name="python3",
                cwd=str(ROOT),
                progress_bar=False,
                log_output=False,
            )
        )
    except pm.PapermillExecutionError as e:
        raise RuntimeError(
            f"notebook {job.source.name} failed ({e.ename}: {e.evalue}); the partly executed notebook is {tmp}"
        ) from None
    if job.title:
        _set_title(done, job.title)
    for cell in done.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:  # this run's values: in the notebook's metadata, not on the page
            tags.append("remove-cell")
        elif "parameters" in tags and "hide-input" not in tags:  # the defaults, folded away
            tags.append("hide-input")
        for out in cell.get("outputs", []):  # a warning names its file: the project's path, not this machine's
            if "text" in out:
                out["text"] = unmachined(out["text"])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    out["data"][mime] = unmachined(value)
    # papermill records where it read and wrote (a temporary name with the process id): keep the project's names
    done.metadata.get("papermill", {}).update(
        input_path=os.path.relpath(job.source, ROOT), output_path=str(job.output.name)
    )
    done.metadata["clap_book"] = {"key": key, "source": os.path.relpath(job.source, ROOT), "parameters": job.parameters}
    nbformat.write(done, str(tmp))
    os.replace(tmp, job.output)
    log(f"[book] {job.output.name}: executed in {time.time() - t0:.1f} s")
    return True


def _set_title(nb, title: str) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            lines = cell.source.lstrip().splitlines()
            cell.source = "\n".join([f"# {title}", *lines[1:]])
            return


def combination_toc(toc: Path, combos: list[tuple[str, str]], out: Path) -> Path:
    """`_toc.yml` with its "Each combination" part listing exactly the run's combinations."""
    import yaml

    data = yaml.safe_load(toc.read_text())
    for part in data["parts"]:
        if part.get("caption") == "Each combination":
            part["chapters"] = [{"file": f"{GENERATED}/combinations/{p}_{t}"} for p, t in combos]
    out.write_text(
        "# generated by clap_lib.report.book from _toc.yml: the run's combinations\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return out


def build(
    params: BookParams = BookParams(), force: bool = False, html: bool = True, book: Path = BOOK_DIR, log=print
) -> Path | None:
    """Train what the book shows (the grid and any seed repeats) before any notebook runs, execute every notebook
    into `<book>/generated/` (cached) and build the HTML; returns its folder."""
    from clap_lib.pipeline.grid import notebook_grid, run_seeds

    cfg = params.config()
    log(f"[book] {data_folders(params.esc50, os.environ.get('CLAP_DATA'))}")
    # the build's one run of the pipeline (cached stages are reused; the ESC-50 audio is hashed once): the pages
    # read this grid's folder and never run the pipeline
    grid = notebook_grid(
        params.artifacts,
        params.esc50,
        profile=params.profile,
        seed=params.seed,
        split_seed=params.split_seed,
        target_classes=params.target_classes,
        swap_split=params.swap_split,
        width=params.width,
        overrides=params.overrides,
    )
    params = replace(params, grid=str(grid.dir.resolve()))
    seeds = parse_seeds(params.seeds)
    if seeds:  # seeds are trained here, never inside a notebook
        run_seeds(cfg, seeds, params.esc50, params.artifacts, quiet=True)
    lib = library_fingerprint()
    all_jobs = jobs(params, out=Path(book) / GENERATED)
    for i, job in enumerate(all_jobs, 1):
        log(f"[book] notebook {i}/{len(all_jobs)}: {job.output.name}")
        key = job_key(job, grid.dir.name, lib)
        if force and job.output.exists():
            job.output.unlink()
        execute(job, key, log)
    if not html:
        return None
    toc = combination_toc(
        ROOT / "_toc.yml", [(a, b) for a in cfg.pretrainings for b in cfg.trainings], Path(book) / "_toc.generated.yml"
    )
    return build_html(Path(book), toc=toc, log=log, force=force)


def main(argv: list[str] | None = None) -> int:

    ap = argparse.ArgumentParser(
        prog="python -m clap_lib book", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train what is missing, execute the notebooks (cached) and build the HTML book")
    b.add_argument("--profile", default=DEFAULT_PROFILE)
    b.add_argument("--artifacts", default="artifacts")
    b.add_argument("--esc50", default=None)
    b.add_argument(
        "--data-root",
        default=None,
        help="shared data folder (captions/, gpvad/, audioset/); default $CLAP_DATA, then ../shared/data",
    )
    b.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the run shown, as in `python -m clap_lib run --set`",
    )
    b.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="also show the grid repeated over these seeds (trained before the notebooks run)",
    )
    b.add_argument("--force", action="store_true", help="re-execute every notebook and rebuild the HTML")
    b.add_argument("--no-html", action="store_true", help="execute the notebooks only")
    sc = sub.add_parser(
        "scan", help="list every absolute path of this machine in a built book (or any folder); exit 1 if there is one"
    )
    sc.add_argument("folders", nargs="*", default=[str(BOOK_DIR / "_build"), str(BOOK_DIR / GENERATED)])
    args = ap.parse_args(argv)
    if args.cmd == "scan":
        found = [(Path(d) / f, p) for d in args.folders for f, p in machine_paths(d)]
        for f, p in found:
            print(f"{f}: {p}")
        print(f"{len(found)} absolute path(s) of this machine in {', '.join(args.folders)}", file=sys.stderr)
        return 1 if found else 0
    try:
        if args.seeds is not None and not args.seeds.strip():
            raise ValueError("--seeds is empty; give comma-separated integers, e.g. 0,1,2, or leave it out")
        args.seeds = args.seeds or ""
        parse_seeds(args.seeds)  # a bad --seeds stops here, before any training
        if args.data_root:  # the notebooks' kernels inherit it
            os.environ["CLAP_DATA"] = str(Path(args.data_root).resolve())
        params = BookParams.from_sets(args.profile, args.artifacts, args.esc50, parse_sets(args.set), args.seeds)
        out = build(params, force=args.force, html=not args.no_html)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a read-only folder, a full disk
        print(
            f"error: cannot write{' ' + str(e.filename) if e.filename else ''}: {e.strerror or e} (artifacts "
            f"folder {args.artifacts}, book folder {BOOK_DIR})",
            file=sys.stderr,
        )
        return 1
    if out is not None:
        print(f"book: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
