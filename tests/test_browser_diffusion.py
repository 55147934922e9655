"""The diffusion family in real Chromium against a real server: a run started from the page
memorises its 8 training points (the samples pile onto the training points marked by the
landscape; the learned score drawn as arrows), a live change sent by the page (1,024 training
points) makes it generalise, and the finished run replays and exports its series.
A comparison of 8 against 1,024 points trains both in one group.

Screenshots go to tests/screenshots/ (ignored by git): 60-diffusion-memorised.png,
61-diffusion-more-data.png, 62-diffusion-compare.png. Without Chromium this skips with the
reason, except under CI=true.
"""

from __future__ import annotations

import csv
import io
import time

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

LAST = "app.live.log.last"


def stop(server: str, run_id: str) -> None:
    httpx.post(f"{server}/api/runs/{run_id}/control", json={"action": "stop"})


def test_a_run_started_from_the_page_memorises_and_more_data_rescues_it_live(browser, server):
    with watched_page(browser, viewport={"width": 1280, "height": 900}) as page:
        # the memorising preset, from the page's preset menu (the hash chooses it)
        open_page(page, f"{server}/#preset=diffusion-memorise-circle&arrows=1")
        page.click("#start")
        wait_js(page, "app.live.run && app.live.run.config.family === 'diffusion'",
                timeout=60_000)
        run_id = js(page, "app.live.run.id")
        cfg = httpx.get(f"{server}/api/runs/{run_id}").json()["config"]
        assert cfg["train_points"] == 8 and cfg["width"] == 64 and cfg["dataset"] == "circle"
        # the samples panel speaks of the family: training points under the samples, the
        # learned score as arrows (a field the frames carry), no generator's layers
        wait_js(page, "L.perf.frames.length >= 2", timeout=60_000)
        assert page.inner_text("#heat-label") == "training points landscape"
        assert page.inner_text("#arrows-label") == "learned score"
        assert js(page, "getComputedStyle(document.getElementById('arrows-tool')).display") \
            != "none"
        assert js(page, "app.live.samples.valueKind") == "training"
        wait_js(page, "app.live.samples.lastFrame && app.live.samples.lastFrame.scalars.arrows",
                timeout=30_000)
        assert js(page, "app.live.samples.lastFrame.scalars.arrows.side") == 16

        # most samples copy a training point, several times what fresh data scores by chance
        wait_js(page, f"{LAST} && {LAST}.memorised >= 0.45", timeout=180_000)
        chance = js(page, f"{LAST}.memorised_chance")
        assert chance < 0.15
        page.screenshot(path=SHOTS / "60-diffusion-memorised.png")

        # a live change sent by the page (the path its settings panel's controls take):
        # 1,024 training points
        page.evaluate("() => window.collapseLab.app.live.control({set: {train_points: 1024}})")
        wait_js(page, "app.live.run.config.train_points === 1024", timeout=30_000)
        changed = js(page, "app.live.run.config_version")
        wait_js(page, f"{LAST}.config_version >= {changed} && {LAST}.memorised <= 0.2",
                timeout=180_000)
        page.screenshot(path=SHOTS / "61-diffusion-more-data.png")
        events = httpx.get(f"{server}/api/runs/{run_id}/history").json()["events"]
        assert {"train_points": 1024} in [e["changes"] for e in events
                                          if e.get("type") == "config"]

        # the finished run: its replay and its series as CSV, the family's stats among them
        stop(server, run_id)
        wait_js(page, "app.live.replay && app.live.replay.frames.length >= 2", timeout=60_000)
        assert js(page, "app.live.replay.frames[0].scalars.arrows.side") == 16
        got = httpx.get(f"{server}/api/runs/{run_id}/history", params={"format": "csv"})
        rows = list(csv.DictReader(io.StringIO(got.text)))
        assert {"memorised", "memorised_chance", "nn_distance"} <= set(rows[0])
        assert max(float(r["memorised"]) for r in rows) >= 0.45
        assert float(rows[-1]["memorised"]) <= 0.2


def test_a_comparison_of_few_and_many_points_and_bad_input_named(browser, server):
    bad = httpx.post(f"{server}/api/runs", json={"family": "diffusion", "train_points": 3})
    assert bad.status_code == 422 and "train_points" in bad.text
    bad = httpx.post(f"{server}/api/runs", json={"preset": "diffusion-memorise-circle",
                                                 "sample_steps": 80})
    assert bad.status_code == 422 and "sample_steps" in bad.text
    body = {"base": {"preset": "diffusion-memorise-circle", "steps": 0, "lr": 0.01},
            "variants": [{"train_points": 8}, {"train_points": 1024}]}
    got = httpx.post(f"{server}/api/compare", json=body)
    assert got.status_code == 201, got.text
    group = got.json()
    ids = [r["id"] for r in group["runs"]]
    with watched_page(browser, viewport={"width": 1280, "height": 800}) as page:
        open_page(page, f"{server}/#view=compare&runs={','.join(ids)}&group={group['id']}")
        page.wait_for_selector(".cmp-card >> nth=1")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.cmp-card')].length === 2", timeout=60_000)
        # both train (one group, side by side) past step 500, until the few points are copied:
        # about 20 s on an idle machine; a busy one gets further in its own time
        deadline = time.monotonic() + 240
        while True:
            now = [httpx.get(f"{server}/api/runs/{rid}").json() for rid in ids]
            got = [(r["step"], (r.get("last") or {}).get("memorised")) for r in now]
            if all(step >= 500 for step, _ in got) and None not in (got[0][1], got[1][1]) \
                    and got[0][1] > got[1][1] + 0.1:
                break
            assert time.monotonic() < deadline, got
            page.wait_for_timeout(1000)
        page.screenshot(path=SHOTS / "62-diffusion-compare.png", full_page=True)
    finals = [httpx.get(f"{server}/api/runs/{rid}/history").json() for rid in ids]
    for rid in ids:
        stop(server, rid)
    last = [f["ticks"][-1] for f in finals]
    assert last[0]["step"] >= 500 and last[1]["step"] >= 500
    # side by side, the few points are copied and the many are not
    assert last[0]["memorised"] > last[1]["memorised"] + 0.1, last
