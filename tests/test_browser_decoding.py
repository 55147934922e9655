"""A decoding run in real Chromium against a real server: the page shows no scatter (the family's
samples are strings), the decoded strings grouped by template in the text panel and the
occupancy bars; beam search collapses onto the likeliest template, and a live switch to
sampling brings the other templates back within a tick or two.

Screenshots go to tests/screenshots/ (ignored by git): 60-decoding-beam.png,
61-decoding-sampling.png. Without Chromium this skips with the reason, except under CI=true.
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

PANEL = "#family-panels .fp-panel[data-panel='strings']"
STEP = "Number(document.getElementById('m-step').textContent)"
COVERED = "Number((document.getElementById('m-covered').textContent || '').split('/')[0])"
# the groups the text panel lists with at least one string (family_panels.js drawText)
GROUPS = (f"[...document.querySelectorAll(\"{PANEL} .fp-group\")]"
          ".filter(g => g.querySelectorAll('li').length > 0)"
          ".map(g => g.querySelector('.fp-group-name').textContent)")


def test_beam_collapse_in_the_page_rescued_live_by_sampling(browser, server):
    body = {"preset": "decoding-beam-collapse", "steps": 0, "hidden": 32, "embed": 16,
            "tick_every": 10}
    got = httpx.post(f"{server}/api/runs", json=body)
    assert got.status_code == 201, got.text
    rid = got.json()["id"]
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
        open_page(page, f"{server}/#run={rid}")
        wait_js(page, "app.live.run && app.live.run.config.family === 'decoding'",
                timeout=60_000)
        # trained a few hundred steps, beam search writes one or two templates
        wait_js(page, f"{STEP} >= 300 && {COVERED} >= 1 && {COVERED} <= 2"
                " && app.live.familyPanels.draws >= 1", timeout=120_000)
        assert js(page, "document.getElementById('family-panels').hidden") is False
        assert js(page, "getComputedStyle(document.getElementById('samples-panel')).display"
                  ) == "none" or js(page, "document.getElementById('samples-panel').hidden")
        shown = js(page, "app.live.familyPanels.latest.strings")
        assert 1 <= len(shown["items"]) <= 16 and shown["groups"][-1] == "ungrammatical"
        beam_groups = js(page, GROUPS)
        assert 1 <= len(beam_groups) <= 2 and "the ANIMAL ACT PLACE" in beam_groups
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "60-decoding-beam.png", full_page=True)

        # a live change: sample at temperature 1 — the same model writes every template
        r = httpx.post(f"{server}/api/runs/{rid}/control",
                       json={"set": {"strategy": "sample", "samples": 128}})
        assert r.status_code == 200, r.text
        wait_js(page, "app.live.run.config.strategy === 'sample'", timeout=30_000)
        wait_js(page, f"{COVERED} >= 5 && app.live.familyPanels.latest.strings.items.length"
                " > 16", timeout=60_000)
        page.wait_for_timeout(400)  # the panel's trailing redraw
        assert len(js(page, GROUPS)) >= 5
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "61-decoding-sampling.png", full_page=True)
    httpx.post(f"{server}/api/runs/{rid}/control", json={"action": "stop"})
