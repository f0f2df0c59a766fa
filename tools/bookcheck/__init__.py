"""Checks of the built HTML book: static page scans (:mod:`.scan`) and a headless-Chromium driver (:mod:`.driver`).

    from tools.bookcheck import CheckConfig, check_site
    report = check_site("book/_build/html", screenshots="/tmp/shots")
    print(report.table()); assert report.ok

CLI: ``python scripts/serve_and_check.py book/_build/html --screenshots DIR``.
"""

from tools.bookcheck.driver import BrowserConfig, BrowserError, PageReport, find_chromedriver, find_chromium
from tools.bookcheck.scan import html_pages, is_remote
from tools.bookcheck.site import (
    DEFAULT_RAW_IDENTIFIERS,
    STATIC_CHECKS,
    CheckConfig,
    SiteReport,
    bib_keys_of,
    check_site,
    static_checks,
)

__all__ = [
    "BrowserConfig",
    "BrowserError",
    "CheckConfig",
    "DEFAULT_RAW_IDENTIFIERS",
    "PageReport",
    "STATIC_CHECKS",
    "SiteReport",
    "bib_keys_of",
    "check_site",
    "find_chromedriver",
    "find_chromium",
    "html_pages",
    "is_remote",
    "static_checks",
]
