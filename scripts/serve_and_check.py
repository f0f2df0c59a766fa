#!/usr/bin/env python
"""Check that a built HTML book works offline and reads well: nothing remote, links/refs/citations resolved,
no raw column names in tables, widgets, math and interactive plots rendered in Chromium, no JS errors.

    python scripts/serve_and_check.py BOOK/_build/html [--screenshots OUTDIR] [--pages GLOB ...]

The checks live in :mod:`tools.bookcheck` (``scan`` = static page checks, ``driver`` = Selenium +
chromedriver). Prints one row per page and the problems; exits 1 on any failure, 2 when Chromium or
chromedriver cannot be found/started. Screenshots go to ``--screenshots``, else ``$BOOK_SCREENSHOTS``, else a
new temporary folder (printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tools/ is developer tooling of the source checkout, not part of the installed package

from tools import bookcheck  # noqa: E402
from tools.bookcheck import (  # noqa: E402
    DEFAULT_RAW_IDENTIFIERS,
    STATIC_CHECKS,
    BrowserConfig,
    BrowserError,
    CheckConfig,
    bib_keys_of,
    find_chromium,
)

DEFAULT_BIB = ROOT / "book" / "references.bib"


__all__ = ["BrowserError", "check_site", "find_chromium", "main"]


def check_site(root, screenshots=None, pages=None, chromium=None, timeout: float = 30.0):
    """The pre-Selenium API of this script (remote references + the browser), for callers not yet moved to
    :func:`tools.bookcheck.check_site`, which also checks links, numrefs, tables and citations."""
    return bookcheck.check_site(
        root,
        screenshots,
        CheckConfig(checks=("remote",), pages=tuple(pages or ())),
        BrowserConfig(chromium=chromium, timeout=timeout),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", help="built HTML folder, e.g. book/_build/html")
    ap.add_argument(
        "--screenshots",
        metavar="OUTDIR",
        help="full-page PNG of each page (default: $BOOK_SCREENSHOTS, else a temporary folder)",
    )
    ap.add_argument(
        "--pages",
        nargs="*",
        metavar="GLOB",
        default=[],
        help="only these pages (globs relative to html_dir; default: all)",
    )
    ap.add_argument(
        "--forbid",
        nargs="*",
        metavar="NAME",
        default=list(DEFAULT_RAW_IDENTIFIERS),
        help="identifiers no rendered table cell may hold (default: %(default)s)",
    )
    ap.add_argument(
        "--bib",
        nargs="*",
        metavar="FILE",
        default=None,
        help=f"BibTeX files whose keys must all resolve (default: {DEFAULT_BIB} if it exists; "
        "give no FILE to skip the citation check)",
    )
    ap.add_argument(
        "--checks",
        nargs="*",
        metavar="NAME",
        default=list(STATIC_CHECKS),
        choices=STATIC_CHECKS,
        help="static checks to run (default: all of %(choices)s)",
    )
    ap.add_argument("--static-only", action="store_true", help="no browser: static checks only")
    ap.add_argument("--chromium", help="browser executable (default: $CHROMIUM or chromium on PATH)")
    ap.add_argument("--chromedriver", help="driver (default: $CHROMEDRIVER or /usr/bin/chromedriver)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per page (default 30)")
    ap.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    args = ap.parse_args(argv)

    bibs = args.bib if args.bib is not None else ([DEFAULT_BIB] if DEFAULT_BIB.is_file() else [])
    config = CheckConfig(
        checks=tuple(args.checks),
        raw_identifiers=tuple(args.forbid),
        bib_keys=bib_keys_of(bibs) if bibs else None,
        pages=tuple(args.pages),
        browser=not args.static_only,
    )
    shots = args.screenshots or os.environ.get("BOOK_SCREENSHOTS") or tempfile.mkdtemp(prefix="book-shots-")
    t0 = time.monotonic()
    try:
        browser = BrowserConfig(chromium=args.chromium, chromedriver=args.chromedriver, timeout=args.timeout)
        report = bookcheck.check_site(args.html_dir, None if args.static_only else shots, config, browser)
    except BrowserError as exc:
        print(f"serve_and_check: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.json:
        Path(args.json).write_text(report.to_json())
    n_bad = sum(not p.ok for p in report.pages)
    where = "" if args.static_only else f"; screenshots in {shots}"
    print(
        f"\n{len(report.pages)} pages, {n_bad} failing, {len(report.static_problems)} files with static "
        f"problems; {report.browser or 'no browser'}; {time.monotonic() - t0:.1f}s{where} -> "
        f"{'OK' if report.ok else 'FAIL'}"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
