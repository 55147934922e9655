"""How long the worst JSON bodies under the limit hold the event loop: each is sent to a real
server 5 times and the fastest round trip printed beside that of `/api/health` (the difference
is the time the body's parsing, validation and refusal took on the loop).

    python bench/bodies.py

The limit is `max_json_body` (64 KiB); larger bodies are refused by size before parsing
(server/guard.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BODIES = {
    "6,000 unknown keys": "{" + ",".join(f'"k{i}":0' for i in range(6000)) + "}",
    "lists nested 32,000 deep": "[" * 32000 + "]" * 32000,
    "a knob holding 13,000 floats": json.dumps({"lr_g": [0.5] * 13000}),
    "set holding 13,000 floats": json.dumps({"set": {"lr_g": [0.5] * 13000}}),
    "8 variants of 1,600 floats": json.dumps({"variants": [{"lr_g": [0.5] * 1600}] * 8}),
    "a 60,000-digit number string": json.dumps({"steps": "9" * 60000}),
    "a 65,000-character label": json.dumps({"label": "x" * 65000}),
}


def best_ms(fn, n: int = 5) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen([sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port",
                            str(port), "--data-dir", tempfile.mkdtemp(prefix="collapse-lab-")],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        for _ in range(600):
            try:
                c.get("/api/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        base = best_ms(lambda: c.get("/api/health"), 20)
        print(f"/api/health round trip: {base:.1f} ms")
        print(f"{'route':<24} {'body':<30} {'bytes':>6} {'status':>6} {'ms':>6} {'- health':>9}")
        for path in ("/api/runs", "/api/compare", "/api/runs/abc/control"):
            for name, text in BODIES.items():
                body = text.encode()
                status: list[int] = []
                ms = best_ms(lambda b=body, p=path, st=status: st.append(c.post(
                    p, content=b, headers={"content-type": "application/json"}).status_code))
                print(f"{path:<24} {name:<30} {len(body):>6} {status[-1]:>6} {ms:>6.1f} "
                      f"{ms - base:>9.1f}")
    finally:
        srv.terminate()
        srv.wait(30)


if __name__ == "__main__":
    main()
