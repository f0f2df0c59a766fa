"""Static checks of a built HTML book (no browser): each returns ``{file: [problem, ...]}``, empty = clean.

* :func:`remote_references` -- anything the browser would fetch by itself from another host (``<script src>``,
  ``<link href>``, ``<img src/srcset>``, ``<iframe>``, media, inline/``<style>`` CSS ``url()``/``@import``, and
  every ``*.css`` of the build). Plain ``<a href>`` hyperlinks are allowed.
* :func:`unresolved_numrefs` -- a ``{numref}`` that Sphinx could not resolve stays as ``Fig. %s`` /
  ``Table %s`` text or as a ``<span class="xref ...">`` outside any link.
* :func:`raw_identifiers_in_tables` -- a ``<table>`` cell or header holding a code identifier (``sil_x_a``).
* :func:`broken_internal_links` -- a local ``href``/``src`` whose file, or ``#anchor`` id, does not exist.
* :func:`unresolved_citations` -- ``[key]`` text left for a bibliography key, citation links to nowhere.
* :func:`plotly_figures` / :func:`plotly_hover_problems` -- figures emitted by :func:`clap_lib.report.interactive.show`
  and whether each point carries hover text.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup, Tag

from clap_lib.report.interactive import PLOTLY_DATA_TYPE

SKIP_DIRS = ("_static", "_sources", "_images", "_downloads")
REMOTE_RE = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//", re.ASCII)
CSS_URL_RE = re.compile(r"""url\(\s*['"]?\s*([^'")\s]+)|@import\s+['"]([^'"]+)['"]""", re.I)
CSS_COMMENT_RE = re.compile(r"/\*.*?\*/", re.S)
REFRESH_RE = re.compile(r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']\s*\d+\s*;\s*url=([^"'>]+)["']""", re.I)
# Sphinx's numfig_format placeholders, left in the text when a number could not be assigned.
NUMREF_PLACEHOLDER_RE = re.compile(r"\b(?:Fig\.|Figure|Table|Listing|Section|Eq\.)\s*%s")
# Schemes that never name a file of the build.
NON_FILE_SCHEMES = ("mailto:", "javascript:", "data:", "tel:", "blob:")

# (tag, attributes) that make the browser fetch something on its own.
FETCHING: dict[str, tuple[str, ...]] = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
}


def is_remote(url: str | None) -> bool:
    return bool(url) and bool(REMOTE_RE.match(url))


def css_remote_urls(css: str) -> list[str]:
    css = CSS_COMMENT_RE.sub("", css)
    urls = (m.group(1) or m.group(2) for m in CSS_URL_RE.finditer(css))
    return [u for u in urls if is_remote(u)]


def html_pages(root: Path, patterns: Iterable[str] | None = None) -> list[Path]:
    """Content pages of the build (not the theme's/Sphinx's asset folders), sorted; optionally glob-filtered."""
    root = Path(root)
    patterns = list(patterns or [])
    out = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root)
        if rel.parts[0] in SKIP_DIRS:
            continue
        if patterns and not any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in patterns):
            continue
        out.append(p)
    return out


def redirect_target(page: Path) -> str | None:
    """The target of a meta-refresh page (jupyter-book writes index.html as one), else None."""
    m = REFRESH_RE.search(Path(page).read_text(encoding="utf-8", errors="replace")[:4000])
    return m.group(1).strip() if m else None


@lru_cache(maxsize=64)  # a memo keyed by file version (anchor lookups re-read targets)
def _soup_cached(path: str, mtime_ns: int) -> BeautifulSoup:
    return BeautifulSoup(Path(path).read_text(encoding="utf-8", errors="replace"), "html.parser")


def soup(page: Path) -> BeautifulSoup:
    """Parsed page (cached per file version: the checks below parse every page several times)."""
    page = Path(page)
    return _soup_cached(str(page.resolve()), page.stat().st_mtime_ns)


def _main(doc: BeautifulSoup) -> Tag:
    """The page's content (the theme's ``<main>``/``article``), so navigation chrome is not judged."""
    return doc.find("article") or doc.find("main") or doc.body or doc


def _by_page(root: Path, pages: Iterable[Path] | None, check) -> dict[str, list[str]]:
    root = Path(root)
    out: dict[str, list[str]] = {}
    for page in html_pages(root) if pages is None else pages:
        found = check(page)
        if found:
            out[Path(page).relative_to(root).as_posix()] = found
    return out


# ------------------------------------------------------------------------------------------------ remote


def page_remote_references(page: Path) -> list[str]:
    found = []
    for el in soup(page).find_all(True):
        tag = el.name.lower()
        for name, value in el.attrs.items():
            name = name.lower()
            if isinstance(value, list):  # bs4 splits multi-valued attributes (class, rel)
                value = " ".join(value)
            if name in FETCHING.get(tag, ()):
                urls = [u.strip().split(" ")[0] for u in value.split(",")] if "srcset" in name else [value]
                found += [f"<{tag} {name}={u}>" for u in urls if is_remote(u)]
            elif name == "style":
                found += [f"<{tag} style=url({u})>" for u in css_remote_urls(value)]
        if tag == "style":
            found += [f"<style> url({u})" for u in css_remote_urls(el.get_text())]
    return found


def remote_references(root: Path) -> dict[str, list[str]]:
    """Pages and stylesheets of the build that would fetch from another host."""
    root = Path(root)
    problems = _by_page(root, None, page_remote_references)
    for css in sorted(root.rglob("*.css")):
        found = css_remote_urls(css.read_text(encoding="utf-8", errors="replace"))
        if found:
            problems[css.relative_to(root).as_posix()] = [f"url({u})" for u in found]
    return problems


# ------------------------------------------------------------------------------------------------ numref


def page_unresolved_numrefs(page: Path) -> list[str]:
    main = _main(soup(page))
    found = [f"placeholder text {m.group(0)!r}" for m in NUMREF_PLACEHOLDER_RE.finditer(main.get_text(" "))]
    for span in main.select("span.xref"):
        if span.find_parent("a") is None:  # a resolved reference is wrapped in <a class="reference">
            found.append(f"unresolved reference {span.get_text(strip=True)!r} ({' '.join(span['class'])})")
    return found


def unresolved_numrefs(root: Path, pages: Iterable[Path] | None = None) -> dict[str, list[str]]:
    return _by_page(root, pages, page_unresolved_numrefs)


# ------------------------------------------------------------------------------------------------ tables


def _identifier_re(identifiers: Iterable[str]) -> re.Pattern | None:
    names = sorted({i for i in identifiers if i}, key=len, reverse=True)
    if not names:
        return None
    # Word boundaries that treat "_" as part of a word: `sil_x_a` must not match inside `sil_x_a2`.
    return re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")


def page_raw_identifiers(page: Path, identifiers: Iterable[str]) -> list[str]:
    pattern = _identifier_re(identifiers)
    if pattern is None:
        return []
    found = []
    for i, table in enumerate(_main(soup(page)).find_all("table")):
        for cell in table.find_all(["th", "td"]):
            for m in pattern.finditer(cell.get_text(" ", strip=True)):
                found.append(f"table {i + 1}: <{cell.name}> holds {m.group(0)!r}")
    return found


def raw_identifiers_in_tables(
    root: Path, identifiers: Iterable[str], pages: Iterable[Path] | None = None
) -> dict[str, list[str]]:
    """Table cells/headers of rendered pages that show one of ``identifiers`` (raw column names)."""
    identifiers = tuple(identifiers)
    return _by_page(root, pages, lambda p: page_raw_identifiers(p, identifiers))


# ------------------------------------------------------------------------------------------------ links


def _ids(page: Path) -> frozenset[str]:
    doc = soup(page)
    return frozenset(
        [*(el["id"] for el in doc.find_all(id=True)), *(el["name"] for el in doc.find_all("a", attrs={"name": True}))]
    )


def page_broken_links(page: Path, root: Path) -> list[str]:
    page, root = Path(page), Path(root).resolve()
    found = []
    for el in soup(page).find_all(True):
        for attr in ("href", "src"):
            url = el.get(attr)
            if not isinstance(url, str) or not url.strip() or is_remote(url):
                continue
            url = url.strip()
            if url.lower().startswith(NON_FILE_SCHEMES) or urlsplit(url).scheme:
                continue
            parts = urlsplit(url)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"<{el.name} {attr}={url}>"
            if root not in target.parents and target != root:
                found.append(f"{where}: points outside the build")
            elif not target.is_file():
                found.append(f"{where}: no file {target.relative_to(root).as_posix()}")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target):
                found.append(f"{where}: no element id {parts.fragment!r} in {target.relative_to(root).as_posix()}")
    return found


def broken_internal_links(root: Path, pages: Iterable[Path] | None = None) -> dict[str, list[str]]:
    """Local ``href``/``src`` of every page that do not resolve to a file of the build (and anchor in it)."""
    root = Path(root)
    return _by_page(root, pages, lambda p: page_broken_links(p, root))


# ------------------------------------------------------------------------------------------------ citations


def bib_keys(bib_text: str) -> list[str]:
    """Entry keys of a BibTeX file, in order (``@article{key, ...`` -> key; @comment/@string/@preamble skipped)."""
    keys = re.findall(r"@\s*(\w+)\s*[{(]\s*([^,\s]+)\s*,", bib_text)
    return [k for kind, k in keys if kind.lower() not in ("comment", "string", "preamble")]


def page_unresolved_citations(page: Path, keys: Iterable[str]) -> list[str]:
    main = _main(soup(page))
    text = main.get_text(" ")
    return [f"unresolved citation [{k}]" for k in keys if re.search(r"\[\s*" + re.escape(k) + r"\s*\]", text)]


def unresolved_citations(root: Path, keys: Iterable[str], pages: Iterable[Path] | None = None) -> dict[str, list[str]]:
    keys = tuple(keys)
    return _by_page(root, pages, lambda p: page_unresolved_citations(p, keys))


@dataclass(frozen=True)
class Bibliography:
    page: str  # relative path of the page holding the citation list
    entries: int  # number of rendered entries
    cited_from: dict[str, int]  # page -> number of citation links into the list


def find_bibliography(root: Path) -> Bibliography | None:
    """The page rendering the ``{bibliography}`` list (sphinxcontrib-bibtex: ``div.citation-list`` of
    ``div.citation``), with the number of citations (``span.bibtex-citation`` links) pointing at it per page."""
    root = Path(root)
    pages = html_pages(root)
    for page in pages:
        lists = soup(page).select("div.citation-list")
        if not lists:
            continue
        cited = {}
        for other in pages:
            hits = 0
            for a in soup(other).select("span.bibtex-citation a[href]"):
                path = urlsplit(a["href"]).path
                if (other.parent / unquote(path)).resolve() == page.resolve() if path else other == page:
                    hits += 1
            if hits:
                cited[other.relative_to(root).as_posix()] = hits
        return Bibliography(
            page=page.relative_to(root).as_posix(),
            entries=sum(len(div.select("div.citation")) for div in lists),
            cited_from=cited,
        )
    return None


# ------------------------------------------------------------------------------------------------ plotly


def plotly_figures(page: Path) -> list[dict]:
    """The figure JSON (``{"data": [...], "layout": {...}}``) of every interactive figure on the page."""
    out = []
    for script in soup(page).find_all("script", attrs={"type": PLOTLY_DATA_TYPE}):
        out.append(json.loads(script.string or "{}"))
    return out


def figure_hover_problems(fig: dict) -> list[str]:
    """Scatter traces whose points do not each get a hover label.

    A point's label comes from per-point ``hovertext``/``text``/``customdata`` lists, or from a ``hovertemplate``
    naming the point's own fields (``%{x}``, ``%{y}``); a template naming ``%{customdata...}`` needs a
    ``customdata`` entry for every point.
    """
    problems = []
    traces = fig.get("data") or []
    if not traces:
        return ["figure has no traces"]
    for i, tr in enumerate(traces):
        if tr.get("type", "scatter") not in ("scatter", "scattergl") or tr.get("hoverinfo") == "skip":
            continue
        n = len(tr.get("x") or [])
        if n == 0:
            continue
        name = tr.get("name", i)
        template = str(tr.get("hovertemplate", ""))

        def per_point(key: str) -> bool:
            v = tr.get(key)
            return isinstance(v, list) and len(v) == n and all(x not in (None, "", []) for x in v)

        if "%{customdata" in template and not per_point("customdata"):
            problems.append(f"trace {name!r}: hovertemplate shows customdata, which {n} points lack")
        elif not (
            any(per_point(k) for k in ("hovertext", "text", "customdata")) or "%{x" in template or "%{y" in template
        ):
            problems.append(f"trace {name!r}: {n} points without per-point hover text")
    return problems


def plotly_hover_problems(root: Path, pages: Iterable[Path] | None = None) -> dict[str, list[str]]:
    def check(page: Path) -> list[str]:
        return [
            f"figure {i + 1}: {p}" for i, fig in enumerate(plotly_figures(page)) for p in figure_hover_problems(fig)
        ]

    return _by_page(root, pages, check)
