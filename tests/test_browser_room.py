"""The page in the room, in real Chromium against a real server: a lesson step's named panel on
screen beside the narration at 1280×800, 1920×1080 (also with the projector's larger type) and on
a phone; compare cards and legends that say what differs; a first visit's welcome, hints and
neutral card; Reset; slider keys that send one change; a share link without slow motion's tick
rate; a clean console.

Screenshots go to tests/screenshots/ (ignored by git). Without Chromium these tests skip with the
reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import json

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
    wait_until,
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

require_chromium()

server = server_fixture(max_workers=3)
browser = browser_fixture()

SIZES = {"1280x800": {"width": 1280, "height": 800},
         "1920x1080": {"width": 1920, "height": 1080},
         "phone": {"width": 390, "height": 844}}

# where an element is, in viewport pixels, and where the narration is
RECT = """(sel) => { const f = document.querySelector(sel); if (!f) return null;
  const e = f.closest('figure') || f;
  const r = e.getBoundingClientRect();
  return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
          shown: e.offsetParent !== null}; }"""


def stop_all(server: str) -> None:
    for r in httpx.get(f"{server}/api/runs").json()["runs"]:
        if r["status"] in ("running", "paused", "queued"):
            httpx.post(f"{server}/api/runs/{r['id']}/control", json={"action": "stop"})


def console_errors(page) -> list[str]:
    """Every console error the page logs from now on."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def assert_beside_narration(page, target: str, size: dict) -> None:
    """`target` (a lesson's named panel) is on screen and the narration does not cover it."""
    t = page.evaluate(RECT, target)
    n = page.evaluate(RECT, "#lesson")
    assert t and t["shown"], f"{target} is not shown"
    assert n and n["shown"]
    h, w = size["height"], size["width"]
    # the panel's top is in the viewport below the narration's bottom edge (a phone stacks them),
    # or the panel sits to the narration's right (the narration is the left column)
    beside = t["left"] >= n["right"] - 1
    below = t["top"] >= n["bottom"] - 1
    assert beside or below, (target, t, n)
    assert 0 <= t["top"] < h and t["left"] >= 0 and t["right"] <= w + 1, (target, t, size)
    # a panel that fits the free space is whole on screen
    free = h - (0 if beside else n["bottom"])
    if t["height"] <= free:
        assert t["bottom"] <= h + 1, (target, t, size)
    # the narration's own buttons stay on screen
    nav = page.evaluate(RECT, "#lesson-next")
    assert nav and 0 <= nav["top"] and nav["bottom"] <= h + 1, nav


def test_a_lesson_step_shows_what_it_names_beside_its_text(browser, server):
    # the lesson's names for panels, and an element of each (its figure is the panel)
    targets = {"samples": "#samples-panel", "occupancy": "#chart-bars",
               "occupancy-time": "#chart-heat", "losses": "#chart-loss",
               "modes": "#chart-modes", "cards": "#cards", "replay": "#scrubber"}
    with watched_page(browser, viewport=SIZES["1280x800"]) as page:
        errors = console_errors(page)
        open_page(page, server + "/#preset=collapse-ring8")
        page.click("#lessons-open")
        page.click('.lesson-choice[data-lesson="collapse-ring"]')
        wait_js(page, "app.live.run && ['running', 'queued'].includes(app.live.run.status)",
                timeout=60_000)
        lesson = httpx.get(f"{server}/api/lessons/collapse-ring").json()
        steps = lesson["steps"]
        replay_at = next(i for i, s in enumerate(steps) if s["action"]["type"] == "replay")
        for name, size in [("1280x800", SIZES["1280x800"]), ("1920x1080", SIZES["1920x1080"]),
                           ("1920x1080-large", SIZES["1920x1080"]), ("phone", SIZES["phone"])]:
            page.set_viewport_size(size)
            if name.endswith("large"):
                page.click("#type-size")
                assert js(page, "document.documentElement.dataset.type") == "large"
            page.evaluate("() => window.collapseLab.app.lessons.move(0)")
            for i, step in enumerate(steps):
                if i == replay_at:  # the replay step needs recorded frames to scrub through
                    wait_js(page, "app.live.log.last && app.live.log.last.step >= 200",
                            timeout=120_000)
                if i:
                    page.click("#lesson-next")
                wait_js(page, f"app.lessons.cursor.step === {i} && !app.lessons.busy",
                        timeout=60_000)
                names = list(step["look"]) + (["replay"] if i == replay_at else [])
                if not names:
                    continue
                page.wait_for_timeout(400)  # the smooth layout settles; the scroll is instant
                highlighted = page.evaluate(
                    "() => [...document.querySelectorAll('.lesson-look')].map(e => e.id)")
                assert highlighted, (name, i)
                # the first thing the step names is on screen beside the text; on a wide screen
                # every panel it names is
                wide = size["width"] > 900
                for look in names if wide else names[:1]:
                    assert_beside_narration(page, targets[look], size)
                if i in (0, replay_at):
                    page.screenshot(path=SHOTS / f"40-lesson-{name}-step{i + 1}.png")
            if name.endswith("large"):
                page.click("#type-size")
        page.click("#lesson-end")
        stop_all(server)
    assert errors == []


def test_compare_cards_and_legends_say_what_differs(browser, server):
    body = {"base": {"preset": "collapse-ring8", "steps": 200000, "seed": 3},
            "variants": [{"lr_g": 0.0002, "beta1": 0.9}, {"lr_g": 0.001, "beta1": 0.5}],
            "label": "collapse recipe vs balanced optimizer"}
    g = httpx.post(f"{server}/api/compare", json=body).json()
    with watched_page(browser, viewport=SIZES["1280x800"]) as page:
        errors = console_errors(page)
        open_page(page, f"{server}/#view=compare&group={g['id']}")
        page.wait_for_selector(".cmp-card header b")
        titles = page.eval_on_selector_all(".cmp-card header b", "bs => bs.map(b => b.textContent)")
        assert titles == ["nsgan · lr_g 2e-4, β1 0.9", "nsgan · lr_g 0.001, β1 0.5"]
        # runs shown: the curves no longer say what they will show
        assert js(page, "document.getElementById('view-compare').dataset.empty") == "0"
        legends = js(page, "document.getElementById('cmp-modes').data.map(t => t.name)")
        assert legends == titles
        assert js(page, "document.getElementById('cmp-loss').data.map(t => t.name)") == titles
        # the short names are the registry's, not the page's
        knobs = {k["name"]: k for k in httpx.get(f"{server}/api/options").json()["knobs"]}
        assert knobs["beta1"]["short"] == "β1" and knobs["lr_g"]["short"] == "lr_g"
        assert knobs["tick_every"]["label"] == page.text_content("label[for='knob-tick_every']")
        # the curves start at each run's first tick, even for a page that opens the grid late
        wait_js(page, "[...app.compare.cards.values()].every(c => c.log.ticks.length >= 3)",
                timeout=90_000)
        before = js(page, "[...app.compare.cards.values()].map(c => c.log.ticks.length)")
        firsts = [httpx.get(f"{server}/api/runs/{r['id']}/history").json()["ticks"][0]["step"]
                  for r in g["runs"]]
        page.evaluate("() => { const a = window.collapseLab.app; const c = a.compare;"
                      " c.show([...c.cards.values()].map(x => x.run), a.state.group); }")
        # the sockets bring ticks at once, the recorded history a moment later: wait for the
        # history (three socket ticks may come first on a busy machine), then the curves start
        # at each run's first tick
        wait_js(page, "[...app.compare.cards.values()].map(c => c.log.ticks.length ? "
                      f"c.log.ticks[0].step : null).join() === '{','.join(map(str, firsts))}'",
                timeout=30_000)
        after = js(page, "[...app.compare.cards.values()].map(c => c.log.ticks.length)")
        assert all(a >= b for a, b in zip(after, before, strict=True)), (before, after)
        assert js(page, "document.getElementById('cmp-modes').data[0].x[0]") == firsts[0]
        page.screenshot(path=SHOTS / "41-compare-what-differs.png")
    for r in g["runs"]:
        httpx.post(f"{server}/api/runs/{r['id']}/control", json={"action": "stop"})
    assert errors == []


def test_a_first_visit_has_a_way_in_and_reset_starts_again(browser, server):
    with watched_page(browser, viewport=SIZES["1280x800"]) as page:
        errors = console_errors(page)
        open_page(page, server + "/")
        # the welcome points to the lessons and a first preset; the empty charts say what comes
        assert page.is_visible("#welcome-lessons") and page.is_visible("#welcome-preset")
        assert js(page, "document.getElementById('view-live').dataset.empty") == "1"
        note = page.evaluate("() => getComputedStyle(document.querySelector('.curve-panel'),"
                             " '::after').content")
        assert "Once a run starts" in note
        # each metric card has a plain hint, from the registry's stats
        stats = {s["name"]: s for s in httpx.get(f"{server}/api/options").json()["stats"]}
        hints = page.eval_on_selector_all(
            ".card[data-stat]", "cs => cs.map(c => [c.dataset.stat,"
            " c.querySelector('.card-hint').textContent])")
        # the cards are the registry's card stats (cards.js): the five mode metrics with their
        # hints, and the step (no hint)
        assert len([t for _, t in hints if t]) == 5
        for name, text in hints:
            assert "card" in stats[name]["show"] and text == stats[name]["hint"]
        page.screenshot(path=SHOTS / "42-first-visit-welcome.png")
        # its words are the family's, and follow the family the page is switched to
        fams = {f["name"]: f["welcome"] for f in
                httpx.get(f"{server}/api/options").json()["families"]}
        assert page.inner_text("#welcome-headline") == fams["gan"]["headline"]
        page.select_option("#family", "vae")
        assert page.inner_text("#welcome-headline") == fams["vae"]["headline"]
        assert page.inner_text("#welcome-preset") == "Try vae-collapse-digits"
        page.select_option("#family", "gan")
        assert page.inner_text("#welcome-hint") == fams["gan"]["hint"]
        page.click("#welcome-preset")
        assert page.input_value("#preset") == "collapse-ring8"
        assert not page.is_visible("#welcome")
        page.click("#start")
        wait_js(page, "app.live.log.last && app.live.log.last.step >= 20", timeout=90_000)
        # before step 500 the covered count is shown but not judged: no red "0 / 8"
        first = js(page, "app.live.log.ticks[0].step")
        assert first < 500
        level = js(page, "document.getElementById('m-covered').parentElement.dataset.level")
        if js(page, "app.live.log.last.step") < 500:
            assert level is None
            assert "500" in page.inner_text("[data-stat='modes_covered'] .card-hint")
        # a single D update shows itself: the samples panel flashes and a line says what moved
        page.click("#pause")
        wait_js(page, "app.live.run.status === 'paused'", timeout=30_000)
        page.click("#step-d")
        page.wait_for_function("() => /One D update/.test(document.getElementById('toast')"
                               ".textContent)")
        assert js(page, "document.getElementById('samples-panel').dataset.stepped") == "d"
        page.click("#pause")  # resume
        wait_js(page, "app.live.run.status === 'running'", timeout=30_000)
        # G's grid folded onto a spot a pixel wide is ringed and drawn magnified in an inset;
        # spread over the ring it is drawn as it is
        insets = page.evaluate("""() => { const s = window.collapseLab.app.live.samples;
            const f = s.lastFrame, side = 6, spot = [], wide = [];
            for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
              spot.push(1.41 + 0.001 * c, 1.41 + 0.001 * r);
              wide.push(-2 + 0.8 * c, -2 + 0.8 * r); }
            const show = { ...s.show }; s.setShow({ ...show, manifold: true });
            s.draw({ ...f, manifold: Float32Array.from(spot), manifoldSide: side });
            const a = s.manifoldInset;
            s.draw({ ...f, manifold: Float32Array.from(wide), manifoldSide: side });
            const b = s.manifoldInset;
            s.setShow(show);
            return [a, b]; }""")
        assert insets[0] is not None and insets[0]["zoom"] > 10 and insets[1] is None, insets
        old = js(page, "app.live.run")
        wait_js(page, "app.live.log.last.step >= 100", timeout=90_000)
        # Reset: the same settings and seed from step 0; the old run stops (kept in History)
        page.click("#reset")
        wait_js(page, f"app.live.run && app.live.run.id !== '{old['id']}'", timeout=30_000)
        page.wait_for_function("() => /^Reset/.test(document.getElementById('toast').textContent)")
        new = js(page, "app.live.run")
        assert new["config"] == old["config"]
        wait_js(page, "app.live.log.last && app.live.log.ticks.length >= 1", timeout=90_000)
        assert js(page, "app.live.log.ticks[0].step") < 100
        page.wait_for_function(
            "(id) => fetch('/api/runs/' + id).then(r => r.json()).then(r => r.status === 'done')",
            arg=old["id"], timeout=60_000)
        page.screenshot(path=SHOTS / "43-after-reset.png")
        stop_all(server)
    assert errors == []


def test_slider_keys_send_one_change_and_a_link_keeps_its_tick_rate(browser, server):
    with watched_page(browser, viewport=SIZES["1280x800"]) as page:
        errors = console_errors(page)
        sent: list[dict] = []
        page.on("websocket", lambda ws: ws.on(
            "framesent", lambda p: sent.append(json.loads(p)) if "set" in str(p) else None))
        open_page(page, server + "/#preset=collapse-ring8&steps=200000")
        page.click("#start")
        wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
        # five presses of an arrow key on the β1 slider: one live change, one chart marker
        page.focus("#knob-beta1")
        for _ in range(5):
            page.keyboard.press("ArrowRight")

        def changes() -> list[dict]:
            return [m["set"] for m in sent if "beta1" in m.get("set", {})]

        # the change goes once the keys settle and the server's cost estimate answers (on a
        # busy machine that can take seconds); no second one follows it
        wait_until(page, lambda: len(changes()) >= 1, what="the β1 change")
        page.wait_for_timeout(1500)
        assert len(changes()) == 1, changes()
        wait_js(page, "app.live.run.config.beta1 !== 0.9", timeout=30_000)
        wait_js(page, "app.live.charts.markers.filter(m => /β1/.test(m.label)).length === 1",
                timeout=30_000)
        # slow motion sets a tick every step; the link keeps the tick rate from before
        page.focus("#knob-speed")
        page.keyboard.press("Home")  # the slowest stop: 1 step a second
        wait_js(page, "app.live.run.config.speed === 1 && app.live.run.config.tick_every === 1",
                timeout=30_000)
        assert "tick_every" not in page.url and "speed=1" in page.url
        assert not any("tick" in m["label"] for m in js(page, "app.live.charts.markers"))
        stop_all(server)
    assert errors == []
