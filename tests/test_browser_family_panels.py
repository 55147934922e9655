"""A family's own panels in real Chromium against a real server: the evolution family declares a
fitness histogram ("bars", trainer/families/evolution/family.py), its engine puts it in every
picture tick, the worker's frames carry it, and the page draws it below the samples panel — live
at most 5 times a second, in the replay of the finished run frame by frame, and small in each
card of a comparison. A GAN run, which declares none, shows no such section.

Screenshots go to tests/screenshots/ (ignored by git): 50-family-panels.png,
51-family-panels-phone.png, 52-family-panels-compare.png. Without Chromium this skips with the
reason, except under CI=true.
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

server = server_fixture(max_workers=3)
browser = browser_fixture()

PANEL = "#family-panels .fp-panel[data-panel='fitness_hist']"
# the blue of the bars (family_panels.js BAR #4c8bf5) counted in the panel's canvas
BLUE_PIXELS = """(sel) => {
  const c = document.querySelector(sel + ' canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4)
    if (d[i] === 0x4c && d[i + 1] === 0x8b && d[i + 2] === 0xf5) n++;
  return n;
}"""


def stop(server: str, run_id: str) -> None:
    httpx.post(f"{server}/api/runs/{run_id}/control", json={"action": "stop"})


def test_an_evolution_run_draws_its_fitness_histogram_live_and_in_replay(browser, server):
    body = {"preset": "evolution-collapse-ring8", "steps": 0}
    run = httpx.post(f"{server}/api/runs", json=body).json()
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, f"{server}/#run={run['id']}")
        wait_js(page, "L.perf.frames.length >= 3 && app.live.familyPanels.draws >= 1",
                timeout=90_000)
        assert js(page, "document.getElementById('family-panels').hidden") is False
        assert page.eval_on_selector_all("#family-panels .fp-panel",
                                         "els => els.map(e => e.dataset.panel)") == ["fitness_hist"]
        assert page.inner_text(f"{PANEL} figcaption") == "Fitness of the population"
        assert js(page, "document.querySelector(\"" + PANEL + " .fp-empty\").hidden") is True
        # what was drawn is the frame's value: ten bars, shares of the whole population
        shown = js(page, "app.live.familyPanels.latest.fitness_hist")
        assert len(shown["values"]) == 10 and abs(sum(shown["values"]) - 100) < 0.1
        assert page.evaluate(BLUE_PIXELS, PANEL) > 200
        # the section sits below the samples panel
        top = "(id) => document.getElementById(id).getBoundingClientRect()"
        assert page.evaluate(f"({top})('family-panels').top >= ({top})('samples-panel').bottom")

        # at most 5 redraws a second however many frames come (frame_rate 10 a second)
        d0, f0 = js(page, "[app.live.familyPanels.draws, L.perf.received]")
        page.wait_for_timeout(4000)
        d1, f1 = js(page, "[app.live.familyPanels.draws, L.perf.received]")
        assert d1 - d0 <= 4 * 5 + 1, (d1 - d0, f1 - f0)
        assert d1 > d0  # and it keeps drawing while frames come
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "50-family-panels.png")
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(500)
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "51-family-panels-phone.png")
        right = page.eval_on_selector(PANEL, "e => e.getBoundingClientRect().right")
        assert right <= 390 + 1  # fits a phone's width
        page.set_viewport_size({"width": 1280, "height": 800})

        # the finished run's replay: the panel follows the scrubber frame by frame
        stop(server, run["id"])
        wait_js(page, "app.live.replay && app.live.replay.frames.length >= 2", timeout=60_000)
        first = js(page, "app.live.replay.frames[0].scalars.panels.fitness_hist.values")
        page.eval_on_selector("#scrub",
                              "e => { e.value = '0'; e.dispatchEvent(new Event('input')); }")
        wait_js(page, "JSON.stringify(app.live.familyPanels.latest.fitness_hist.values) === "
                f"JSON.stringify({first})", timeout=10_000)
        page.wait_for_timeout(400)  # the trailing redraw of the rate limit
        assert js(page, "app.live.familyPanels.timer") == 0
        assert page.evaluate(BLUE_PIXELS, PANEL) > 0

        # a GAN run declares no panels: no section
        gan = httpx.post(f"{server}/api/runs",
                         json={"preset": "collapse-ring8", "steps": 0}).json()
        open_page(page, f"{server}/#run={gan['id']}")
        wait_js(page, f"app.live.run && app.live.run.id === '{gan['id']}'"
                " && L.perf.frames.length >= 1", timeout=90_000)
        assert js(page, "document.getElementById('family-panels').hidden") is True
        stop(server, gan["id"])


def test_each_card_of_an_evolution_comparison_draws_its_histogram(browser, server):
    body = {"base": {"preset": "evolution-collapse-ring8", "steps": 0},
            "variants": [{"crossover_rate": 0.9}, {"crossover_rate": 0.0}]}
    got = httpx.post(f"{server}/api/compare", json=body)
    assert got.status_code == 201, got.text
    group = got.json()
    ids = [r["id"] for r in group["runs"]]
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, f"{server}/#view=compare&runs={','.join(ids)}&group={group['id']}")
        page.wait_for_selector(".cmp-card >> nth=1")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.cmp-card .fp-panel')].length === 2 && "
            "[...document.querySelectorAll('.cmp-card .fp-panel')]"
            ".every(f => f.dataset.empty === '0')",
            timeout=90_000)
        for rid in ids:
            assert page.evaluate(BLUE_PIXELS, f".cmp-card[data-run='{rid}'] .fp-panel") > 20
        page.screenshot(path=SHOTS / "52-family-panels-compare.png", full_page=True)
    for rid in ids:
        stop(server, rid)
