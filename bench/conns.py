"""The connection attacks of a mischievous client, against a real `collapse-lab serve` under a
1,024 open-files limit, with what they cost: /api/health latency on fresh connections (from
another address), the server's open sockets, and a training run's steps/s.

1. 1,100 idle TCP connections from one address (127.0.0.2);
2. 50 connections sending header lines a byte a second (127.0.0.3);
3. 280 websockets on the run that never read (127.0.0.4, small receive buffers).

Every loop is bounded in count and time and talks to loopback addresses only.

    python bench/conns.py [--seconds 8] [--stall-timeout 10]
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RUN = dict(preset="collapse-ring8", steps=0, device="cpu")


class Server:
    def __init__(self, data: Path, **env: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        full = dict(os.environ, OMP_NUM_THREADS="1", COLLAPSE_LAB_WORKER_THREADS="1",
                    **{f"COLLAPSE_LAB_{k.upper()}": v for k, v in env.items()})
        self.log = open(data.parent / "serve.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port", str(self.port),
             "--data-dir", str(data)], cwd=ROOT, env=full, stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/api/health", timeout=2).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the server did not start")

    def sockets(self) -> int:
        n = 0
        for fd in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                n += os.readlink(fd).startswith("socket:")
            except OSError:
                pass
        return n

    def health(self) -> float:
        t0 = time.perf_counter()
        try:
            httpx.get(self.url + "/api/health", timeout=10).raise_for_status()
        except httpx.HTTPError:
            return float("inf")
        return time.perf_counter() - t0

    def rate(self, rid: str, seconds: float) -> float:
        """Steps/s of run `rid` over `seconds`, from its step counter."""
        s0 = httpx.get(f"{self.url}/api/runs/{rid}").json()["step"]
        t0 = time.monotonic()
        time.sleep(seconds)
        s1 = httpx.get(f"{self.url}/api/runs/{rid}").json()["step"]
        return (s1 - s0) / (time.monotonic() - t0)

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(30)
        self.log.close()
        return code


def connect(source: str, port: int, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def watch_health(srv: Server, seconds: float) -> list[float]:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(srv.health())
        time.sleep(0.1)
    return out


def fmt(lat: list[float]) -> str:
    fails = sum(x == float("inf") for x in lat)
    ok = [x for x in lat if x != float("inf")]
    med = statistics.median(ok) * 1e3 if ok else float("nan")
    worst = max(ok) * 1e3 if ok else float("nan")
    return f"{med:.0f} / {worst:.0f} ms" + (f", {fails} failed" if fails else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--stall-timeout", default="10")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="conns-"))
    srv = Server(tmp / "data", stall_timeout=a.stall_timeout)
    rows = []
    try:
        rid = httpx.post(srv.url + "/api/runs", json=RUN).json()["id"]
        time.sleep(3)
        rows.append(("no attack", fmt(watch_health(srv, 2)), srv.sockets(),
                     srv.rate(rid, a.seconds)))

        held = []
        for _ in range(1100):
            try:
                held.append(connect("127.0.0.2", srv.port))
            except OSError:
                pass
        lat = watch_health(srv, 2)
        rows.append(("1,100 idle TCP from one address", fmt(lat), srv.sockets(),
                     srv.rate(rid, a.seconds)))
        for s in held:
            s.close()

        slow = [connect("127.0.0.3", srv.port) for _ in range(50)]
        for s in slow:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        t0, cut, lat = time.monotonic(), None, []
        while time.monotonic() - t0 < 30 and cut is None:
            try:
                for s in slow:
                    s.sendall(b"X")
            except OSError:
                cut = time.monotonic() - t0
            lat.append(srv.health())
            time.sleep(1)
        rows.append((f"50 slow header lines (cut after {cut or float('nan'):.0f} s)", fmt(lat),
                     srv.sockets(), float("nan")))
        for s in slow:
            s.close()

        key = base64.b64encode(os.urandom(16)).decode()
        socks = []
        for _ in range(280):
            s = connect("127.0.0.4", srv.port, rcvbuf=4096)
            s.sendall((f"GET /ws/runs/{rid} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                      .encode())
            socks.append(s)
        result: list[float] = []
        t = threading.Thread(target=lambda: result.append(srv.rate(rid, a.seconds)))
        t.start()
        lat = watch_health(srv, a.seconds)
        t.join()
        rows.append(("280 websockets that never read (first seconds)", fmt(lat), srv.sockets(),
                     result[0]))
        t0 = time.monotonic()
        while srv.sockets() > 40 and time.monotonic() - t0 < 120:
            time.sleep(0.5)
        dropped = time.monotonic() - t0
        rows.append((f"… once dropped ({dropped:.0f} s more)", fmt(watch_health(srv, 2)),
                     srv.sockets(), srv.rate(rid, a.seconds)))
        for s in socks:
            s.close()
    finally:
        code = srv.stop()
    print(f"\nopen-files limit 1024, stall_timeout {a.stall_timeout} s, header_timeout 10 s; "
          f"server exit code {code}\n")
    print("| attack | /api/health median / worst | server sockets | run steps/s |")
    print("|---|---:|---:|---:|")
    for what, lat_s, socks_n, rate in rows:
        print(f"| {what} | {lat_s} | {socks_n} | {rate:.0f} |")


if __name__ == "__main__":
    main()
