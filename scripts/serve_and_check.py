#!/usr/bin/env python
"""Check that a built HTML book works offline: nothing remote, widgets and math rendered, no JS errors.

    python scripts/serve_and_check.py BOOK/_build/html [--screenshots OUTDIR] [--pages GLOB ...]

1. Static scan: every ``*.html`` page (outside ``_static/``, ``_sources/``, ``_images/``) is parsed;
   any ``<script src>``, ``<link href>``, ``<img src/srcset>``, ``<iframe src>``, ``<source>``,
   ``<video>/<audio>/<embed>/<object>``, inline ``style="...url()"`` or ``<style>`` that points at
   ``http(s)://`` or ``//`` is a failure (plain ``<a href>`` hyperlinks are allowed). Every ``*.css``
   in the build is scanned for remote ``url()`` / ``@import``.
2. Browser check: the folder is served on 127.0.0.1 (``http.server`` in a thread) and each page is
   opened in headless Chromium, driven through the Chrome DevTools Protocol over
   ``--remote-debugging-pipe`` (standard library only). Per page it records console errors, uncaught
   exceptions, failed or >= 400 requests, and every request to a host other than 127.0.0.1
   (Chromium is also started with a host-resolver rule that makes every other host unresolvable).
   A page whose HTML holds ipywidgets views must show each of them rendered (a filled
   ``.widget-subarea`` before each view's script tag); a page with ``.math`` elements must have each
   typeset by MathJax (an ``mjx-container`` inside). A PNG screenshot of each page is saved when
   ``--screenshots`` is given.

Prints one table row per page and exits 1 on any failure, 2 when Chromium cannot be found/started.
Importable: ``check_site(...)`` returns a :class:`SiteReport`.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SKIP_DIRS = ("_static", "_sources", "_images", "_downloads")
REMOTE_RE = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//", re.ASCII)
CSS_URL_RE = re.compile(r"""url\(\s*['"]?\s*([^'")\s]+)|@import\s+['"]([^'"]+)['"]""", re.I)
CSS_COMMENT_RE = re.compile(r"/\*.*?\*/", re.S)
LOCAL_HOSTS = {"127.0.0.1"}
IGNORED_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "devtools"}
# Chromium asks every site for /favicon.ico by itself; a 404 there is not the page's doing.
IGNORED_FAILURES = ("/favicon.ico",)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    # Defence in depth: whatever a page asks for, only 127.0.0.1 resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--remote-debugging-pipe",
)


def is_remote(url: str | None) -> bool:
    return bool(url) and bool(REMOTE_RE.match(url))


# --------------------------------------------------------------------------------------------------
# 1. static scan
# --------------------------------------------------------------------------------------------------


class _RemoteRefParser(html.parser.HTMLParser):
    # (tag, attribute) pairs that make the browser fetch something on its own.
    FETCHING = {
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
        "image": ("href", "xlink:href"),  # svg
        "use": ("href", "xlink:href"),
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag == "style":
            self._in_style = True
        for name, value in attrs:
            name = name.lower()
            if value is None:
                continue
            if name in self.FETCHING.get(tag, ()):
                urls = [u.strip().split(" ")[0] for u in value.split(",")] if "srcset" in name else [value]
                for u in urls:
                    if is_remote(u):
                        self.found.append(f"<{tag} {name}={u}>")
            elif name == "style":
                for u in _css_urls(value):
                    self.found.append(f"<{tag} style=url({u})>")

    def handle_endtag(self, tag: str) -> None:
        if tag.lower() == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            for u in _css_urls(data):
                self.found.append(f"<style> url({u})")


def _css_urls(css: str) -> list[str]:
    css = CSS_COMMENT_RE.sub("", css)
    out = []
    for m in CSS_URL_RE.finditer(css):
        u = m.group(1) or m.group(2)
        if is_remote(u):
            out.append(u)
    return out


REFRESH_RE = re.compile(
    r"""<meta\s+http-equiv=["']?refresh["']?\s+content=["']\s*\d+\s*;\s*url=([^"'>]+)["']""", re.I)


def redirect_target(page: Path) -> str | None:
    """The target of a meta-refresh page (jupyter-book writes index.html as one), else None."""
    head = page.read_text(encoding="utf-8", errors="replace")[:4000]
    m = REFRESH_RE.search(head)
    return m.group(1).strip() if m else None


def html_pages(root: Path, patterns: list[str] | None = None) -> list[Path]:
    pages = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root)
        if rel.parts[0] in SKIP_DIRS:
            continue
        if patterns and not any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in patterns):
            continue
        pages.append(p)
    return pages


def static_scan(root: Path) -> dict[str, list[str]]:
    """Map of file (relative to root) -> remote references found in it. Empty dict: clean."""
    root = Path(root)
    problems: dict[str, list[str]] = {}
    for page in html_pages(root):
        parser = _RemoteRefParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        parser.close()
        if parser.found:
            problems[page.relative_to(root).as_posix()] = parser.found
    for css in sorted(root.rglob("*.css")):
        found = _css_urls(css.read_text(encoding="utf-8", errors="replace"))
        if found:
            problems[css.relative_to(root).as_posix()] = [f"url({u})" for u in found]
    return problems


# --------------------------------------------------------------------------------------------------
# 2. local server
# --------------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".woff2": "font/woff2",
        ".woff": "font/woff",
        ".ttf": "font/ttf",
        ".svg": "image/svg+xml",
    }

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass


class LocalServer:
    """``with LocalServer(folder) as base_url:`` serves folder on 127.0.0.1 (free port) in a thread."""

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------------------------------
# 3. Chromium over the DevTools protocol (pipe transport: NUL-separated JSON on fds 3 and 4)
# --------------------------------------------------------------------------------------------------


class BrowserError(RuntimeError):
    pass


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    env = os.environ.get("CHROMIUM")
    if env and (Path(env).exists() or shutil.which(env)):
        return env
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        import fcntl

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        cmd_r, cmd_w = os.pipe()  # we write commands -> browser reads on fd 3
        res_r, res_w = os.pipe()  # browser writes results on fd 4 -> we read
        # Give the child's ends high numbers so the redirections below cannot clobber them (bash, not
        # sh: dash only accepts one-digit fd numbers).
        child_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(res_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(cmd_r)
        os.close(res_w)
        args = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        shell = f'exec "$0" "$@" 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-'
        self.stderr_path = Path(self.profile) / "stderr.log"
        self._stderr = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [shutil.which("bash") or "/bin/bash", "-c", shell, *args],
                stdin=subprocess.DEVNULL,
                stdout=self._stderr,
                stderr=self._stderr,
                pass_fds=(child_r, child_w),
                start_new_session=True,
            )
        finally:
            os.close(child_r)
            os.close(child_w)
        self._out = cmd_w
        self._in = res_r
        self._next_id = 0
        self._pending: dict[int, dict] = {}
        self._cond = threading.Condition()
        self.listeners: dict[str, callable] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        try:
            self.version = self.send("Browser.getVersion", timeout=timeout)
        except Exception as exc:
            self.close()
            raise BrowserError(f"Chromium did not answer: {exc}; stderr: {self.stderr_tail()}") from exc

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._in, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._closed = True
                    self._cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._pending[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    listener = self.listeners.get(msg.get("sessionId", ""))
                    if listener:
                        listener(msg["method"], msg.get("params", {}))

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float | None = None) -> dict:
        with self._cond:
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._out, data):]
        except OSError as exc:
            raise BrowserError(f"{method}: browser pipe closed ({exc})") from exc
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cond:
            while mid not in self._pending:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"{method}: browser exited; stderr: {self.stderr_tail()}")
                if left <= 0:
                    raise BrowserError(f"{method}: no answer in {timeout or self.timeout:.0f}s")
                self._cond.wait(left)
            reply = self._pending.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except Exception:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    try:  # its own session (start_new_session): take the helpers down with it
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    except OSError:
                        self.proc.kill()
                    self.proc.wait(timeout=5)
        finally:
            for fd in (self._out, self._in):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------
# 4. per-page check
# --------------------------------------------------------------------------------------------------

PAGE_STATE_JS = r"""
(() => {
  const views = Array.from(document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = views.filter(s => {
    const prev = s.previousElementSibling;
    return prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0;
  });
  const maths = Array.from(document.querySelectorAll('.math'));
  const typeset = maths.filter(m => m.querySelector('mjx-container'));
  const imgs = Array.from(document.images).filter(i => i.complete || i.loading !== 'lazy');
  return {
    readyState: document.readyState,
    images: imgs.length,
    imagesBroken: imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
    widgetViews: views.length,
    widgetsRendered: rendered.length,
    widgetClasses: Array.from(new Set(Array.from(document.querySelectorAll(
        '.widget-subarea [class*="widget-"]')).flatMap(e => Array.from(e.classList))
        .filter(c => c.startsWith('widget-') || c === 'jupyter-widgets'))).sort(),
    math: maths.length,
    mathTypeset: typeset.length,
    mjxContainers: document.querySelectorAll('mjx-container').length,
    mathjaxLoaded: typeof window.MathJax === 'object' && !!window.MathJax.startup,
    // Where RequireJS resolves the widget manager's module (its fonts are looked up beside it).
    widgetModuleUrl: (views.length && window.require && window.require.toUrl)
        ? window.require.toUrl('@jupyter-widgets/html-manager/dist/libembed-amd.js') : null,
    height: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
  };
})()
"""

MATHJAX_WAIT_JS = r"""
(window.MathJax && MathJax.startup && MathJax.startup.promise)
  ? MathJax.startup.promise.then(() => true, () => false) : false
"""


@dataclass
class PageReport:
    page: str
    url: str
    state: dict = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    requests: int = 0
    urls: list[str] = field(default_factory=list)  # every URL requested (not data:/blob:)
    problems: list[str] = field(default_factory=list)
    screenshot: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.problems or self.console_errors or self.failed_requests
                    or self.external_requests)


@dataclass
class SiteReport:
    root: str
    static_problems: dict[str, list[str]]
    pages: list[PageReport]
    browser: str = ""

    @property
    def ok(self) -> bool:
        return not self.static_problems and all(p.ok for p in self.pages)

    def table(self) -> str:
        rows = [("page", "widgets", "math", "images", "errors", "external", "failed", "reqs", "s",
                 "ok")]
        for p in self.pages:
            s = p.state
            if "redirect" in s:
                rows.append((p.page, f"-> {s['redirect']}", "", "", "", "", "", "", f"{p.seconds:.1f}",
                             "OK" if p.ok else "FAIL"))
                continue
            rows.append((
                p.page,
                f"{s.get('widgetsRendered', '?')}/{s.get('widgetViews', '?')}",
                f"{s.get('mathTypeset', '?')}/{s.get('math', '?')}",
                f"{s.get('images', 0) - len(s.get('imagesBroken') or [])}/{s.get('images', '?')}",
                str(len(p.console_errors)),
                str(len(p.external_requests)),
                str(len(p.failed_requests)),
                str(p.requests),
                f"{p.seconds:.1f}",
                "OK" if p.ok else "FAIL",
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        details = []
        for f, found in self.static_problems.items():
            details += [f"STATIC {f}: {x}" for x in found]
        for p in self.pages:
            for kind, items in (("problem", p.problems), ("console error", p.console_errors),
                                ("external request", p.external_requests),
                                ("failed request", p.failed_requests)):
                details += [f"{p.page}: {kind}: {x}" for x in items]
        return "\n".join(lines + ([""] + details if details else []))


class _PageEvents:
    def __init__(self, base_url: str) -> None:
        self.base = urlsplit(base_url)
        self.loaded = threading.Event()
        self.inflight: dict[str, str] = {}
        self.last_activity = time.monotonic()
        self.lock = threading.Lock()
        self.report_console: list[str] = []
        self.report_warn: list[str] = []
        self.failed: list[str] = []
        self.external: list[str] = []
        self.urls: list[str] = []
        self.count = 0

    def _local(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in IGNORED_SCHEMES:
            return True
        return parts.hostname in LOCAL_HOSTS

    def __call__(self, method: str, p: dict) -> None:
        with self.lock:
            self.last_activity = time.monotonic()
            if method == "Page.loadEventFired":
                self.loaded.set()
            elif method == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if urlsplit(url).scheme not in IGNORED_SCHEMES:
                    self.count += 1
                    self.urls.append(url)
                    self.inflight[p["requestId"]] = url
                if not self._local(url):
                    self.external.append(url)
            elif method == "Network.responseReceived":
                status = p["response"].get("status", 0)
                if status >= 400 and urlsplit(p["response"].get("url", "")).path not in IGNORED_FAILURES:
                    self.failed.append(f"HTTP {status} {p['response'].get('url')}")
            elif method == "Network.loadingFinished":
                self.inflight.pop(p["requestId"], None)
            elif method == "Network.loadingFailed":
                url = self.inflight.pop(p["requestId"], "?")
                if not p.get("canceled"):
                    self.failed.append(f"{p.get('errorText')} {url}")
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(_remote_obj_text(a) for a in p.get("args", []))
                if p.get("type") in ("error", "assert"):
                    self.report_console.append(f"console.{p['type']}: {text}"[:500])
                elif p.get("type") == "warning":
                    self.report_warn.append(text[:500])
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                exc = d.get("exception", {})
                text = exc.get("description") or d.get("text", "exception")
                where = d.get("url", "")
                self.report_console.append(f"uncaught: {text.splitlines()[0] if text else ''} {where}"[:500])
            elif method == "Log.entryAdded":
                e = p.get("entry", {})
                if e.get("level") == "error" and not (
                        e.get("source") == "network"
                        and urlsplit(e.get("url", "")).path in IGNORED_FAILURES):
                    self.report_console.append(f"log[{e.get('source')}]: {e.get('text')} {e.get('url', '')}"[:500])
                elif e.get("level") == "warning":
                    self.report_warn.append(f"log[{e.get('source')}]: {e.get('text')}"[:500])


def _remote_obj_text(obj: dict) -> str:
    if "value" in obj:
        return str(obj["value"])
    return obj.get("description") or obj.get("type", "")


def _evaluate(browser: Chromium, session: str, expr: str, await_promise: bool = False,
              timeout: float | None = None):
    res = browser.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                            "awaitPromise": await_promise}, session, timeout)
    if "exceptionDetails" in res:
        raise BrowserError(f"evaluate failed: {res['exceptionDetails'].get('text')}")
    return res.get("result", {}).get("value")


def check_page(browser: Chromium, base_url: str, rel: str, screenshots: Path | None,
               timeout: float = 30.0, settle: float = 0.5, width: int = 1280,
               height: int = 900, browser_root: str | Path | None = None) -> PageReport:
    """Open ``base_url + rel`` in a new tab and check it (``browser_root``: the served folder)."""
    t0 = time.monotonic()
    url = base_url + rel
    rep = PageReport(page=rel, url=url)
    target_rel = redirect_target(Path(browser_root) / rel) if browser_root else None
    if target_rel is not None:
        # A meta-refresh stub: its target is checked as a page of its own; only check it resolves.
        if is_remote(target_rel):
            rep.problems.append(f"redirects off-site to {target_rel}")
        elif not (Path(browser_root) / rel).parent.joinpath(target_rel.split("#")[0]).is_file():
            rep.problems.append(f"redirects to missing {target_rel}")
        rep.state = {"redirect": target_rel}
        rep.seconds = time.monotonic() - t0
        return rep
    events = _PageEvents(base_url)
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.listeners[session] = events
    try:
        for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            browser.send(m, session=session)
        browser.send("Network.setCacheDisabled", {"cacheDisabled": True}, session)
        browser.send("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        nav = browser.send("Page.navigate", {"url": url}, session)
        if nav.get("errorText"):
            rep.problems.append(f"navigation failed: {nav['errorText']}")
            return rep
        deadline = t0 + timeout
        if not events.loaded.wait(max(0.1, deadline - time.monotonic())):
            rep.problems.append(f"load event not fired within {timeout:.0f}s")
        # Wait for what the page is expected to render.
        state = {}
        while True:
            state = _evaluate(browser, session, PAGE_STATE_JS) or {}
            if state.get("math") and state.get("mathjaxLoaded"):
                _evaluate(browser, session, MATHJAX_WAIT_JS, await_promise=True,
                          timeout=max(1.0, deadline - time.monotonic()))
                state = _evaluate(browser, session, PAGE_STATE_JS) or {}
            done = (state.get("widgetsRendered", 0) >= state.get("widgetViews", 0)
                    and state.get("mathTypeset", 0) >= state.get("math", 0))
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Let late requests (fonts, lazily loaded modules) finish: idle for `settle` seconds.
        while time.monotonic() < deadline:
            with events.lock:
                idle = not events.inflight and time.monotonic() - events.last_activity > settle
            if idle:
                break
            time.sleep(0.1)
        state = _evaluate(browser, session, PAGE_STATE_JS) or state
        rep.state = state
        if state.get("widgetsRendered", 0) < state.get("widgetViews", 0):
            rep.problems.append(
                f"only {state.get('widgetsRendered')}/{state.get('widgetViews')} widget views rendered")
        for src in state.get("imagesBroken") or []:
            rep.problems.append(f"image did not load: {src}")
        if state.get("mathTypeset", 0) < state.get("math", 0):
            rep.problems.append(f"only {state.get('mathTypeset')}/{state.get('math')} math elements "
                                f"typeset (MathJax loaded: {state.get('mathjaxLoaded')})")
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            full_h = int(min(max(state.get("height") or height, height), 12000))
            shot = browser.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": full_h, "scale": 1}}, session)
            out = screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
            out.write_bytes(base64.b64decode(shot["data"]))
            rep.screenshot = str(out)
    except BrowserError as exc:
        rep.problems.append(str(exc))
    finally:
        with events.lock:
            rep.console_errors = list(events.report_console)
            rep.console_warnings = list(events.report_warn)
            rep.failed_requests = list(events.failed)
            rep.external_requests = list(events.external)
            rep.requests = events.count
            rep.urls = list(events.urls)
        browser.listeners.pop(session, None)
        try:
            browser.send("Target.closeTarget", {"targetId": target}, timeout=10)
        except BrowserError:
            pass
        rep.seconds = time.monotonic() - t0
    return rep


def check_site(root: str | Path, screenshots: str | Path | None = None,
               pages: list[str] | None = None, chromium: str | None = None,
               timeout: float = 30.0) -> SiteReport:
    """Static scan + browser check of every page of the built HTML folder ``root``.

    Raises :class:`BrowserError` when Chromium cannot be found or started.
    """
    root = Path(root).resolve()
    if not (root / "index.html").exists() and not any(root.glob("*.html")):
        raise FileNotFoundError(f"no HTML pages in {root}")
    static = static_scan(root)
    exe = find_chromium(chromium)
    if exe is None:
        raise BrowserError("Chromium not found (install the Debian package `chromium`, or pass --chromium)")
    shots = Path(screenshots).resolve() if screenshots else None
    reports = []
    with LocalServer(root) as base_url, Chromium(exe, timeout=timeout) as browser:
        for page in html_pages(root, pages):
            reports.append(check_page(browser, base_url, page.relative_to(root).as_posix(), shots,
                                      timeout=timeout, browser_root=root))
        product = browser.version.get("product", "")
    return SiteReport(root=str(root), static_problems=static, pages=reports, browser=product)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", help="built HTML folder, e.g. book/_build/html")
    ap.add_argument("--screenshots", metavar="OUTDIR", help="save a full-page PNG of each page here")
    ap.add_argument("--pages", nargs="*", metavar="GLOB",
                    help="only these pages (globs relative to html_dir; default: all)")
    ap.add_argument("--chromium", help="browser executable (default: $CHROMIUM or chromium on PATH)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per page (default 30)")
    ap.add_argument("--json", metavar="FILE", help="also write the full report as JSON")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    try:
        report = check_site(args.html_dir, args.screenshots, args.pages, args.chromium, args.timeout)
    except BrowserError as exc:
        print(f"serve_and_check: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.json:
        Path(args.json).write_text(json.dumps({
            "root": report.root, "browser": report.browser, "ok": report.ok,
            "static_problems": report.static_problems,
            "pages": [dict(vars(p), ok=p.ok) for p in report.pages]}, indent=2))
    n_bad = sum(not p.ok for p in report.pages)
    print(f"\n{len(report.pages)} pages, {n_bad} failing, {len(report.static_problems)} files with "
          f"remote references; {report.browser}; {time.monotonic() - t0:.1f}s -> "
          f"{'OK' if report.ok else 'FAIL'}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
