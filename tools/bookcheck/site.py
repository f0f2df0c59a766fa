"""The whole check of a built book: the static scans of :mod:`.scan`, then each page in the browser (:mod:`.driver`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tools.bookcheck.scan as scan  # the submodule itself, not the package (no cycle via __init__)
from clap_lib.config.levels import TABLE_METRICS, TRAININGS
from tools.bookcheck.driver import BrowserConfig, LocalServer, PageReport, browser_version, check_page, open_browser

# Column names of the results tables that a rendered table must show by their labels instead (only the
# snake_case ones: "accuracy" is also plain English).
DEFAULT_RAW_IDENTIFIERS: tuple[str, ...] = (
    *(m for m in TABLE_METRICS if "_" in m),
    "random_guess",
    "sil_diff",
    *(f"n_pairs_{t}" for t in TRAININGS),
)


STATIC_CHECKS: tuple[str, ...] = ("remote", "numref", "raw-identifier", "link", "plotly-hover", "citation")


@dataclass(frozen=True)
class CheckConfig:
    checks: tuple[str, ...] = STATIC_CHECKS  # which static checks run ("citation" only with bib_keys)
    raw_identifiers: tuple[str, ...] = DEFAULT_RAW_IDENTIFIERS  # forbidden in any rendered table cell
    bib_keys: tuple[str, ...] | None = None  # when given: a bibliography page must exist, no [key] left
    pages: tuple[str, ...] = ()  # globs relative to the HTML folder; () = all pages
    browser: bool = True  # False: static checks only

    def __post_init__(self) -> None:
        unknown = sorted(set(self.checks) - set(STATIC_CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; allowed: {', '.join(STATIC_CHECKS)}")


@dataclass
class SiteReport:
    root: str
    static: dict[str, dict[str, list[str]]]  # check name -> file -> problems
    pages: list[PageReport] = field(default_factory=list)
    browser: str = ""
    bibliography: scan.Bibliography | None = None

    @property
    def static_problems(self) -> dict[str, list[str]]:
        """file -> problems, all static checks together."""
        out: dict[str, list[str]] = {}
        for kind, files in self.static.items():
            for f, found in files.items():
                out.setdefault(f, []).extend(f"{kind}: {x}" for x in found)
        return out

    @property
    def ok(self) -> bool:
        return not self.static_problems and all(p.ok for p in self.pages)

    def table(self) -> str:
        head = ("page", "widgets", "math", "plots", "images", "errors", "external", "failed", "reqs", "s", "ok")
        rows = [head]
        for p in self.pages:
            s = p.state
            if "redirect" in s:
                rows.append((p.page, f"-> {s['redirect']}", *[""] * 7, f"{p.seconds:.1f}", _ok(p.ok)))
                continue
            rows.append(
                (
                    p.page,
                    f"{s.get('widgetsRendered', '?')}/{s.get('widgetViews', '?')}",
                    f"{s.get('mathTypeset', '?')}/{s.get('math', '?')}",
                    f"{s.get('plotlyDrawn', '?')}/{s.get('plotly', '?')}",
                    f"{s.get('images', 0) - len(s.get('imagesBroken') or [])}/{s.get('images', '?')}",
                    str(len(p.console_errors)),
                    str(len(p.external_requests)),
                    str(len(p.failed_requests)),
                    str(p.requests),
                    f"{p.seconds:.1f}",
                    _ok(p.ok),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        details = [f"STATIC {f}: {x}" for f, found in self.static_problems.items() for x in found]
        for p in self.pages:
            for kind, items in (
                ("problem", p.problems),
                ("console error", p.console_errors),
                ("external request", p.external_requests),
                ("failed request", p.failed_requests),
            ):
                details += [f"{p.page}: {kind}: {x}" for x in items]
        return "\n".join(lines + ([""] + details if details else []))

    def to_json(self) -> str:
        return json.dumps(
            {
                "root": self.root,
                "browser": self.browser,
                "ok": self.ok,
                "static": self.static,
                "bibliography": asdict(self.bibliography) if self.bibliography else None,
                "pages": [dict(vars(p), ok=p.ok) for p in self.pages],
            },
            indent=2,
        )


def _ok(ok: bool) -> str:
    return "OK" if ok else "FAIL"


def static_checks(root: Path, config: CheckConfig = CheckConfig()) -> tuple[dict, scan.Bibliography | None]:
    """Every static check on the pages of ``root`` (all pages for links/remote, the selected ones otherwise)."""
    root = Path(root)
    pages = scan.html_pages(root, config.pages)
    run = {
        "remote": lambda: scan.remote_references(root),
        "numref": lambda: scan.unresolved_numrefs(root, pages),
        "raw-identifier": lambda: scan.raw_identifiers_in_tables(root, config.raw_identifiers, pages),
        "link": lambda: scan.broken_internal_links(root, pages),
        "plotly-hover": lambda: scan.plotly_hover_problems(root, pages),
    }
    static = {name: check() for name, check in run.items() if name in config.checks}
    bib = None
    if config.bib_keys is not None and "citation" in config.checks:
        static["citation"] = scan.unresolved_citations(root, config.bib_keys, pages)
        bib = scan.find_bibliography(root)
        if bib is None or bib.entries == 0:
            static["citation"]["(book)"] = ["no page renders a bibliography (a {bibliography} directive)"]
    return {k: v for k, v in static.items() if v}, bib


def check_site(
    root: str | Path,
    screenshots: str | Path | None = None,
    config: CheckConfig = CheckConfig(),
    browser: BrowserConfig = BrowserConfig(),
) -> SiteReport:
    """Static checks + every page in headless Chromium. Raises :class:`~.driver.BrowserError` without a browser."""
    root = Path(root).resolve()
    if not any(root.glob("*.html")):
        raise FileNotFoundError(f"no HTML pages in {root}")
    static, bib = static_checks(root, config)
    report = SiteReport(root=str(root), static=static, bibliography=bib)
    if not config.browser:
        return report
    shots = Path(screenshots).resolve() if screenshots else None
    with LocalServer(root) as base_url, open_browser(browser) as driver:
        report.browser = browser_version(driver)
        for page in scan.html_pages(root, config.pages):
            report.pages.append(check_page(driver, base_url, page.relative_to(root).as_posix(), root, shots, browser))
    return report


def bib_keys_of(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """Every entry key of the given BibTeX files."""
    return tuple(k for p in paths for k in scan.bib_keys(Path(p).read_text(encoding="utf-8")))
