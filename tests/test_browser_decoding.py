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
                " && app.live.familyPanels.draws >= 1 && (app.live.familyPanels.latest || {})"
                ".strings", timeout=120_000)
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
        # the panel's trailing redraw (due within 200 ms; later on a busy machine)
        wait_js(page, f"{GROUPS}.length >= 5", timeout=10_000)
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "61-decoding-sampling.png", full_page=True)

        # the finished run's replay: the strings follow the scrubber; the view exports a PNG
        httpx.post(f"{server}/api/runs/{rid}/control", json={"action": "stop"})
        wait_js(page, "app.live.replay && app.live.replay.frames.length >= 2", timeout=60_000)
        first = js(page, "JSON.stringify((app.live.replay.frames.find(f => f.scalars.panels)"
                   " || {scalars: {panels: {}}}).scalars.panels.strings)")
        index = js(page, "app.live.replay.frames.findIndex(f => f.scalars.panels)")
        page.eval_on_selector("#scrub", f"e => {{ e.value = '{index}'; "
                              "e.dispatchEvent(new Event('input')); }")
        wait_js(page, "JSON.stringify(app.live.familyPanels.latest.strings) === "
                f"{first!r}", timeout=10_000)
        with page.expect_download() as dl:
            page.click("#png")
        png = js(page, "app.lastPNG")
        assert {"modes covered", "reverse KL"} <= {m[0] for m in png["metrics"]}
        dl.value.save_as(SHOTS / "65-decoding-export.png")


def test_the_decoding_lesson_collapses_and_is_rescued_live(browser, server):
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
        open_page(page, server + "/")
        page.click("#lessons-open")
        page.click(".lesson-choice[data-lesson='decoding']")
        wait_js(page, "app.live.run && app.live.run.config.family === 'decoding'",
                timeout=60_000)
        rid = js(page, "app.live.run.id")
        cfg = httpx.get(f"{server}/api/runs/{rid}").json()["config"]
        assert cfg["strategy"] == "beam" and cfg["speed"] == 20
        # step 2: the model has learnt, beam search writes one or two templates
        wait_js(page, f"{STEP} >= 400 && {COVERED} >= 1 && {COVERED} <= 2", timeout=120_000)
        page.click("#lesson-next")
        # the look of the step highlights the family's panels (the section always has a class:
        # the step must be the second one, and the panels marked as what to look at)
        wait_js(page, "document.getElementById('lesson-step').dataset.step === '1' && "
                      "document.getElementById('family-panels').classList.contains('lesson-look')",
                timeout=10_000)
        page.screenshot(path=SHOTS / "62-decoding-lesson-beam.png")
        # step 3: sampling, live: the same model writes every template
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.strategy === 'sample'", timeout=30_000)
        wait_js(page, f"{COVERED} >= 5", timeout=60_000)
        page.screenshot(path=SHOTS / "63-decoding-lesson-sampling.png")
        # step 5 (after the colder sampling of step 4): diverse beams
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.temperature === 0.3", timeout=30_000)
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.strategy === 'diverse_beam'", timeout=30_000)
        wait_js(page, f"{COVERED} >= 5", timeout=60_000)
        events = httpx.get(f"{server}/api/runs/{rid}/history").json()["events"]
        changed = [e["changes"] for e in events if e.get("type") == "config"]
        assert changed[0]["strategy"] == "sample" and changed[-1]["strategy"] == "diverse_beam"
        page.screenshot(path=SHOTS / "64-decoding-lesson-diverse.png")
        httpx.post(f"{server}/api/runs/{rid}/control", json={"action": "stop"})
