"""The book's HTML: `jupyter-book build -W` into a temporary folder, swapped in as `<book>/_build` only on
success (an interrupted or failed build keeps the previous book whole), and skipped when the book's sources are
those the present HTML was built from (a cached rerun of the main job); and no path of this machine in what is
published (`unmachined` for the executed notebooks, `machine_paths` to scan a built book: `book scan`)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the source checkout (notebooks/, book/)
BOOK_DIR = ROOT / "book"
STAMP = ".sources"  # in <book>/_build: the key of the sources its HTML was built from


def sources_key(book: Path, config: Path, toc: Path) -> str:
    """A hash of everything `jupyter-book build` reads: every file under `book` (the executed notebooks, pages,
    extensions, vendored scripts) except its `_build`, the config and the table of contents."""
    h = hashlib.sha256()
    files = sorted(f for f in Path(book).rglob("*") if f.is_file() and f.relative_to(book).parts[0] != "_build")
    for f in [*files, Path(config), Path(toc)]:
        h.update(str(f.relative_to(book) if f.is_relative_to(book) else f.name).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]


def build_html(
    book: Path = BOOK_DIR,
    config: Path = ROOT / "_config.yml",
    toc: Path = ROOT / "_toc.yml",
    log=print,
    command: list[str] | None = None,
    force: bool = False,
) -> Path:
    """`jupyter-book build` (`command`, default :func:`jupyter_book_cmd`) with warnings as errors; returns the HTML
    folder. The HTML is built into a fresh temporary folder beside the book and swapped in as `<book>/_build` only
    when the build succeeded: an interrupted or failed build leaves the previous book whole (never pages of two
    runs), and no page of an earlier configuration lingers. Unless `force`, a book whose sources are unchanged
    since its HTML was built (:func:`sources_key`) is kept as it is."""
    book = Path(book)
    key = sources_key(book, config, toc)
    built = book / "_build"
    stamp = built / STAMP
    if not force and (built / "html" / "index.html").is_file() and stamp.is_file() and stamp.read_text() == key:
        log(f"[book] HTML kept: its sources are unchanged since it was built ({built / 'html'})")
        return built / "html"
    for old in book.parent.glob(f".{book.name}-build-*"):  # left by a killed build
        if not _pid_alive(old.name.rsplit("-", 1)[-1]):
            shutil.rmtree(old, ignore_errors=True)
    tmp = book.parent / f".{book.name}-build-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    # --path-output: with the config outside the source folder, jupyter-book would write into ./_build
    cmd = [
        *(command or jupyter_book_cmd()),
        "build",
        str(book),
        "--config",
        str(config),
        "--toc",
        str(toc),
        "--path-output",
        str(tmp),
        "-W",
        "--keep-going",
    ]
    log("[book] " + " ".join(cmd))
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(
                f"jupyter-book build failed (exit {r.returncode}); the previous book is kept:\n"
                f"{r.stdout[-6000:]}\n{r.stderr[-6000:]}"
            )
        (tmp / "_build" / STAMP).write_text(key)
        done, old = built, book.parent / f".{book.name}-build-{os.getpid()}-old"
        if done.exists():
            os.rename(done, old)
        os.rename(tmp / "_build", done)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"[book] HTML built in {time.time() - t0:.1f} s: {book / '_build' / 'html' / 'index.html'}")
    return book / "_build" / "html"


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


# --- no path of this machine in what is published ------------------------------------------------------------

TEXT_SUFFIXES = (".html", ".ipynb", ".json", ".txt", ".md", ".py", ".js", ".csv", ".log", ".svg", ".xml")


def unmachined(text: str) -> str:
    """`text` with the checkout's and the Python installation's absolute paths written relative / as <python>."""
    for prefix, short in (
        (str(ROOT) + os.sep, ""),
        (sys.prefix + os.sep, "<python>/"),
        (sys.base_prefix + os.sep, "<python>/"),
    ):
        text = text.replace(prefix, short)
    return text


def machine_prefixes() -> tuple[str, ...]:
    """Top-level folders of this machine's working paths (the checkout, the temporary folder, the home folder, the
    Python installation): an absolute path under one of them in published output is a leak."""
    places = [ROOT, Path(tempfile.gettempdir()), Path.home(), Path(sys.prefix), Path(sys.base_prefix)]
    return tuple(sorted({"/" + p.resolve().parts[1] for p in places if len(p.resolve().parts) > 1}))


def machine_paths(folder: str | Path, prefixes: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(file relative to `folder`, the path found) for every absolute path of this machine in the text files under
    `folder` (a built book, an artifacts folder). Relative paths and URLs are not flagged."""
    prefixes = prefixes or machine_prefixes()
    pattern = re.compile(r"(?<![\w.~/:-])(?:" + "|".join(re.escape(p) for p in prefixes) + r")/[^\s\"'<>\\),;]*")
    folder, found = Path(folder), []
    for f in sorted(folder.rglob("*")):
        if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES:
            for m in pattern.finditer(f.read_text(errors="ignore")):
                found.append((str(f.relative_to(folder)), m.group(0)))
    return found
