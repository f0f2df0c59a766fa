"""Open the pages of a built book in headless Chromium (Selenium + Debian's chromedriver) and record what broke.

Per page: console errors, uncaught exceptions, failed or >= 400 requests, every request to a host other than
127.0.0.1 (from Chrome's performance log), ipywidgets views rendered, ``.math`` elements typeset by MathJax,
images loaded, interactive Plotly figures drawn with their data (and a hover label shown), and a full-page
PNG screenshot.

The folder is served by :class:`LocalServer` on 127.0.0.1; Chromium is started with a host-resolver rule that
leaves every other host unresolvable, so a remote asset fails loudly instead of loading. Selenium is given the
chromedriver path, so Selenium Manager (which would download a driver) never runs.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from clap_lib.report.interactive import PLOTLY_CLASS
from tools.bookcheck.scan import is_remote, redirect_target

LOCAL_HOSTS = frozenset({"127.0.0.1"})
IGNORED_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension", "devtools"})
# Chromium asks every site for /favicon.ico by itself; a 404 there is not the page's doing.
IGNORED_FAILURES = ("/favicon.ico",)
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "chromedriver")
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
    # Whatever a page asks for, only 127.0.0.1 resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


class BrowserError(RuntimeError):
    """Chromium or chromedriver missing, or the browser could not be started/driven."""


@dataclass(frozen=True)
class BrowserConfig:
    chromium: str | None = None  # executable; None: $CHROMIUM, then chromium on PATH
    chromedriver: str | None = None  # None: $CHROMEDRIVER, then /usr/bin/chromedriver, then PATH
    timeout: float = 30.0  # seconds per page
    settle: float = 0.5  # network idle time that ends a page's wait
    width: int = 1280
    height: int = 900
    max_screenshot_height: int = 12000


def _which(name: str | None) -> str | None:
    if not name:
        return None
    if Path(name).is_file():
        return str(Path(name))
    return shutil.which(name)


def find_chromium(explicit: str | None = None) -> str | None:
    if explicit:
        return _which(explicit)
    for name in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES):
        if path := _which(name):
            return path
    return None


def find_chromedriver(explicit: str | None = None) -> str | None:
    if explicit:
        return _which(explicit)
    for name in (os.environ.get("CHROMEDRIVER"), *CHROMEDRIVER_CANDIDATES):
        if path := _which(name):
            return path
    return None


# ------------------------------------------------------------------------------------------------ server


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
    """``with LocalServer(folder) as base_url:`` serves the folder on 127.0.0.1 (a free port) in a thread."""

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


# ------------------------------------------------------------------------------------------------ browser


@contextmanager
def open_browser(config: BrowserConfig = BrowserConfig()) -> Iterator:
    """A headless Chromium WebDriver with a fresh empty profile, closed (and the profile removed) on exit."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    chromium = find_chromium(config.chromium)
    if chromium is None:
        raise BrowserError(
            f"Chromium not found ({config.chromium or 'chromium on PATH'}); install the Debian "
            "package `chromium`, or pass its path"
        )
    driver_path = find_chromedriver(config.chromedriver)
    if driver_path is None:
        raise BrowserError(
            f"chromedriver not found ({config.chromedriver or '/usr/bin/chromedriver'}); install "
            "the Debian package `chromium-driver`, or pass its path"
        )
    profile = tempfile.mkdtemp(prefix="bookcheck-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={config.width},{config.height}"):
        opts.add_argument(flag)
    # performance: the DevTools Network/Page events; browser: console messages, exceptions, load errors.
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=os.devnull)
    try:
        driver = webdriver.Chrome(service=service, options=opts)
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        raise BrowserError(f"could not start {chromium} through {driver_path}: {exc.msg or exc}") from exc
    try:
        driver.set_page_load_timeout(config.timeout)
        driver.set_script_timeout(config.timeout)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def browser_version(driver) -> str:
    caps = driver.capabilities
    return f"{caps.get('browserName', '')} {caps.get('browserVersion', '')}".strip()


# ------------------------------------------------------------------------------------------------ per page

PAGE_STATE_JS = r"""
const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
const rendered = views.filter(s => {
  const prev = s.previousElementSibling;
  return prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0;
});
const maths = Array.from(document.querySelectorAll('.math'));
const imgs = Array.from(document.images).filter(i => i.complete || i.loading !== 'lazy');
const plots = Array.from(document.querySelectorAll('.PLOTLY_CLASS'));
const drawn = plots.filter(d => d.classList.contains('js-plotly-plot') && Array.isArray(d.data) && d.data.length);
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
  mathTypeset: maths.filter(m => m.querySelector('mjx-container')).length,
  mjxContainers: document.querySelectorAll('mjx-container').length,
  mathjaxLoaded: typeof window.MathJax === 'object' && !!window.MathJax.startup,
  widgetModuleUrl: (views.length && window.require && window.require.toUrl)
      ? window.require.toUrl('@jupyter-widgets/html-manager/dist/libembed-amd.js') : null,
  plotly: plots.length,
  plotlyDrawn: drawn.length,
  plotlyPoints: drawn.map(d => d.data.reduce((n, t) => n + ((t.x && t.x.length) || 0), 0)),
  plotlyVersion: window.Plotly ? window.Plotly.version : null,
  plotlyScripts: Array.from(document.scripts).filter(s => /plotly[^/]*\.js/.test(s.src)).map(s => s.src),
  requirejs: typeof window.requirejs === 'function',
  height: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
};
""".replace("PLOTLY_CLASS", PLOTLY_CLASS)

MATHJAX_WAIT_JS = r"""
const done = arguments[arguments.length - 1];
if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
  MathJax.startup.promise.then(() => done(true), () => done(false));
} else { done(false); }
"""

# Hover the first point of each drawn figure: the label Plotly draws is what a reader sees on hover.
PLOTLY_HOVER_JS = r"""
const out = [];
for (const d of document.querySelectorAll('.PLOTLY_CLASS.js-plotly-plot')) {
  const curve = d.data.findIndex(t => t.x && t.x.length);
  if (curve < 0) { out.push(''); continue; }
  Plotly.Fx.hover(d, [{curveNumber: curve, pointNumber: 0}]);
  const layer = d.querySelector('.hoverlayer');
  out.push(layer ? layer.textContent : '');
  Plotly.Fx.unhover(d);
}
return out;
""".replace("PLOTLY_CLASS", PLOTLY_CLASS)


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
        return not (self.problems or self.console_errors or self.failed_requests or self.external_requests)


class _NetworkLog:
    """Requests of one page, from the DevTools events in chromedriver's performance log."""

    def __init__(self) -> None:
        self.inflight: dict[str, str] = {}
        self.urls: list[str] = []
        self.failed: list[str] = []
        self.external: list[str] = []
        self.last_activity = time.monotonic()

    def feed(self, entries: list[dict]) -> None:
        for entry in entries:
            msg = json.loads(entry["message"])["message"]
            method, p = msg.get("method", ""), msg.get("params", {})
            if not method.startswith("Network."):
                continue
            self.last_activity = time.monotonic()
            if method == "Network.requestWillBeSent":
                url = p["request"]["url"]
                parts = urlsplit(url)
                if parts.scheme in IGNORED_SCHEMES:
                    continue
                self.urls.append(url)
                self.inflight[p["requestId"]] = url
                if parts.hostname not in LOCAL_HOSTS:
                    self.external.append(url)
            elif method == "Network.responseReceived":
                resp = p.get("response", {})
                if resp.get("status", 0) >= 400 and urlsplit(resp.get("url", "")).path not in IGNORED_FAILURES:
                    self.failed.append(f"HTTP {resp['status']} {resp.get('url')}")
            elif method == "Network.loadingFinished":
                self.inflight.pop(p["requestId"], None)
            elif method == "Network.loadingFailed":
                url = self.inflight.pop(p["requestId"], "?")
                if not p.get("canceled") and urlsplit(url).path not in IGNORED_FAILURES:
                    self.failed.append(f"{p.get('errorText')} {url}")


def _console(entries: list[dict], errors: list[str], warnings: list[str]) -> None:
    for e in entries:
        text = f"{e.get('source', 'console')}: {e.get('message', '')}"[:500]
        if any(f in e.get("message", "") for f in IGNORED_FAILURES):
            continue
        if e.get("level") == "SEVERE":
            errors.append(text)
        elif e.get("level") == "WARNING":
            warnings.append(text)


def _redirect_report(rel: str, root: Path, url: str, target: str) -> PageReport:
    """A meta-refresh stub: its target is checked as a page of its own; only check that it resolves."""
    rep = PageReport(page=rel, url=url, state={"redirect": target})
    if is_remote(target):
        rep.problems.append(f"redirects off-site to {target}")
    elif not (root / rel).parent.joinpath(target.split("#")[0]).is_file():
        rep.problems.append(f"redirects to missing {target}")
    return rep


def check_page(
    driver,
    base_url: str,
    rel: str,
    root: Path,
    screenshots: Path | None = None,
    config: BrowserConfig = BrowserConfig(),
) -> PageReport:
    """Open ``base_url + rel`` (``rel`` a page of the served folder ``root``) and check it."""
    from selenium.common.exceptions import WebDriverException

    t0 = time.monotonic()
    url = base_url + rel
    root = Path(root)
    target = redirect_target(root / rel)
    if target is not None:
        rep = _redirect_report(rel, root, url, target)
        rep.seconds = time.monotonic() - t0
        return rep
    rep = PageReport(page=rel, url=url)
    net = _NetworkLog()
    driver.get_log("performance"), driver.get_log("browser")  # drop the previous page's entries
    deadline = t0 + config.timeout
    try:
        driver.get(url)
        state: dict = {}
        while True:  # wait for what the page is expected to render
            net.feed(driver.get_log("performance"))
            state = driver.execute_script(PAGE_STATE_JS) or {}
            if state.get("math") and state.get("mathjaxLoaded"):
                driver.execute_async_script(MATHJAX_WAIT_JS)
                state = driver.execute_script(PAGE_STATE_JS) or {}
            # Once the page has loaded without plotly.js, its figures can never be drawn: no point waiting.
            plots_done = state.get("plotlyDrawn", 0) >= state.get("plotly", 0) or (
                state.get("readyState") == "complete" and not state.get("plotlyVersion")
            )
            done = (
                state.get("widgetsRendered", 0) >= state.get("widgetViews", 0)
                and state.get("mathTypeset", 0) >= state.get("math", 0)
                and plots_done
            )
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Let late requests (fonts, lazily loaded modules) finish: network idle for `settle` seconds.
        while time.monotonic() < deadline:
            net.feed(driver.get_log("performance"))
            if not net.inflight and time.monotonic() - net.last_activity > config.settle:
                break
            time.sleep(0.1)
        state = driver.execute_script(PAGE_STATE_JS) or state
        if state.get("plotlyDrawn"):
            state["plotlyHover"] = driver.execute_script(PLOTLY_HOVER_JS)
        rep.state = state
        _page_problems(rep)
        if screenshots is not None:
            rep.screenshot = str(_screenshot(driver, rel, state, screenshots, config))
    except WebDriverException as exc:
        rep.problems.append(f"browser: {(exc.msg or str(exc)).splitlines()[0]}")
    finally:
        try:
            net.feed(driver.get_log("performance"))
            _console(driver.get_log("browser"), rep.console_errors, rep.console_warnings)
        except WebDriverException:
            pass
        rep.failed_requests, rep.external_requests = net.failed, net.external
        rep.urls, rep.requests = net.urls, len(net.urls)
        rep.seconds = time.monotonic() - t0
    return rep


def _page_problems(rep: PageReport) -> None:
    s = rep.state
    if s.get("widgetsRendered", 0) < s.get("widgetViews", 0):
        rep.problems.append(f"only {s.get('widgetsRendered')}/{s.get('widgetViews')} widget views rendered")
    rep.problems += [f"image did not load: {src}" for src in s.get("imagesBroken") or []]
    if s.get("mathTypeset", 0) < s.get("math", 0):
        rep.problems.append(
            f"only {s.get('mathTypeset')}/{s.get('math')} math elements typeset "
            f"(MathJax loaded: {s.get('mathjaxLoaded')})"
        )
    if s.get("plotlyDrawn", 0) < s.get("plotly", 0):
        rep.problems.append(
            f"only {s.get('plotlyDrawn')}/{s.get('plotly')} Plotly figures drawn "
            f"(Plotly loaded: {s.get('plotlyVersion')})"
        )
    if len(s.get("plotlyScripts") or []) > 1:
        rep.problems.append(f"plotly.js loaded {len(s['plotlyScripts'])} times: {s['plotlyScripts']}")
    for i, label in enumerate(s.get("plotlyHover") or []):
        if not label.strip():
            rep.problems.append(f"Plotly figure {i + 1}: no hover label on its first point")


def _screenshot(driver, rel: str, state: dict, folder: Path, config: BrowserConfig) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    full_h = int(min(max(state.get("height") or config.height, config.height), config.max_screenshot_height))
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": config.width, "height": full_h, "scale": 1},
        },
    )
    out = folder / (rel.replace("/", "__").removesuffix(".html") + ".png")
    out.write_bytes(base64.b64decode(shot["data"]))
    return out
