"""The dashboard's teaching tools and first-visit fixes, in real Chromium against a real server:
data before any run, runs that train until stopped, a bad field that stops Start, slow motion,
D-only / G-only steps, keys after a click, the page's frame rate, the manifold layer asked of
the server, the preset's claim on the charts, the compare grid's titles and a paused run of a group,
the PNG's title in a replay, and the phone layout.

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

VIEWPORT = {"width": 1280, "height": 720}

require_chromium()


server = server_fixture(max_workers=3)
browser = browser_fixture()


@pytest.fixture()
def page(browser):
    with watched_page(browser, viewport=VIEWPORT, accept_downloads=True) as pg:
        yield pg


def set_range(page, selector: str, pos: int) -> None:
    """Move a slider as a person does: the value, then its input and change events."""
    page.eval_on_selector(selector, "(e, v) => { e.value = String(v);"
                          " e.dispatchEvent(new Event('input', {bubbles: true}));"
                          " e.dispatchEvent(new Event('change', {bubbles: true})); }", pos)


def stop_all(server: str) -> None:
    for r in httpx.get(f"{server}/api/runs").json()["runs"]:
        if r["status"] in ("running", "paused", "queued"):
            httpx.post(f"{server}/api/runs/{r['id']}/control", json={"action": "stop"})


def control_bodies(page) -> list[dict]:
    """Every control body the page POSTs from now on (run buttons and keys use HTTP)."""
    sent: list[dict] = []

    def on_request(req):
        if req.method == "POST" and req.url.endswith("/control"):
            sent.append(json.loads(req.post_data))

    page.on("request", on_request)
    return sent


def test_first_visit_data_first_then_a_run_until_stopped(page, server):
    open_page(page, server + "/#preset=collapse-ring8")
    # data first: the ring's real samples and centres are drawn before any run
    wait_js(page, "app.live.data && app.live.data.name === 'ring8'")
    assert js(page, "app.live.samples.showing") == "data"
    assert js(page, "app.live.samples.real.n") == 2500
    assert "press Start run" in page.inner_text("#samples-note")
    # the lesson text is whole: nothing hidden behind a scrollbar
    assert js(page, "(() => { const e = document.getElementById('preset-help');"
                    " return e.scrollHeight <= e.clientHeight + 1; })()")
    # the length is in sight, and empty means until stopped
    assert page.is_visible("#knob-steps")
    assert page.get_attribute("#knob-steps", "placeholder") == "until stopped"
    assert page.input_value("#knob-steps") == ""
    page.screenshot(path=SHOTS / "20-first-visit.png")
    page.select_option("#knob-dataset", "grid25")
    wait_js(page, "app.live.data && app.live.data.name === 'grid25'")
    assert "25 modes" in page.inner_text("#samples-note")
    page.select_option("#knob-dataset", "ring8")

    # a field that holds no value stops Start, naming it (it used to start 3,000 steps)
    before = len(httpx.get(f"{server}/api/runs").json()["runs"])
    page.fill("#knob-steps", "-5")
    page.dispatch_event("#knob-steps", "change")
    page.click("#start")
    page.wait_for_selector("#toast:not([hidden])")
    assert "Not started" in page.inner_text("#toast") and "steps" in page.inner_text("#toast")
    assert js(page, "app.live.run") is None
    assert len(httpx.get(f"{server}/api/runs").json()["runs"]) == before

    # empty again: the run trains until stopped, the preset's claim is marked at its step
    page.fill("#knob-steps", "")
    page.dispatch_event("#knob-steps", "change")
    page.click("#start")
    wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
    run_id = js(page, "app.live.run.id")
    assert httpx.get(f"{server}/api/runs/{run_id}").json()["config"]["steps"] == 0
    wait_js(page, "app.live.charts.markers.some(m => m.kind === 'claim' && m.step === 3000)")
    wait_js(page, "document.getElementById('chart-modes').layout.shapes.some(s => s.x0 === 3000)")
    assert js(page, "app.live.charts.markers.find(m => m.kind === 'claim').label") == (
        "claim: ≤ 3 of 8 modes covered")
    # the page says how fast it draws (a slow machine from a stuck run)
    page.wait_for_function(
        "() => /frames\\/s/.test(document.getElementById('conn-rate').textContent)",
        timeout=30_000)
    # the modes chart draws reverse KL against steps on its right axis
    wait_js(page, "document.getElementById('chart-modes').data[3].y.some(v => v !== null)")
    assert js(page, "document.getElementById('chart-modes').data[3].name") == "reverse KL →"
    page.select_option("#metric", "hopping")
    assert "metric=hopping" in page.url
    assert js(page, "document.getElementById('chart-modes').data[3].name") == "hopping →"
    page.click("#stop")
    wait_js(page, "app.live.run.status === 'done'", timeout=60_000)
    # a frame may say "done" a moment before the status message that carries the reason
    wait_js(page, "(app.live.run.reason || '').startsWith('stopped at step')", timeout=30_000)
    assert js(page, "document.getElementById('m-status').textContent").startswith("done: stopped")


def test_slow_motion_split_steps_and_keys_after_a_click(page, server):
    open_page(page, server + "/#preset=collapse-ring8&steps=200000")
    sent = control_bodies(page)
    page.click("#start")
    wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
    run_id = js(page, "app.live.run.id")

    # slow motion: 2 steps a second, ticking every step so each one is drawn; back to unlimited
    # restores the run's tick interval
    set_range(page, "#knob-speed", 1)  # the second stop: 2 steps/s
    wait_js(page, "app.live.run.config.speed === 2 && app.live.run.config.tick_every === 1")
    assert page.inner_text("[data-knob='speed'] output") == "2 steps/s"
    wait_js(page, "app.live.charts.markers.some(m => m.label.includes('speed 2'))")
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "21-slow-motion.png")
    set_range(page, "#knob-speed", 11)  # the last stop: unlimited
    wait_js(page, "app.live.run.config.speed === 0 && app.live.run.config.tick_every === 20")

    # pause with the mouse, one step with the mouse: then space resumes (focus left the button)
    page.click("#pause")
    wait_js(page, "app.live.run.status === 'paused'", timeout=30_000)
    for b in ("#step", "#step-d", "#step-g"):
        assert page.is_enabled(b)
    page.click("#step-d")
    page.click("#step-g")
    page.click("#step")
    page.keyboard.press("d")
    page.keyboard.press("g")
    page.keyboard.press("s")
    # each press sends its POST once the page gets to it (a busy machine: not within 300 ms)
    wait_until(page, lambda: len([b for b in sent if b.get("action") == "step"]) >= 6,
               what="six step requests")
    steps = [b for b in sent if b.get("action") == "step"]
    assert [b.get("part") for b in steps] == ["d", "g", "both", "d", "g", "both"]
    assert all(b["n"] == 1 for b in steps)
    page.keyboard.press("Space")
    wait_js(page, "app.live.run.status === 'running'", timeout=30_000)
    assert sent[-1] == {"action": "resume"}
    for b in ("#step", "#step-d", "#step-g"):
        assert page.is_disabled(b)
    httpx.post(f"{server}/api/runs/{run_id}/control", json={"action": "stop"})
    wait_js(page, "app.live.run.status === 'done'", timeout=60_000)


def test_manifold_layer_is_asked_of_the_server_and_drawn(page, server):
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(p)))
    open_page(page, server + "/#preset=collapse-ring8&steps=200000")
    page.click("#start")
    wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
    assert not any("layers" in str(p) for p in sent)  # off by default: nothing asked
    page.check("#show-manifold")
    assert "manifold=1" in page.url

    def layers() -> list[dict]:
        return [json.loads(p) for p in sent if "layers" in p]

    wait_until(page, lambda: {"layers": {"manifold": True}} in layers(), what="manifold asked")
    assert page.is_visible("#manifold-note")
    # the server adds G's image of its latent grid to the frames from now on, and it is drawn
    wait_js(page, "app.live.shown && app.live.shown.manifold", timeout=60_000)
    side = js(page, "app.live.shown.manifoldSide")
    assert side >= 2 and js(page, "app.live.shown.manifold.length") == side * side * 2
    assert f"{side}×{side} grid of noise, z[0], z[1] over ±2σ, the other 14 of z fixed at 0" in (
        page.inner_text("#manifold-note"))  # collapse-ring8's latent size is 16
    page.screenshot(path=SHOTS / "22-manifold-live.png")
    # a frame that comes without one (between the server's decisions) borrows the last one, when
    # it is at most two ticks older: the layer does not blink; an older one is not borrowed
    borrowed = page.evaluate("""() => { const live = window.collapseLab.app.live;
        const f = live.shown, every = live.run.config.tick_every, last = live.lastManifold.step;
        const near = { ...f, manifold: null, manifoldSide: 0, step: last + every };
        const far = { ...f, manifold: null, manifoldSide: 0, step: last + 5 * every };
        live.keepManifold(near); live.keepManifold(far);
        return [near.manifoldSide, far.manifold === null]; }""")
    assert borrowed == [side, True]
    page.uncheck("#show-manifold")  # off again: the server is told
    wait_until(page, lambda: layers()[-1] == {"layers": {"manifold": False}},
               what="manifold off told")
    page.check("#show-manifold")
    # the drawing layer: a frame carrying G's image of a 3×3 grid (the protocol's encoder in the
    # page) is drawn as teal lines over the samples
    colour = page.evaluate("""async () => {
        const P = await import('/js/protocol.js');
        const live = window.collapseLab.app.live;
        const f = live.shown;
        const side = 3, pts = [];
        for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) pts.push(-1 + c, -1 + r);
        const buf = P.encode({ ...f, scalars: { ...f.scalars, manifold_note: 'z[0], z[1]' },
                               samples: new Float32Array(0), n: 0, modes: new Uint8Array(0),
                               manifold: Float32Array.from(pts), manifoldSide: side });
        live.close();
        const m = P.decode(buf);
        live.samples.draw(m);
        live.noteManifold(m);
        const c = document.getElementById('samples');
        const ext = live.samples.extent(m);
        // the pixel where the manifold's middle row crosses x = 0.5 (world), y = 0
        const r = c.getBoundingClientRect();
        const legend = 46 * live.samples.dpr, pad = 6 * live.samples.dpr;
        const w = c.width - legend, h = c.height;
        const s = Math.min((w - 2 * pad) / (ext[1] - ext[0]), (h - 2 * pad) / (ext[3] - ext[2]));
        const ox = pad + ((w - 2 * pad) - s * (ext[1] - ext[0])) / 2;
        const oy = pad + ((h - 2 * pad) - s * (ext[3] - ext[2])) / 2;
        const px = Math.round(ox + (0.5 - ext[0]) * s), py = Math.round(oy + (ext[3] - 0) * s);
        let best = null;
        const d = c.getContext('2d').getImageData(px - 2, py - 2, 5, 5).data;
        for (let i = 0; i < d.length; i += 4) {
          const teal = d[i + 2] > d[i] + 40 && d[i + 1] > d[i] + 30;
          if (teal) best = [d[i], d[i + 1], d[i + 2]];
        }
        return best;
    }""")
    assert colour is not None, "no manifold line drawn where G's grid runs"
    assert "3×3 grid" in page.inner_text("#manifold-note")
    page.screenshot(path=SHOTS / "22-manifold-drawn.png")
    stop_all(server)


def test_compare_titles_and_a_paused_run_of_a_group(page, server):
    open_page(page, server + "/#view=compare&preset=collapse-ring8&steps=200000")
    page.check("#compare-choices input[value='minibatch_disc']")
    page.click("#compare-start")
    page.wait_for_selector(".cmp-card >> nth=2")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cmp-card .cmp-metrics span:last-child')]"
        ".every(s => /step \\d+/.test(s.textContent))", timeout=90_000)
    titles = page.eval_on_selector_all(".cmp-card header b", "els => els.map(e => e.textContent)")
    assert titles == ["nsgan", "wgan-gp", "nsgan + minibatch_disc"]
    # whole, not cut with an ellipsis
    assert page.eval_on_selector_all(
        ".cmp-card header b", "els => els.every(e => e.scrollWidth <= e.clientWidth + 1)")
    page.screenshot(path=SHOTS / "23-compare.png", full_page=True)
    ids = js(page, "app.state.runs")
    badge = "(id) => document.querySelector(`.cmp-card[data-run='${id}'] .badge`).textContent"
    # pausing one run of the group pauses it alone; its sibling trains on and says so
    httpx.post(f"{server}/api/runs/{ids[0]}/control", json={"action": "pause"})
    page.wait_for_function(f"(id) => ({badge})(id) === 'paused'", arg=ids[0], timeout=30_000)
    page.wait_for_timeout(1500)  # frames encoded before the pause must not turn it back
    assert page.evaluate(f"(id) => ({badge})(id)", ids[0]) == "paused"
    assert page.evaluate(f"(id) => ({badge})(id)", ids[1]) == "running"
    # the paused run's live view, joining after the pause, says paused (the hub's newest frame
    # was encoded while it ran) and its Pause button resumes it
    page.click(f".cmp-card[data-run='{ids[0]}'] button:has-text('Open')")
    wait_js(page, f"app.live.run && app.live.run.id === '{ids[0]}' && L.perf.frames.length >= 1",
            timeout=60_000)
    page.wait_for_timeout(1500)
    assert js(page, "app.live.run.status") == "paused"
    assert page.inner_text("#pause") == "Resume"
    page.click("#pause")
    wait_js(page, "app.live.run.status === 'running'", timeout=30_000)
    stop_all(server)


def test_png_of_a_replay_is_titled_with_the_scrubbed_step(page, server):
    body = {"preset": "collapse-ring8", "steps": 400, "tick_every": 10}
    run = httpx.post(f"{server}/api/runs", json=body).json()
    for _ in range(600):
        if httpx.get(f"{server}/api/runs/{run['id']}").json()["status"] == "done":
            break
        page.wait_for_timeout(200)
    open_page(page, f"{server}/#run={run['id']}")
    page.wait_for_selector("#scrubber:not([hidden])", timeout=30_000)
    # 41 ticks, a frame recorded every 2nd and the last: 22 positions to scrub
    frames = int(page.get_attribute("#scrub", "max")) + 1
    assert frames >= 20, frames
    page.fill("#scrub", "3")
    page.dispatch_event("#scrub", "input")
    step = js(page, "app.live.shown.step")
    assert step < 400 and page.inner_text("#scrub-count") == f"frame 4 of {frames}"
    with page.expect_download() as dl:
        page.click("#png")
    assert dl.value.suggested_filename == f"collapse-lab-{run['id']}-step{step}.png"
    png = js(page, "app.lastPNG")
    assert png["title"].endswith(f"· step {step}") and png["step"] == step
    labels = [m[0] for m in png["metrics"]]
    assert {"modes covered", "reverse KL", "high quality"} <= set(labels)
    dl.value.save_as(SHOTS / "24-export.png")
    page.screenshot(path=SHOTS / "25-replay.png")


def test_phone_width_puts_the_run_buttons_first(browser, server):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                              device_scale_factor=2)
    pg = ctx.new_page()
    try:
        open_page(pg, server + "/#preset=collapse-ring8")
        box = pg.locator("#start").bounding_box()
        assert box["y"] + box["height"] < 844 * 1.2, box  # within the first screen or so
        assert pg.locator("#samples").bounding_box()["y"] > box["y"]
        # metric labels wrap rather than being cut
        assert pg.eval_on_selector_all(
            ".card-label", "els => els.every(e => e.scrollWidth <= e.clientWidth + 1)")
        # "Switch this run to the preset" is a button that looks like one
        weight = pg.eval_on_selector("#apply-preset", "e => getComputedStyle(e).fontWeight")
        assert int(weight) >= 600
        pg.screenshot(path=SHOTS / "26-phone-first-visit.png", full_page=False)
    finally:
        ctx.close()


OCC_EMPTY = """() => {
  const p = document.querySelector('.occ-panel');
  const after = getComputedStyle(p, '::after');
  const top = p.getBoundingClientRect().top + parseFloat(after.top);
  const key = p.querySelector('figcaption').getBoundingClientRect().bottom;
  const sub = p.querySelector('.occ-sub');
  return {text: after.content.length > 20, top, key,
          sub: getComputedStyle(sub).visibility, subTop: sub.getBoundingClientRect().top};
}"""


@pytest.mark.parametrize("width", [1280, 390])
def test_occupancy_empty_text_overlaps_neither_key_nor_caption(browser, server, width):
    # before any run the occupancy panel says what it will show: its text starts under the
    # caption and colour key, and the "over time" caption under it waits for the run
    with watched_page(browser, viewport={"width": width, "height": 844}) as pg:
        open_page(pg, server + "/")
        wait_js(pg, "document.getElementById('view-live').dataset.empty === '1'")
        g = pg.evaluate(OCC_EMPTY)
        assert g["text"], g
        assert g["top"] >= g["key"], g
        assert g["sub"] == "hidden", g
        pg.locator(".occ-panel").screenshot(path=SHOTS / f"27-occupancy-empty-{width}.png")


def test_keys_hint_names_d_and_g_steps_only_for_a_family_with_them(page, server):
    # a GAN's page lists the d and g keys beside its D step and G step buttons; a genetic
    # algorithm has no discriminator or generator, so neither its buttons nor its keys hint do
    open_page(page, server + "/#family=gan")
    wait_js(page, "document.body.dataset.generator === '1'")
    assert "D step" in page.inner_text("p.keys") and page.is_visible(".gd-keys")
    open_page(page, server + "/#family=evolution")
    wait_js(page, "document.body.dataset.generator === '0'")
    hint = page.inner_text("p.keys")
    assert "D step" not in hint and "G step" not in hint, hint
    assert "step" in hint and "stop" in hint, hint


def test_card_values_with_units_are_not_cut_at_1280(page, server):
    # a card 95 px wide cut "100.0 %" to "100.0…" and "5.819 nats" to "5.819…": the unit is
    # set smaller and, where both still do not fit, goes under the number
    open_page(page, server + "/#family=decoding")
    wait_js(page, "!!document.getElementById('m-lm_loss')")
    js(page, "app.live.cards.update({hq_fraction: 1, lm_loss: 5.819, logprob: -14.65,"
       " modes_covered: 2, step: 12345}, 6)")
    cards = page.eval_on_selector_all(
        ".card-value", "els => els.map(e => [e.id, e.textContent, e.scrollWidth, e.clientWidth])")
    shown = {c[0]: c[1] for c in cards}
    assert shown["m-hq"] == "100.0 %" and shown["m-lm_loss"] == "5.819 nats", shown
    assert shown["m-logprob"] == "-14.65 nats", shown
    cut = [c for c in cards if c[2] > c[3]]
    assert not cut, cut


def test_phone_width_stacks_the_panels_of_a_family_without_samples(browser, server):
    # a family without 2-D samples (decoding) lays its panels out in two columns on a wide
    # screen; at a phone's width they stack, each the page's width, like every other family's
    with watched_page(browser, viewport={"width": 390, "height": 844}) as pg:
        open_page(pg, server + "/#family=decoding")
        wait_js(pg, "document.body.dataset.samples === '0'")
        boxes = pg.eval_on_selector_all(
            ".panels > .panel", "els => els.filter(e => e.offsetParent)"
            ".map(e => [e.getBoundingClientRect().left, e.getBoundingClientRect().width])")
        assert len(boxes) >= 2, boxes
        assert all(w > 300 for _, w in boxes), boxes
        assert len({round(x) for x, _ in boxes}) == 1, boxes


def test_a_family_without_samples_asks_for_no_data_preview(page, server):
    # decoding's data are sentences, not 2-D points: the page has no samples panel for it and
    # asks for no preview of them (which the server refuses, and the page showed as an error)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/preview" in r.url else None)
    open_page(page, server + "/#family=decoding")
    wait_js(page, "document.body.dataset.samples === '0'")
    page.wait_for_timeout(2000)
    assert not [u for u in asked if "templates" in u], asked
    assert "could not load" not in page.inner_text("body")
    # a family with 2-D samples still draws its data first
    open_page(page, server + "/#family=evolution")
    wait_js(page, "app.live.data && app.live.data.name === 'ring8'")
