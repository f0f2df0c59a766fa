"""The book's HTML: `jupyter-book build -W` into a temporary folder, swapped in as `<book>/_build` only on
success (an interrupted or failed build keeps the previous book whole); and no path of this machine in what is
published (`unmachined` for the executed notebooks, `machine_paths` to scan a built book: `book scan`)."""

from __future__ import annotations

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


def jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jupyter_book.cli.main"]


def build_html(
    book: Path = BOOK_DIR,
    config: Path = ROOT / "_config.yml",
    toc: Path = ROOT / "_toc.yml",
    log=print,
    command: list[str] | None = None,
) -> Path:
    """`jupyter-book build` (`command`, default :func:`jupyter_book_cmd`) with warnings as errors; returns the HTML
    folder. The HTML is built into a fresh temporary folder beside the book and swapped in as `<book>/_build` only
    when the build succeeded: an interrupted or failed build leaves the previous book whole (never pages of two
    runs), and no page of an earlier configuration lingers."""
    book = Path(book)
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
        done, old = book / "_build", book.parent / f".{book.name}-build-{os.getpid()}-old"
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
