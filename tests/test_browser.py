"""The dashboard in real Chromium against a real server: start the collapse preset, watch frames
arrive and the occupancy bars move, switch to WGAN-GP mid-run and see the marker and the new
config, open a compare grid of two runs, reload shared links, replay a finished run.

Screenshots go to tests/screenshots/ (ignored by git) for a person to look at.
Without Chromium these tests skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os

import pytest
from browser_harness import (
    SHOTS,
    browser_fixture,
    js,
    open_page,
    require_chromium,
    running_server,
    server_fixture,
    wait_js,
    watched_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.slow]

VIEWPORT = {"width": 1280, "height": 720}
# the collapse preset, bounded so a run ends on its own if a test dies half-way
LIVE_HASH = "#preset=collapse-ring8&steps=200000"

require_chromium()


server = server_fixture(max_workers=3)
browser = browser_fixture()


@pytest.fixture()
def page(browser):
    with watched_page(browser, viewport=VIEWPORT) as pg:
        yield pg


def test_live_run_steer_share_and_replay(page, server, browser):
    open_page(page, server + "/" + LIVE_HASH)
    assert page.input_value("#preset") == "collapse-ring8"
    assert "Mode collapse on the ring" in page.inner_text("#preset-help")  # the lesson text
    page.screenshot(path=SHOTS / "01-ready.png")

    page.click("#start")
    wait_js(page, "L.perf.frames.length >= 3", timeout=90_000)
    run_id = js(page, "app.live.run.id")
    assert f"run={run_id}" in page.url
    assert page.inner_text("#conn-text") == "live"

    # the occupancy bars follow the frames: the drawn occupancy changes between frames
    first = js(page, "Array.from(app.live.charts.lastOcc)")
    page.wait_for_function(
        "(first) => { const o = Array.from(window.collapseLab.app.live.charts.lastOcc);"
        " return o.some((v, i) => Math.abs(v - first[i]) > 1e-6); }", arg=first, timeout=60_000)
    assert page.inner_text("#m-step") not in ("", "–")
    assert page.inner_text("#m-device") == "cpu"
    page.screenshot(path=SHOTS / "02-live-collapse.png")

    # switch the objective to WGAN-GP mid-run
    page.select_option("#knob-objective", "wgan-gp")
    wait_js(page, "app.live.run.config.objective === 'wgan-gp'", timeout=60_000)
    wait_js(page, "app.live.charts.markers.some(m => m.label.includes('objective → wgan-gp'))")
    marker = js(page, "app.live.charts.markers.find(m => m.label.includes('wgan-gp'))")
    # the marker is on the Plotly curves (a shape at its step, labelled) and in the title bar
    shapes = js(page, "document.getElementById('chart-loss').layout.shapes.map(s => s.x0)")
    assert marker["step"] in shapes
    page.wait_for_selector("#chart-loss .annotation-text:has-text('objective → wgan-gp')")
    assert "wgan-gp" in page.inner_text("#run-title")
    assert page.input_value("#knob-objective") == "wgan-gp"
    # the GP term turns on under WGAN-GP, so its curve is shown
    wait_js(page, "app.live.log.ticks.some(t => t.term_gp > 0)")
    page.wait_for_timeout(1500)  # a curve turn or two, for the screenshot
    page.screenshot(path=SHOTS / "03-after-wgan-gp.png")

    # a shared link opens the same run with the same view (new tab, same URL)
    shared = page.url
    other = browser.new_page(viewport=VIEWPORT)
    try:
        open_page(other, shared)
        wait_js(other, f"app.live.run && app.live.run.id === '{run_id}'")
        wait_js(other, "app.live.charts.markers.some(m => m.label.includes('wgan-gp'))")
        wait_js(other, "L.perf.frames.length >= 1", timeout=60_000)
        assert other.input_value("#knob-objective") == "wgan-gp"
        assert other.input_value("#preset") == "collapse-ring8"
        other.screenshot(path=SHOTS / "04-shared-link.png")
    finally:
        other.close()

    # pause (space), one step (s), stop: then the run is over and replays with a scrubber
    page.locator("body").focus()
    page.keyboard.press("Space")
    wait_js(page, "app.live.run.status === 'paused'", timeout=30_000)
    step_before = js(page, "app.live.log.last.step")
    page.keyboard.press("s")
    page.click("#stop")
    wait_js(page, "['done', 'failed'].includes(app.live.run.status)", timeout=60_000)
    assert js(page, "app.live.run.status") == "done", js(page, "app.live.run.reason")
    page.wait_for_selector("#scrubber:not([hidden])", timeout=30_000)
    n = int(page.get_attribute("#scrub", "max"))
    assert n >= 1
    page.fill("#scrub", "0")
    page.dispatch_event("#scrub", "input")
    wait_js(page, "app.state.replay !== null")
    assert "replay=" in page.url
    assert js(page, "app.live.charts.cursor") is not None
    assert js(page, "app.live.log.last.step") >= step_before
    page.screenshot(path=SHOTS / "05-replay.png")

    # the history lists it; a replay link reopens at the same step
    page.click(".tab[data-view='history']")
    page.wait_for_selector(f"tr[data-run='{run_id}'] .badge[data-status='done']")
    page.screenshot(path=SHOTS / "06-history.png")
    replay_url = shared.split("#")[0] + f"#run={run_id}&replay={js(page, 'app.state.replay')}"
    open_page(page, replay_url)  # (only the hash differs: the same page opens it)
    # the replay opened again by the link, not the scrubber left from before
    wait_js(page, f"app.live.replay && app.live.run.id === '{run_id}' && app.state.view === 'live'"
                  " && !document.getElementById('scrubber').hidden", timeout=30_000)
    assert page.input_value("#scrub") == "0"


def test_switch_a_running_run_to_a_remedy_twin(page, server):
    """The classroom move: a collapse run takes its twin's knobs in one live change."""
    open_page(page, server + "/" + LIVE_HASH)
    page.click("#start")
    wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
    # the run already has its preset's settings: nothing to switch to
    assert page.is_hidden("#apply-preset")
    claims = "app.live.charts.markers.filter(m => m.kind === 'claim').length"
    wait_js(page, f"{claims} === 1")  # collapse-ring8's calibrated claim, marked at its step
    page.select_option("#preset", "wgan-gp-ring8")
    assert page.is_visible("#apply-preset")
    assert "objective" in page.get_attribute("#apply-preset", "title")
    page.click("#apply-preset")
    wait_js(page, "app.live.run.config.objective === 'wgan-gp' && app.live.run.config.gp === 1"
                  " && app.live.run.config.beta1 === 0.5 && app.live.run.config.lr_g === 0.0005")
    assert js(page, "app.live.run.config.steps") == 200_000  # long enough already: left alone
    wait_js(page, "app.live.charts.markers.some(m => m.label.includes('objective → wgan-gp'))")
    assert page.is_hidden("#apply-preset")  # done: the run now has the preset's knobs
    assert js(page, claims) == 0  # collapse-ring8's claim is about knobs the run no longer has
    page.wait_for_timeout(1500)
    page.screenshot(path=SHOTS / "14-switched-to-twin.png")
    page.click("#stop")
    wait_js(page, "app.live.run.status === 'done'", timeout=60_000)


def test_compare_grid_of_two_runs(page, server):
    open_page(page, server + "/#view=compare&preset=collapse-ring8&steps=200000")
    assert page.is_visible("#view-compare")
    checked = page.eval_on_selector_all(
        "#compare-choices input:checked", "els => els.map(e => e.value)")
    assert checked == ["nsgan", "wgan-gp"]
    page.click("#compare-start")
    page.wait_for_selector(".cmp-card >> nth=1")
    assert page.locator(".cmp-card").count() == 2
    page.wait_for_function(
        "() => [...document.querySelectorAll('.cmp-card .cmp-metrics span:last-child')]"
        ".every(s => /step \\d+/.test(s.textContent))", timeout=90_000)
    labels = page.eval_on_selector_all(".cmp-card header b", "els => els.map(e => e.textContent)")
    assert any("wgan-gp" in s for s in labels) and any("nsgan" in s for s in labels)
    # both runs are on the shared curves
    wait_js(page, "document.getElementById('cmp-modes').data.every(t => t.x.length > 0)",
            timeout=60_000)
    assert js(page, "document.getElementById('cmp-modes').data.length") == 2
    page.screenshot(path=SHOTS / "07-compare.png", full_page=True)

    # the link holds the group: reloading shows the same two runs
    group = js(page, "app.state.group")
    ids = js(page, "app.state.runs")
    assert group and len(ids) == 2 and f"group={group}" in page.url
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector(".cmp-card >> nth=1")
    again = page.eval_on_selector_all(".cmp-card", "els => els.map(e => e.dataset.run)")
    assert again == ids
    # stop the group so the server is idle for the next test
    for rid in ids:
        page.request.post(f"{server}/api/runs/{rid}/control", data={"action": "stop"})


def test_link_with_only_a_config_and_unknown_run(page, server):
    open_page(page, server + "/#run=zz404missing&preset=wgan-gp-ring8&lr_g=0.0003&arrows=1")
    page.wait_for_selector("#banner:not([hidden])")
    assert "not on this server" in page.inner_text("#banner")
    # the settings of the link are loaded, ready to start
    assert page.input_value("#knob-objective") == "wgan-gp"
    assert page.input_value("#preset") == "wgan-gp-ring8"
    assert page.inner_text("[data-knob='lr_g'] output") == "3e−4"
    assert page.is_checked("#show-arrows")
    assert js(page, "app.state.run") is None
    page.screenshot(path=SHOTS / "08-config-link.png")


def test_bad_setting_is_named(page, server):
    open_page(page, server + "/#lr_g=5&objective=sgd")
    page.wait_for_selector("#toast:not([hidden])")
    text = page.inner_text("#toast")
    assert "lr_g" in text and "objective" in text
    assert page.input_value("#knob-objective") == "nsgan"  # the default stays


def test_queued_then_server_lost_and_back(browser, tmp_path):
    """Queue: a run past the worker cap says it waits. Connection: a dead server shows
    'reconnecting', and when a server is back on the same address the page reconnects by itself
    and shows the run as interrupted (the server died while it ran)."""
    import httpx
    from browser_harness import free_port

    port = free_port()
    body = {"preset": "collapse-ring8", "steps": 200000}
    pg = browser.new_page(viewport=VIEWPORT)
    try:
        with running_server(tmp_path, max_workers=1, port=port) as url:
            first = httpx.post(f"{url}/api/runs", json=body).json()
            # another shape of step than the first run's: it cannot join its worker, and waits
            second = httpx.post(f"{url}/api/runs", json=dict(body, n_critic=2)).json()
            assert second["status"] == "queued"
            open_page(pg, f"{url}/#run={second['id']}")
            pg.wait_for_selector("#banner:not([hidden])")
            assert "queued" in pg.inner_text("#banner")
            pg.screenshot(path=SHOTS / "09-queued.png")
            open_page(pg, f"{url}/#run={first['id']}")
            wait_js(pg, "L.perf.frames.length >= 2", timeout=90_000)
            # every text the connection badge shows from now on: the server's shutdown may take
            # longer than the page's first retries (~6 s), so "reconnecting" may be over by the
            # time the server has exited
            pg.evaluate("""() => { const t = document.getElementById('conn-text');
                window.__connTexts = [];
                new MutationObserver(() => window.__connTexts.push(t.textContent))
                  .observe(t, {childList: true, characterData: true, subtree: true}); }""")
        # the server is gone
        pg.wait_for_function("() => ['reconnecting', 'unreachable']"
                             ".includes(document.getElementById('conn').dataset.state)",
                             timeout=20_000)
        said = js(pg, "window.__connTexts")
        assert any(t.startswith("reconnecting") for t in said), said
        pg.screenshot(path=SHOTS / "10-reconnecting.png")
        # after a few failed attempts it says so, and keeps trying
        pg.wait_for_function(
            "() => document.getElementById('conn').dataset.state === 'unreachable'", timeout=30_000)
        assert "server unreachable" in pg.inner_text("#conn-text")
        assert "unreachable" in pg.inner_text("#banner")
        pg.screenshot(path=SHOTS / "11-unreachable.png")
        with running_server(tmp_path, max_workers=1, port=port) as url:
            wait_js(pg, "app.live.run.status === 'interrupted'", timeout=60_000)
            pg.wait_for_function(
                "() => document.getElementById('conn-text').textContent === 'run over'")
            assert "interrupted" in pg.inner_text("#m-status")
            assert pg.is_hidden("#banner")
            pg.screenshot(path=SHOTS / "12-interrupted.png")
            # an interrupted run goes on from its checkpoint: the Pause button says Resume
            assert pg.inner_text("#pause") == "Resume" and pg.is_enabled("#pause")
            frames = js(pg, "L.perf.frames.length")
            pg.click("#pause")
            wait_js(pg, "app.live.run.status === 'running'", timeout=90_000)
            wait_js(pg, f"L.perf.frames.length > {frames}", timeout=90_000)
            assert pg.inner_text("#conn-text") == "live"
            httpx.post(f"{url}/api/runs/{first['id']}/control", json={"action": "stop"})
    finally:
        pg.close()


def test_crashed_worker_shows_failed_with_reason(page, server):
    """A worker that dies mid-run fails its own run: the page says so, with the reason."""
    import signal

    import httpx

    body = {"preset": "collapse-ring8", "steps": 200000}
    run = httpx.post(f"{server}/api/runs", json=body).json()
    open_page(page, f"{server}/#run={run['id']}")
    wait_js(page, "L.perf.frames.length >= 2", timeout=90_000)
    pid = httpx.get(f"{server}/api/runs/{run['id']}").json()["provenance"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_js(page, "app.live.run.status === 'failed'", timeout=30_000)
    page.wait_for_selector("#banner:not([hidden])")
    text = page.inner_text("#banner")
    assert "failed" in text and "worker died" in text
    assert "failed" in page.inner_text("#m-status")
    page.screenshot(path=SHOTS / "13-failed.png")
    # the other runs of the server are untouched: it still answers and starts runs
    assert httpx.get(f"{server}/api/health").json()["status"] == "ok"
