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
        wait_js(page, "L.perf.frames.length >= 3 && app.live.familyPanels.draws >= 1"
                " && (app.live.familyPanels.latest || {}).fitness_hist", timeout=90_000)
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
        # the trailing redraw of the rate limit (due within 200 ms; later on a busy machine)
        wait_js(page, "app.live.familyPanels.timer === 0", timeout=10_000)
        assert page.evaluate(BLUE_PIXELS, PANEL) > 0

        # a GAN run declares no panels: no section
        gan = httpx.post(f"{server}/api/runs",
                         json={"preset": "collapse-ring8", "steps": 0}).json()
        drawn = js(page, "L.perf.frames.length")  # the evolution run's frames count too
        open_page(page, f"{server}/#run={gan['id']}")
        wait_js(page, f"app.live.run && app.live.run.id === '{gan['id']}'"
                f" && L.perf.frames.length > {drawn}", timeout=90_000)
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
        # the shared curves speak of the family: its first curve, not a GAN's D loss; no clone
        # with another objective (evolution has none)
        assert page.inner_text("#cmp-loss-title") == "mean fitness, all runs"
        assert page.eval_on_selector_all(".cmp-card .cmp-actions select", "els => els.length") == 0
        page.screenshot(path=SHOTS / "52-family-panels-compare.png", full_page=True)
    for rid in ids:
        stop(server, rid)


def knob_names(page) -> list[str]:
    return page.eval_on_selector_all("[data-knob]", "els => els.map(e => e.dataset.knob)")


def test_the_new_run_form_speaks_of_the_family_chosen(browser, server):
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, server + "/")
        # two families on this server: the chooser is there, the GAN first
        assert js(page, "document.getElementById('family-row').hidden") is False
        assert page.eval_on_selector("#family", "e => e.value") == "gan"
        gan_knobs = knob_names(page)
        assert "objective" in gan_knobs and "population" not in gan_knobs

        page.select_option("#family", "evolution")
        evo = httpx.get(f"{server}/api/options").json()
        fam = next(f for f in evo["families"] if f["name"] == "evolution")
        # the settings are evolution's knobs, as the registry labels them; nothing of the GAN's
        assert sorted(knob_names(page)) == sorted(k["name"] for k in fam["knobs"])
        label = page.inner_text("[data-knob='sharing_radius'] label")
        assert label == next(k["label"] for k in fam["knobs"] if k["name"] == "sharing_radius")
        # the preset menu holds evolution's presets only
        menu = page.eval_on_selector_all("#preset option", "els => els.map(e => e.value)")
        assert menu[1:] == sorted(fam["presets"]) or sorted(menu[1:]) == sorted(fam["presets"])
        assert "family=evolution" in page.evaluate("location.hash")
        # the compare form: the settings as they are beside a remedy, no GAN objectives
        boxes = page.eval_on_selector_all("#compare-choices input",
                                          "els => els.map(e => e.name + ':' + e.value)")
        assert "base:" in boxes and not any(b.startswith("objective:") for b in boxes)
        assert {f"remedy:{r['name']}" for r in fam["remedies"]} <= set(boxes)
        page.screenshot(path=SHOTS / "53-family-chooser-evolution.png")

        # a preset of the family, started from the page: an evolution run, judged from its own step
        page.select_option("#preset", "evolution-collapse-ring8")
        page.click("#start")
        wait_js(page, "app.live.run && app.live.run.config.family === 'evolution'"
                " && L.perf.frames.length >= 1", timeout=90_000)
        run_id = js(page, "app.live.run.id")
        assert fam["judge_from"] == 50
        hint = "document.querySelector('#m-covered').parentElement.querySelector('.card-hint')"
        wait_js(page, f"Number(document.getElementById('m-step').textContent) < 50"
                f" ? {hint}.textContent === 'judged from step 50' : true", timeout=10_000)
        wait_js(page, "Number(document.getElementById('m-step').textContent) >= 60", timeout=90_000)
        assert js(page, f"{hint}.textContent") != "judged from step 50"
        assert js(page, "document.querySelector('#m-covered').parentElement.dataset.level") \
            in ("good", "warn", "bad")
        # a live change from the evolution form reaches the evolution run
        page.eval_on_selector("[data-knob='immigrants'] input", "e => { e.value = '500';"
                              " e.dispatchEvent(new Event('input', {bubbles: true}));"
                              " e.dispatchEvent(new Event('change', {bubbles: true})); }")
        wait_js(page, "app.live.run.config.immigrants > 0", timeout=30_000)
        page.screenshot(path=SHOTS / "54-evolution-run-form.png")

        # back to the GAN: its knobs again; the evolution run is not steered by them
        page.select_option("#family", "gan")
        assert "objective" in knob_names(page) and "population" not in knob_names(page)
        assert js(page, "document.querySelector(\"[data-knob='lr_g'] input\").disabled") is False
        stop(server, run_id)
