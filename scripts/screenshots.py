"""Screenshots of the dashboard for a person to look at, at 1440×900 and 390×844 (a phone).

    python scripts/screenshots.py [--out tests/screenshots] [--collapse-steps 1500]

Starts a real server and Chromium (tests/browser_harness.py) and takes, at both sizes: a first
visit (the data before any run), a collapse of collapse-ring8 with the G manifold layer on, slow
motion (2 steps a second), a compare grid (nsgan against wgan-gp), a replay scrubbed half-way, and
the PNG export of that replay (the downloaded file itself). The files are not part of the
repository (tests/screenshots/ is ignored).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser_harness import chromium, chromium_missing, running_server  # noqa: E402

SIZES = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}
PRELUDE = "const L = window.collapseLab; const app = L && L.app;"


def wait_js(page, expr: str, timeout: float = 120_000) -> None:
    page.wait_for_function(f"() => {{ {PRELUDE} return !!(app && ({expr})); }}", timeout=timeout)


def js(page, expr: str):
    return page.evaluate(f"() => {{ {PRELUDE} return ({expr}); }}")


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)


def shot(page, out: Path, name: str, full: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=path, full_page=full)
    print(f"  {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "screenshots"))
    ap.add_argument("--collapse-steps", type=int, default=1500,
                    help="the step the collapse shot waits for")
    args = ap.parse_args()
    why = chromium_missing()
    if why:
        print(f"cannot take screenshots: {why}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with (tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp), max_workers=3) as url,
          chromium() as b):
        pages = {}
        for name, vp in SIZES.items():
            ctx = b.new_context(viewport=vp, accept_downloads=True, is_mobile=name == "phone",
                                device_scale_factor=2 if name == "phone" else 1)
            pages[name] = ctx.new_page()
        desk, phone = pages["desktop"], pages["phone"]

        print("first visit")
        for name, pg in pages.items():
            open_page(pg, f"{url}/#preset=collapse-ring8&manifold=1")
            wait_js(pg, "app.live.data && app.live.data.name === 'ring8'")
            shot(pg, out, f"{name}-1-first-visit", full=name == "phone")

        print("a collapse with the manifold layer on")
        desk.click("#start")
        wait_js(desk, "L.perf.frames.length >= 2")
        run = js(desk, "app.live.run.id")
        open_page(phone, f"{url}/#run={run}&manifold=1")
        wait_js(desk, f"app.live.log.last && app.live.log.last.step >= {args.collapse_steps}",
                timeout=600_000)
        time.sleep(2)  # a curve turn
        for name, pg in pages.items():
            if name == "phone":
                pg.locator("#samples").scroll_into_view_if_needed()
            shot(pg, out, f"{name}-2-collapse-manifold")
        shot(phone, out, "phone-2-collapse-manifold-full", full=True)

        print("slow motion")
        desk.eval_on_selector("#knob-speed", "e => { e.value = '1';"
                              " e.dispatchEvent(new Event('change', {bubbles: true})); }")
        wait_js(desk, "app.live.run.config.speed === 2")
        time.sleep(8)
        for name, pg in pages.items():
            pg.evaluate("() => window.scrollTo(0, 0)")
            shot(pg, out, f"{name}-3-slow-motion")

        desk.request.post(f"{url}/api/runs/{run}/control", data={"action": "stop"})

        print("a compare grid")
        open_page(desk, f"{url}/#view=compare&preset=collapse-ring8")
        desk.click("#compare-start")
        desk.wait_for_selector(".cmp-card >> nth=1")
        desk.wait_for_function(
            "() => [...document.querySelectorAll('.cmp-card .cmp-metrics span:last-child')]"
            ".every(s => Number((s.textContent.match(/step (\\d+)/) || [0, 0])[1]) >= 600)",
            timeout=600_000)
        group = js(desk, "app.state.group")
        open_page(phone, f"{url}/#view=compare&group={group}")
        phone.wait_for_selector(".cmp-card >> nth=1")
        time.sleep(4)
        for name, pg in pages.items():
            shot(pg, out, f"{name}-4-compare", full=True)
        for rid in js(desk, "app.state.runs"):
            desk.request.post(f"{url}/api/runs/{rid}/control", data={"action": "stop"})

        print("a replay, and its PNG export")
        for name, pg in pages.items():
            open_page(pg, f"{url}/#run={run}&manifold=1")
            pg.wait_for_selector("#scrubber:not([hidden])", timeout=60_000)
            half = int(pg.get_attribute("#scrub", "max")) // 2
            pg.eval_on_selector("#scrub", "(e, v) => { e.value = String(v);"
                                " e.dispatchEvent(new Event('input', {bubbles: true})); }", half)
            time.sleep(1)
            if name == "phone":
                pg.locator("#scrubber").scroll_into_view_if_needed()
            shot(pg, out, f"{name}-5-replay")
            with pg.expect_download() as dl:
                pg.click("#png")
            path = out / f"{name}-6-export.png"
            dl.value.save_as(path)
            print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
