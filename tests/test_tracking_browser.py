"""A tracked run in a real browser: a loop in this process logs to a real server, the page shows
it live (no Pause or Step; its declared knobs in their own panel), and a knob changed in the page
reaches the loop's `run.knobs` within a second."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.browser_harness import (
    SHOTS,
    browser_fixture,
    js,
    open_page,
    require_chromium,
    server_fixture,
    wait_js,
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]
server = server_fixture()
browser = browser_fixture()


@pytest.fixture(autouse=True)
def _chromium():
    require_chromium()


def ring(k=8, r=2.0):
    a = np.arange(k) * 2 * np.pi / k
    return np.stack([r * np.cos(a), r * np.sin(a)], 1).astype(np.float32)


def test_a_tracked_loop_is_live_in_the_page_and_steered_from_it(server, browser):
    import collapse_lab

    c = ring()
    run = collapse_lab.track(server, name="browser loop", modes=c, mode_std=0.05,
                             knobs={"lr_g": (2e-4, 1e-6, 1e-2), "ema": False})
    seen: dict[str, float] = {}
    stop, spread = threading.Event(), threading.Event()

    def loop() -> None:  # a training loop: three modes, then (when told) all eight
        rng = np.random.default_rng(0)
        step = 0
        while not stop.is_set():
            modes = np.arange(8) if spread.is_set() else np.arange(3)
            x = c[rng.choice(modes, 512)] + rng.normal(0, 0.04, (512, 2))
            run.log(step, samples=x, d_loss=1.2 - step / 1000, g_loss=0.7 + step / 2000)
            if run.knobs["lr_g"] == 5e-3 and "lr_g" not in seen:
                seen["lr_g"] = time.monotonic()
            step += 1
            time.sleep(0.01)

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    try:
        with watched_page(browser, viewport={"width": 1400, "height": 900}) as page:
            open_page(page, f"{server}/#run={run.id}")
            wait_js(page, "app.live.run && app.live.log.ticks.length > 20", 30_000)
            assert js(page, "document.body.classList.contains('tracked')")
            assert not page.is_visible("#pause") and not page.is_visible(".step-row")
            assert page.is_visible("#tracked-panel") and page.is_visible("#tk-lr_g")
            note = page.text_content("#samples-note")
            assert "tracked: browser loop" in note and "8 modes" in note
            wait_js(page, "document.getElementById('m-covered').textContent === '3 / 8'",
                    20_000)
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "tracked-live-3-modes.png"))
            page.fill("#tk-lr_g", "0.005")
            t0 = time.monotonic()
            page.dispatch_event("#tk-lr_g", "change")
            deadline = t0 + 1.0
            while "lr_g" not in seen and time.monotonic() < deadline:
                time.sleep(0.005)
            assert "lr_g" in seen, "the page's change did not reach run.knobs within 1 s"
            print(f"page change → run.knobs: {(seen['lr_g'] - t0) * 1000:.0f} ms")
            # the change is marked on the charts (a config event, as for any run)
            wait_js(page, "app.live.events.some((e) => e.changes && e.changes.lr_g === 0.005)",
                    30_000)
            bad = page.locator("#tk-lr_g")
            bad.fill("5")
            bad.dispatch_event("change")
            page.wait_for_selector("#tk-lr_g[aria-invalid='true']", timeout=30_000)
            assert run.knobs["lr_g"] == 5e-3  # refused: unchanged
            spread.set()
            wait_js(page, "document.getElementById('m-covered').textContent === '8 / 8'",
                    30_000)
            page.screenshot(path=str(SHOTS / "tracked-live-8-modes.png"))
            page.click("#stop")
            deadline = time.monotonic() + 30  # the server's answer, on a busy machine
            while not run.stop_requested and time.monotonic() < deadline:
                time.sleep(0.02)
            assert run.stop_requested
    finally:
        stop.set()
        t.join(5)
        run.finish()
