"""A real Collapse Lab server in a subprocess and Debian's Chromium through Playwright.

Shared by the browser tests and bench/browser_frame.py: the server, the browser, a page watched
for uncaught errors and refused content, and the helpers that read the page's state. The server
is started the way a person starts it (`python -m collapse_lab.server.cli serve`), pinged until
healthy, and terminated → killed after.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from polling import wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("COLLAPSE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set COLLAPSE_LAB_CHROMIUM)"
    return None


def require_chromium() -> None:
    """At the top of a browser test module: skip it where Chromium is missing, except under CI,
    where a missing browser is a failure."""
    import pytest

    why = chromium_missing()
    if why:
        if os.environ.get("CI") == "true":
            raise RuntimeError(f"browser tests need Chromium under CI: {why}")
        pytest.skip(f"browser tests skipped: {why}", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(data_dir: Path, max_workers: int = 2, log_path: Path | None = None,
                   frame_rate: float = 10.0, port: int | None = None, token: str | None = None,
                   env: dict[str, str] | None = None, wait_s: float = 60) -> Iterator[str]:
    """Yield the base URL of a server subprocess; stop it (terminate, then kill) afterwards.

    `env` adds settings (COLLAPSE_LAB_...) to the server's environment — not max workers, frame
    rate or token, which go on the command line and win over the environment; its output goes
    to `log_path` (data_dir/server.log by default)."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "COLLAPSE_LAB_WORKER_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port", str(port),
           "--data-dir", str(data_dir), "--max-workers", str(max_workers),
           "--frame-rate", str(frame_rate)] + (["--token", token] if token else [])
    log = open(log_path or data_dir / "server.log", "a")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy after {wait_s:g} s; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def server_fixture(**server_args):
    """A browser test module's `server` fixture: one real server process for the module,
    `running_server(**server_args)`. In the module: `server = server_fixture(max_workers=3)`."""
    import pytest

    @pytest.fixture(scope="module", name="server")
    def fixture(tmp_path_factory):
        with running_server(tmp_path_factory.mktemp("data"), **server_args) as url:
            yield url

    return fixture


def browser_fixture():
    """A browser test module's `browser` fixture: one Chromium for the module.
    In the module: `browser = browser_fixture()`."""
    import pytest

    @pytest.fixture(scope="module", name="browser")
    def fixture():
        SHOTS.mkdir(exist_ok=True)
        with chromium() as b:
            yield b

    return fixture


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium (Playwright Browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


SHOTS = ROOT / "tests" / "screenshots"  # ignored by git; for a person to look at
# what every page.evaluate of the helpers below starts with: the page's own objects
PRELUDE = "const L = window.collapseLab; const app = L && L.app;"
CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));"""


@contextmanager
def watched_page(browser, **context_args) -> Iterator[object]:
    """A page in a fresh context that fails the test, on close, for an uncaught error or for
    anything the server's Content-Security-Policy (server/guard.py) refused."""
    SHOTS.mkdir(exist_ok=True)
    ctx = browser.new_context(**context_args)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.add_init_script(CSP_WATCH)
    try:
        yield pg
        violations = pg.evaluate("window.__csp || []")
    finally:
        ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert violations == [], violations


def open_page(page, url: str) -> None:
    """Go to url and wait until the page says it is ready."""
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)


def js(page, expr: str):
    """The value of a JS expression in the page (PRELUDE's names in scope)."""
    return page.evaluate(f"() => {{ {PRELUDE} return ({expr}); }}")


# what a page shows and follows, reported when a wait times out (so a failure says where it is)
PAGE_STATE = """({view: app.state.view, run: app.state.run, runs: app.state.runs,
  live: app.live.runId, conn: (document.getElementById('conn') || {}).dataset,
  lesson: app.lessons && app.lessons.cursor
    ? [app.lessons.cursor.name, app.lessons.cursor.step] : null,
  following: app.classroom && app.classroom.follow.following,
  seq: app.classroom && app.classroom.follow.seq,
  latest: app.classroom && app.classroom.follow.latest,
  role: document.body.dataset.role})"""


def wait_js(page, expr: str, timeout: float = 60_000) -> None:
    """Wait until a JS expression is truthy in the page, once the app exists; on a timeout the
    error says what the page showed then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {{ {PRELUDE} return !!(app && ({expr})); }}",
                               timeout=timeout)
    except PlaywrightTimeout:
        try:
            seen = js(page, PAGE_STATE)
        except Exception as e:  # noqa: BLE001 - the page may be gone; say so instead
            seen = f"(page state unreadable: {e})"
        raise AssertionError(
            f"waited {timeout / 1000:g} s for {expr!r}; the page: {seen}") from None


def wait_until(page, check, timeout: float = 30_000, what: str = "") -> None:
    """Wait until `check()` (a test-side condition, e.g. on requests or websocket frames the page
    sent) is true, letting Playwright deliver the page's events meanwhile (it delivers them only
    while the test waits on it). Fails with `what` after `timeout` ms."""
    wait_for(check, timeout / 1000, what=what or repr(check),
             pause=lambda s: page.wait_for_timeout(s * 1000))
