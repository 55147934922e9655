"""Costs said before they bite: in real Chromium, a live change that the server's estimate
says would slow the run more than 3× is held and explained (the expected rate) until the user
applies it or keeps the run as it is; a cheap change goes straight through."""

from __future__ import annotations

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


def test_a_costly_live_change_asks_first(server, browser):
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, server + "/#preset=collapse-ring8&objective=wgan-gp&steps=200000")
        page.click("#start")
        wait_js(page, "app.live.run && app.live.run.status === 'running' && "
                "L.perf.frames.length >= 2", timeout=90_000)
        # minibatch discrimination under wgan-gp's penalty: several times slower
        page.check("#knob-minibatch_disc")
        page.wait_for_selector("#cost-ask:not([hidden])")
        text = page.inner_text("#cost-ask-text")
        assert "would slow this run about" in text and "steps/s" in text, text
        page.screenshot(path=SHOTS / "cost-ask.png")
        page.click("#cost-ask-cancel")
        assert page.is_hidden("#cost-ask")
        page.wait_for_timeout(500)
        assert js(page, "app.live.run.config.minibatch_disc") is False
        assert not page.is_checked("#knob-minibatch_disc")  # the control shows what holds

        page.check("#knob-minibatch_disc")
        page.wait_for_selector("#cost-ask:not([hidden])")
        page.click("#cost-ask-apply")
        wait_js(page, "app.live.run.config.minibatch_disc === true", timeout=30_000)

        # a cheap change: no question
        page.select_option("#knob-objective", "hinge")
        wait_js(page, "app.live.run.config.objective === 'hinge'", timeout=30_000)
        assert page.is_hidden("#cost-ask")
        js(page, "fetch('/api/runs/' + app.live.run.id + '/control', {method: 'POST', "
           "headers: {'content-type': 'application/json'}, body: JSON.stringify({action: "
           "'stop'})})")


def test_a_costly_live_change_of_a_diffusion_run_asks_first(server, browser):
    """Every family has a cost model: a diffusion run's sampler pushed from 10 to 1,000 steps
    a tick is held and explained, naming sample_steps, until the user decides."""
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, server + "/#preset=diffusion-memorise-circle&noise_levels=1000"
                  "&steps=200000")
        page.click("#start")
        wait_js(page, "app.live.run && app.live.run.status === 'running' && "
                "L.perf.frames.length >= 2", timeout=90_000)
        page.focus("#knob-sample_steps")
        page.keyboard.press("End")  # the slider's end: 1,000 sampler steps
        page.wait_for_selector("#cost-ask:not([hidden])", timeout=30_000)
        text = page.inner_text("#cost-ask-text")
        assert "would slow this run about" in text and "sample_steps weighs most" in text, text
        page.screenshot(path=SHOTS / "cost-ask-diffusion.png")
        page.click("#cost-ask-cancel")
        assert page.is_hidden("#cost-ask")
        page.wait_for_timeout(500)
        assert js(page, "app.live.run.config.sample_steps") == 10
        js(page, "fetch('/api/runs/' + app.live.run.id + '/control', {method: 'POST', "
           "headers: {'content-type': 'application/json'}, body: JSON.stringify({action: "
           "'stop'})})")
