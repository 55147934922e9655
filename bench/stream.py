"""Streaming cost: training steps/s of one run with 0, 1 and 20 viewers, frames/s per viewer,
bytes per frame, and the RSS of the server and the worker. Prints a table.

    python bench/stream.py [--seconds 8] [--viewers 0 1 20] [--preset collapse-ring8]

Starts `collapse-lab serve` on a free port with a fresh data dir; viewers are threads using the
project's Python client (same machine, so on a small CPU they compete with training too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _proc import free_port, rss_mb  # noqa: E402

from collapse_lab.server.client import Client  # noqa: E402


def viewer(c: Client, run_id: str, stop: threading.Event, out: list) -> None:
    frames = nbytes = 0
    with c.stream(run_id) as s:
        t0 = time.perf_counter()
        for _ in s.frames(timeout=5):
            frames += 1
            if stop.is_set():
                break
        nbytes = s.bytes_received
        out.append((frames, nbytes, time.perf_counter() - t0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--viewers", type=int, nargs="+", default=[0, 1, 20])
    ap.add_argument("--preset", default="collapse-ring8")
    ns = ap.parse_args()
    port = free_port()
    data = tempfile.mkdtemp(prefix="collapse-lab-bench-")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    srv = subprocess.Popen([sys.executable, "-m", "collapse_lab.server.cli", "serve",
                            "--port", str(port),
                            "--data-dir", data], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = Client(f"http://127.0.0.1:{port}")
    try:
        for _ in range(300):
            try:
                c.health()
                break
            except OSError:
                time.sleep(0.1)
        run = c.start_run(preset=ns.preset, steps=1_000_000)
        rid = run["id"]
        while c.run(rid)["step"] < 100:
            time.sleep(0.2)
        worker_pid = c.run(rid)["provenance"]["pid"]
        rows = []
        for n in ns.viewers:
            stop = threading.Event()
            got: list = []
            threads = [threading.Thread(target=viewer, args=(c, rid, stop, got), daemon=True)
                       for _ in range(n)]
            for t in threads:
                t.start()
            time.sleep(1.0)  # let every viewer get its hello
            s0, t0 = c.run(rid)["step"], time.perf_counter()
            time.sleep(ns.seconds)
            s1, t1 = c.run(rid)["step"], time.perf_counter()
            rss = (rss_mb(srv.pid), rss_mb(worker_pid))
            stop.set()
            for t in threads:
                t.join(10)
            fps = [f / dt for f, _, dt in got] if got else []
            bpf = sum(b for _, b, _ in got) / max(sum(f for f, _, _ in got), 1) if got else 0
            rows.append((n, (s1 - s0) / (t1 - t0), min(fps) if fps else 0,
                         sum(fps) / len(fps) if fps else 0, bpf, *rss))
        c.control(rid, {"action": "stop"})
    finally:
        srv.terminate()
        srv.wait(20)
    base = rows[0][1]
    print(f"one run ({ns.preset}), {os.cpu_count()} CPUs, {ns.seconds:g} s per row")
    print(f"{'viewers':>7} {'steps/s':>9} {'ratio':>6} {'fps min':>8} {'fps mean':>9} "
          f"{'bytes/frame':>12} {'server MB':>10} {'worker MB':>10}")
    for n, sps, fmin, fmean, bpf, rs, rw in rows:
        print(f"{n:>7} {sps:>9.0f} {sps / base:>6.2f} {fmin:>8.1f} {fmean:>9.1f} "
              f"{bpf:>12.0f} {rs:>10.0f} {rw:>10.0f}")


if __name__ == "__main__":
    main()
