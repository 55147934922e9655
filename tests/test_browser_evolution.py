"""The evolution lesson in real Chromium against a real server: the page starts a genetic
algorithm from the lesson, shows its population collapse onto one peak of the fitness landscape,
and shows it rescued live when the lesson switches on sharing and random immigrants.

Screenshots go to tests/screenshots/ (ignored by git): 40-evolution-collapsed.png,
41-evolution-rescued.png. Without Chromium this skips with the reason, except under CI=true.
"""

from __future__ import annotations

import httpx
import pytest
from browser_harness import (
    SHOTS,
    browser_fixture,
    js,
    open_page,
    require_chromium,
    server_fixture,
    wait_js,
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

require_chromium()

server = server_fixture(max_workers=2)
browser = browser_fixture()

STEP = "Number(document.getElementById('m-step').textContent)"
COVERED = "Number((document.getElementById('m-covered').textContent || '').split('/')[0])"


def test_the_evolution_lesson_collapses_and_is_rescued_live(browser, server):
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
        open_page(page, server + "/")
        page.click("#lessons-open")
        page.click(".lesson-choice[data-lesson='evolution']")
        wait_js(page, "app.live.run && app.live.run.config.family === 'evolution'",
                timeout=60_000)
        run_id = js(page, "app.live.run.id")
        cfg = httpx.get(f"{server}/api/runs/{run_id}").json()["config"]
        assert cfg["family"] == "evolution" and cfg["crossover_rate"] == 0.9
        assert cfg["speed"] == 4  # slow enough to watch: a few generations a second

        # the population takes over one peak; the heatmap is the fitness landscape
        wait_js(page, f"{STEP} >= 60 && {COVERED} === 1", timeout=120_000)
        assert "heatmap: fitness" in page.inner_text("#samples-note")
        names = js(page, "document.getElementById('chart-loss').data.map(t => t.name)")
        assert "mean fitness" in names and "D loss" not in names
        assert js(page, "app.live.samples.valueKind") == "fitness"
        page.screenshot(path=SHOTS / "40-evolution-collapsed.png")
        # the panels speak of the family: a fitness landscape, no generator's layers or steps
        assert page.inner_text("#heat-label") == "fitness landscape"
        assert page.inner_text("#loss-title") == "Evolution: curves"
        for tool in ("arrows-tool", "manifold-tool", "step-d", "step-g"):
            assert js(page, f"getComputedStyle(document.getElementById('{tool}')).display") \
                == "none", tool

        # step 2 (text), step 3: sharing without crossover, live; nothing comes back
        page.click("#lesson-next")
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.sharing_radius === 0.75", timeout=30_000)
        step = js(page, STEP)
        wait_js(page, f"{STEP} >= {step + 20}", timeout=60_000)
        assert js(page, COVERED) <= 2

        # step 4: random immigrants with sharing bring the peaks back, live
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.immigrants === 0.05", timeout=30_000)
        wait_js(page, f"{COVERED} >= 7", timeout=120_000)
        events = httpx.get(f"{server}/api/runs/{run_id}/history").json()["events"]
        changed = [e["changes"] for e in events if e.get("type") == "config"]
        assert {"sharing_radius": 0.75, "crossover_rate": 0.0} in changed
        assert {"immigrants": 0.05} in changed
        page.screenshot(path=SHOTS / "41-evolution-rescued.png")
        httpx.post(f"{server}/api/runs/{run_id}/control", json={"action": "stop"})
