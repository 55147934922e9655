"""The VAE lesson in real Chromium against a real server: the page starts a VAE on the digits from
the lesson, shows its posterior collapse (every prior sample and every reconstruction the same
blur, the KL of every unit near zero), shows it rescued live when the lesson switches free bits on,
and draws the family's panels in each card of a comparison and in the replay.

Screenshots go to tests/screenshots/ (ignored by git): 60-vae-collapsed.png, 61-vae-rescued.png,
62-vae-compare.png. Without Chromium this skips with the reason, except under CI=true.
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

SHOWN = "(app.live.shown ? app.live.shown.scalars : {})"
KL_SUM = ("(app.live.familyPanels.latest && app.live.familyPanels.latest.kl_units ? "
          "app.live.familyPanels.latest.kl_units.values.reduce((a, b) => a + b, 0) : -1)")


def stop(server: str, run_id: str) -> None:
    httpx.post(f"{server}/api/runs/{run_id}/control", json={"action": "stop"})


def test_the_vae_lesson_collapses_and_free_bits_rescue_it_live(browser, server):
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
        open_page(page, server + "/")
        page.click("#lessons-open")
        page.click(".lesson-choice[data-lesson='vae']")
        wait_js(page, "app.live.run && app.live.run.config.family === 'vae'", timeout=60_000)
        run_id = js(page, "app.live.run.id")
        cfg = httpx.get(f"{server}/api/runs/{run_id}").json()["config"]
        assert cfg["beta"] == 4 and cfg["free_bits"] == 0 and cfg["speed"] == 30

        # the posterior collapses: no active unit, the KL of all 16 units together near 0, and
        # the panels drawn: reconstructions beside their inputs, KL and activity per unit
        wait_js(page, f"{SHOWN}.step >= 300 && {SHOWN}.active_units <= 1 && {KL_SUM} >= 0 "
                f"&& {KL_SUM} < 0.2", timeout=120_000)
        panels = page.eval_on_selector_all("#family-panels .fp-panel",
                                           "els => els.map(e => e.dataset.panel)")
        assert panels == ["recon", "kl_units", "activity"]
        rec = js(page, "app.live.familyPanels.latest.recon")
        assert len(rec["images"]) == 32 and rec["labels"][:2] == ["in", "out"]
        # every reconstruction is the same blur: the outs differ far less than the ins
        outs, ins = rec["images"][1::2], rec["images"][0::2]

        def spread(imgs: list[list[float]]) -> float:
            mean = [sum(c) / len(imgs) for c in zip(*imgs, strict=True)]
            return sum(sum((v - m) ** 2 for v, m in zip(img, mean, strict=True))
                       for img in imgs) / len(imgs)

        collapsed = spread(outs)
        assert collapsed < 0.1 * spread(ins), (collapsed, spread(ins))
        assert js(page, f"{SHOWN}.modes_covered") <= 3
        names = js(page, "document.getElementById('chart-loss').data.map(t => t.name)")
        assert {"KL", "active units →", "I(x; z), nats →"} <= set(names) and "D loss" not in names
        # the nats (reconstruction, KL) keep the left axis; the KL weight (β = 4 here) and the
        # unit counts take the right one, so they do not squash the losses flat
        axes = js(page, "Object.fromEntries(document.getElementById('chart-loss').data"
                  ".map(t => [t.name, t.yaxis || 'y']))")
        assert axes["reconstruction"] == "y" and axes["KL"] == "y", axes
        assert axes["KL weight →"] == "y2" and axes["active units →"] == "y2", axes
        left = js(page, "document.getElementById('chart-loss')._fullLayout.yaxis.range")
        recon = js(page, f"{SHOWN}.recon_loss")
        assert left[0] <= recon <= left[1] and left[1] - left[0] < 4 * recon, (left, recon)
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "60-vae-collapsed.png", full_page=True)

        # step 2 (text), step 3: free bits, live; the units come back and the samples vary
        page.click("#lesson-next")
        page.click("#lesson-next")
        wait_js(page, "app.live.run.config.free_bits === 0.5", timeout=30_000)
        wait_js(page, f"{SHOWN}.active_units >= 12 && {KL_SUM} > 4 && {SHOWN}.modes_covered >= 4",
                timeout=150_000)
        rec = js(page, "app.live.familyPanels.latest.recon")
        # the reconstructions differ again, each after its own input
        assert spread(rec["images"][1::2]) > 5 * collapsed, (spread(rec["images"][1::2]),
                                                             collapsed)
        assert js(page, "app.live.familyPanels.latest.kl_units.ref") == 0.5
        events = httpx.get(f"{server}/api/runs/{run_id}/history").json()["events"]
        assert {"free_bits": 0.5} in [e["changes"] for e in events if e.get("type") == "config"]
        page.evaluate("() => document.getElementById('family-panels').scrollIntoView()")
        page.screenshot(path=SHOTS / "61-vae-rescued.png", full_page=True)

        # the series as CSV carries the family's stats
        csv = httpx.get(f"{server}/api/runs/{run_id}/history", params={"format": "csv"}).text
        head = csv.splitlines()[0].split(",")
        assert {"recon_loss", "kl", "active_units", "mutual_info", "occ_9"} <= set(head)

        # the replay of the stopped run: its frames carry the panels
        stop(server, run_id)
        wait_js(page, "app.live.replay && app.live.replay.frames.length >= 2", timeout=60_000)
        assert js(page, "Object.keys(app.live.replay.frames[0].scalars.panels || {}).sort()") \
            == ["activity", "kl_units", "recon"]


def test_a_vae_comparison_draws_each_runs_panels(browser, server):
    body = {"base": {"preset": "vae-collapse-digits", "steps": 0},
            "variants": [{"free_bits": 0.0}, {"free_bits": 0.5}]}
    got = httpx.post(f"{server}/api/compare", json=body)
    assert got.status_code == 201, got.text
    group = got.json()
    ids = [r["id"] for r in group["runs"]]
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, f"{server}/#view=compare&runs={','.join(ids)}&group={group['id']}")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.cmp-card .fp-panel')].length === 6 && "
            "[...document.querySelectorAll('.cmp-card .fp-panel')]"
            ".every(f => f.dataset.empty === '0')", timeout=120_000)
        # each card draws its own run's panels: the KL per unit under free bits has λ's line
        refs = page.eval_on_selector_all(
            ".cmp-card", "cs => cs.map(c => c.querySelector(\".fp-panel[data-panel='kl_units']\")"
            " !== null)")
        assert refs == [True, True]
        page.wait_for_timeout(1500)  # the cards' samples come with the next frames
        page.screenshot(path=SHOTS / "62-vae-compare.png", full_page=True)
    for rid in ids:
        stop(server, rid)


@pytest.mark.parametrize("body, field", [
    ({"family": "vae", "beta": -1}, "beta"),
    ({"preset": "vae-collapse-digits", "free_bits": 9}, "free_bits"),
    ({"family": "vae", "lr_g": 1e-3}, "lr_g"),
    ({"family": "vae", "dataset": "ring8"}, "dataset"),
])
def test_a_bad_vae_run_is_refused_naming_the_field(server, body, field):
    r = httpx.post(f"{server}/api/runs", json=body)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
