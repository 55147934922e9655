"""A class watching one run: N websocket viewers plus N slow readers against a real server.

    python bench/load.py [--viewers 300] [--slow 300] [--seconds 15] [--preset collapse-ring8]

Starts `collapse-lab serve` on a free port with a fresh data dir, starts one run, measures its
steps/s with nobody watching, then opens the viewers (asyncio websockets in this process, each
reading every message as it comes) and the slow readers (each reads one message every 5 s and
otherwise lets its socket fill up), and measures again. Prints:

- frames/s delivered per viewer (min and median over the viewers);
- the run's steps/s alone and while watched;
- the server's RSS before the viewers connect and after the window;
- dropped frames: a viewer's mailbox keeps only the newest frame (server/fanout.py), so a
  viewer that falls behind misses frames instead of queueing them. Counted per viewer as the
  frames the best-served viewer got minus the frames it got, summed, for viewers and slow
  readers separately (the slow readers are meant to lose nearly all).

Viewers share this process's CPU with the server and the worker (on a small machine they
compete with training too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from _proc import free_port, rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAME = 1  # binary message kind of a live frame (docs/protocol.md)


class Counter:
    def __init__(self) -> None:
        self.frames = 0
        self.counting = False
        self.error: str | None = None


async def watch(url: str, c: Counter, slow: bool, stop: asyncio.Event) -> None:
    try:
        async with websockets.connect(url, max_size=1 << 22, max_queue=1 if slow else 64,
                                      open_timeout=60, ping_interval=None) as ws:
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.recv(), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                if isinstance(msg, bytes) and len(msg) >= 32 and msg[5] == FRAME and c.counting:
                    c.frames += 1
                if slow:
                    await asyncio.sleep(5.0)
    except Exception as e:  # noqa: BLE001 - a refused or dropped socket is a result here
        c.error = type(e).__name__


def steps_per_s(http: httpx.Client, rid: str, seconds: float) -> float:
    s0, t0 = http.get(f"/api/runs/{rid}").json()["step"], time.perf_counter()
    time.sleep(seconds)
    s1, t1 = http.get(f"/api/runs/{rid}").json()["step"], time.perf_counter()
    return (s1 - s0) / (t1 - t0)


async def measure(ws_url: str, n: int, n_slow: int, seconds: float, srv_pid: int,
                  http: httpx.Client, rid: str) -> dict:
    stop = asyncio.Event()
    viewers = [Counter() for _ in range(n)]
    slow = [Counter() for _ in range(n_slow)]
    tasks = [asyncio.create_task(watch(ws_url, c, False, stop)) for c in viewers]
    tasks += [asyncio.create_task(watch(ws_url, c, True, stop)) for c in slow]
    await asyncio.sleep(3.0 + (n + n_slow) / 100)  # connected, hello and real samples read
    for c in viewers + slow:
        c.counting = True
    sps = await asyncio.to_thread(steps_per_s, http, rid, seconds)
    for c in viewers + slow:
        c.counting = False
    rss_after = rss_mb(srv_pid)
    stop.set()
    await asyncio.gather(*tasks)
    best = max([c.frames for c in viewers + slow] or [0])
    fps = [c.frames / seconds for c in viewers]
    return dict(sps=sps, rss_after=rss_after, fps_min=min(fps or [0]),
                fps_median=statistics.median(fps or [0]),
                dropped=sum(best - c.frames for c in viewers),
                dropped_slow=sum(best - c.frames for c in slow),
                slow_fps=statistics.median([c.frames / seconds for c in slow] or [0]),
                errors=sum(c.error is not None for c in viewers + slow))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", type=int, default=300)
    ap.add_argument("--slow", type=int, default=None, help="slow readers (default: --viewers)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--preset", default="collapse-ring8")
    ns = ap.parse_args()
    n_slow = ns.viewers if ns.slow is None else ns.slow
    port = free_port()
    data = tempfile.mkdtemp(prefix="collapse-lab-load-")
    env = dict(os.environ, COLLAPSE_LAB_VIEWER_QUEUE="256")
    srv = subprocess.Popen([sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port",
                            str(port), "--data-dir", data], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        for _ in range(600):
            try:
                http.get("/api/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        run = http.post("/api/runs", json={"preset": ns.preset, "steps": 1_000_000}).json()
        rid = run["id"]
        while http.get(f"/api/runs/{rid}").json()["step"] < 100:
            time.sleep(0.2)
        alone = steps_per_s(http, rid, ns.seconds)
        rss_before = rss_mb(srv.pid)
        ws_url = f"ws://127.0.0.1:{port}/ws/runs/{rid}"
        r = asyncio.run(measure(ws_url, ns.viewers, n_slow, ns.seconds, srv.pid, http, rid))
        health = http.get("/api/health").json()
        http.post(f"/api/runs/{rid}/control", json={"action": "stop"})
    finally:
        srv.terminate()
        srv.wait(30)
    print(f"one run ({ns.preset}), {ns.viewers} viewers + {n_slow} slow readers, "
          f"{os.cpu_count()} CPUs, {ns.seconds:g} s window, frame_rate 10")
    rows = [
        ("frames/s per viewer, min", f"{r['fps_min']:.1f}"),
        ("frames/s per viewer, median", f"{r['fps_median']:.1f}"),
        ("frames/s per slow reader, median", f"{r['slow_fps']:.2f}"),
        ("run steps/s alone", f"{alone:.0f}"),
        ("run steps/s while watched", f"{r['sps']:.0f} ({r['sps'] / alone:.2f}x)"),
        ("server RSS before / after (MB)", f"{rss_before:.0f} / {r['rss_after']:.0f}"),
        ("dropped frames, viewers (sum)", f"{r['dropped']}"),
        ("dropped frames, slow readers (sum)", f"{r['dropped_slow']}"),
        ("sockets refused or dropped", f"{r['errors']}"),
        ("server healthy afterwards", str(health.get("status") == "ok")),
    ]
    w = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{w}}  {b}")


if __name__ == "__main__":
    sys.exit(main())
