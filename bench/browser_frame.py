"""Frames per second and JS time per frame of the live dashboard, measured in real Chromium.

    python bench/browser_frame.py [--seconds 30] [--warmup 8] [--tick-every 5]

Starts a real server, opens the page at 1280×720 with every layer of the samples panel on (D's
landscape, G's gradient arrows, G's manifold), starts the collapse preset (2,500 evaluated
samples, a 64×64 value grid) and records, with `performance.now()` in the page, every drawn
frame: when it was drawn and the JS time it took (samples canvas with its layers + occupancy
bars + heatmap + metric cards). The Plotly curves are extended on their own timer
(frontend/js/charts.js); their update times are reported on their own line. `tick_every` is small
so that the trainer makes ticks faster than the server's 10 frames/s and the frame rate is the
server's, not the trainer's.

The manifold layer draws G's image of a latent grid that frames carry while a viewer asks for it
(frame flag 4). A frame that carries none (one sent before the server heard the layer asked for)
is given a 20×20 grid in the page before it is drawn, so every measured frame pays the drawing
cost; the table says how many frames had which. Prints a table; targets: median rendered fps ≥
9.5, p95 JS per frame ≤ 8 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser_harness import chromium, chromium_missing, running_server  # noqa: E402


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    r = p / 100 * (len(s) - 1)
    lo, hi = int(r), min(int(r) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (r - lo)


# Wraps the live view's frame handler: a frame with no manifold gets G's image of a 20×20 grid
# made up from a warped square (its drawing cost is what is measured, not its meaning).
SYNTHETIC_MANIFOLD = """() => {
    const live = window.collapseLab.app.live;
    const side = 20, pts = new Float32Array(side * side * 2);
    const onFrame = live.onFrame.bind(live);
    live.onFrame = (m) => {
        if (m.manifold) window.serverManifold = (window.serverManifold || 0) + 1;
        if (!m.manifold && !m.images) {
            const t = m.step / 500;
            for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
                const x = (c / (side - 1)) * 4 - 2, y = (r / (side - 1)) * 4 - 2;
                const i = 2 * (r * side + c);
                pts[i] = x + 0.3 * Math.sin(y * 2 + t);
                pts[i + 1] = y + 0.3 * Math.cos(x * 2 + t);
            }
            m.manifold = pts.slice();
            m.manifoldSide = side;
            window.syntheticManifold = (window.syntheticManifold || 0) + 1;
        }
        onFrame(m);
    };
}"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--tick-every", type=int, default=5)
    ap.add_argument("--preset", default="collapse-ring8")
    ap.add_argument("--frame-rate", type=float, default=10.0,
                    help="the server's frame_rate setting (its default is 10)")
    args = ap.parse_args()
    why = chromium_missing()
    if why:
        print(f"cannot measure: {why}", file=sys.stderr)
        return 2
    with (tempfile.TemporaryDirectory() as tmp,
          running_server(Path(tmp), frame_rate=args.frame_rate) as url, chromium() as b):
        page = b.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{url}/#preset={args.preset}&tick_every={args.tick_every}&steps=1000000"
                  "&heat=1&arrows=1&manifold=1")
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        # frames without G's manifold get a 20×20 one before they are drawn (see the docstring)
        page.evaluate(SYNTHETIC_MANIFOLD)
        page.click("#start")
        page.wait_for_function("() => window.collapseLab.perf.frames.length >= 5", timeout=120_000)
        time.sleep(args.warmup)
        page.evaluate("() => { window.collapseLab.perf.reset();"
                      " window.collapseLab.curvePerf.length = 0;"
                      " window.serverManifold = 0; window.syntheticManifold = 0; }")
        time.sleep(args.seconds)
        r = page.evaluate("""() => { const L = window.collapseLab;
            const f = L.perf.frames.slice(); const f0 = f.length ? f[0][0] : 0;
            const fr = L.app.live.pending; const last = L.app.live.samples.lastFrame;
            return { frames: f, received: L.perf.received, curves: L.curvePerf.slice(),
                     n: last ? last.n : 0, grid: last ? [last.gridW, last.gridH] : [0, 0],
                     run: L.app.live.run.id, steps_per_sec: L.app.live.log.last.steps_per_sec,
                     ticks: L.app.live.log.ticks.length,
                     layers: L.app.live.samples.show,
                     manifold: last && last.manifold ? last.manifoldSide : 0,
                     synthetic: window.syntheticManifold || 0,
                     served: window.serverManifold || 0 }; }""")
        page.request.post(f"{url}/api/runs/{r['run']}/control", data={"action": "stop"})
    frames = r["frames"]
    times = [ms for _, ms in frames]
    t0 = frames[0][0] if frames else 0.0
    buckets = [0] * int(args.seconds)
    for t, _ in frames:
        i = int((t - t0) / 1000)
        if i < len(buckets):
            buckets[i] += 1
    span = (frames[-1][0] - frames[0][0]) / 1000 if len(frames) > 1 else float("nan")
    curves = r["curves"]
    layers = ", ".join(k for k in ("heat", "arrows", "manifold") if r["layers"].get(k))
    source = (f"from the server on {r['served']} frames, a synthetic 20x20 added in the page "
              f"to {r['synthetic']} that had none")
    print(f"live dashboard, {args.seconds:.0f} s, 1280x720 headless Chromium, "
          f"{r['n']} points, {r['grid'][0]}x{r['grid'][1]} value grid, "
          f"trainer at ~{r['steps_per_sec']:.0f} steps/s, server frame_rate {args.frame_rate:g}")
    print(f"layers on: {layers}; manifold {r['manifold']}x{r['manifold']} ({source}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'measure':<34}{'value':>10}  target")
    print(f"{'frames received':<34}{r['received']:>10}")
    print(f"{'frames drawn':<34}{len(frames):>10}")
    print(f"{'rendered fps, median of 1 s bins':<34}{statistics.median(buckets):>10.1f}  >= 9.5")
    print(f"{'rendered fps, overall':<34}{(len(frames) - 1) / span:>10.2f}")
    print(f"{'JS ms per frame, median':<34}{pct(times, 50):>10.2f}")
    print(f"{'JS ms per frame, p95':<34}{pct(times, 95):>10.2f}  <= 8")
    print(f"{'JS ms per frame, max':<34}{max(times) if times else float('nan'):>10.2f}")
    print(f"{'Plotly curve updates':<34}{len(curves):>10}  (one chart per 0.5 s)")
    print(f"{'Plotly ms per update, median':<34}{pct(curves, 50):>10.2f}")
    print(f"{'Plotly ms per update, p95':<34}{pct(curves, 95):>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
