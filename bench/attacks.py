"""The classroom attacks, against a real `collapse-lab serve --token … --students-may-run`: what a
student on the network (or a page the teacher opens) gets. Each line says the attack, what the
attacker got, and whether the server refused it.

    python bench/attacks.py [--quick] [--json]

Students on different machines are told apart by `X-Forwarded-For`, which uvicorn takes from a
client on 127.0.0.1 only (the server's own machine), as it would take a proxy's; on the
classroom network each machine has its own address. A second server without a token (loopback)
stands for the teacher's local dashboard. tests/test_attacks.py runs the quick version.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _proc import free_port, rss_mb

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "attack-teacher-token-1"
RUN = dict(g_width=8, d_width=8, z_dim=2, batch_size=16, eval_samples=100, grid_size=8,
           tick_every=5, device="cpu")
LONG = dict(RUN, steps=1_000_000)
SHORT = dict(RUN, steps=10)
CSV = {"content-type": "text/csv"}


class Server:
    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data.parent / f"serve-{self.port}.log", "w")  # noqa: SIM115
        e = dict(os.environ, OMP_NUM_THREADS="1", COLLAPSE_LAB_WORKER_THREADS="1", **(env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port", str(self.port),
             "--data-dir", str(data), *args], cwd=ROOT, env=e, stdout=self.log,
            stderr=subprocess.STDOUT)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(f"{self.url}/api/health", timeout=2).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def browser(self, address: str | None = None, origin: bool = True) -> httpx.Client:
        """One browser on one machine: its own cookies; it sends the page's Origin on writes."""
        headers = {"x-forwarded-for": address} if address else {}
        if origin:
            headers["origin"] = self.url
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def teacher(srv: Server) -> httpx.Client:
    b = srv.browser()
    r = b.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303, r.text
    return b


def student(srv: Server, address: str, name: str | None = None) -> httpx.Client:
    b = srv.browser(address)
    b.get("/api/session")
    if name:
        b.post("/api/session/name", json={"name": name})
    return b


def settle(b: httpx.Client, rid: str, timeout: float = 90) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = b.get(f"/api/runs/{rid}").json()["status"]
        if st in ("done", "failed", "interrupted"):
            return st
        time.sleep(0.1)
    return "timeout"


def stop_all(t: httpx.Client) -> None:
    for r in t.get("/api/runs").json()["runs"]:
        if r["status"] in ("queued", "running", "paused"):
            t.post(f"/api/runs/{r['id']}/control", json={"action": "stop"})
    for r in t.get("/api/runs").json()["runs"]:
        settle(t, r["id"])


Result = dict[str, Any]


def result(item: str, attack: str, got: str, refused: bool) -> Result:
    return {"item": item, "attack": attack, "got": got, "refused": refused}


# ---------------------------------------------------------------------------- the attacks
def identity(srv: Server) -> list[Result]:
    t = teacher(srv)
    a, b = student(srv, "10.0.1.1", "Ana"), student(srv, "10.0.1.2", "Ben")
    run = a.post("/api/runs", json=LONG).json()
    listing = b.get("/api/runs").text
    a_cookie = a.cookies["collapse_lab_student"]
    sid = a_cookie.split(".")[0]
    shown = "student:" in listing or sid in listing
    out = [result("1", "read other students' ids from GET /api/runs",
                  "ids shown" if shown else "kind and display name only (" +
                  ", ".join(sorted({r.get("owner_name") or "-" for r in
                                    json.loads(listing)["runs"]})) + ")", not shown)]
    codes = []
    for forged in (sid, f"{sid}.{'0' * 32}", "0123456789abcdef"):
        b.cookies.clear()
        b.cookies.set("collapse_lab_student", forged)
        for action in ("pause", "stop"):
            codes.append(b.post(f"/api/runs/{run['id']}/control",
                                json={"action": action}).status_code)
    status = t.get(f"/api/runs/{run['id']}").json()["status"]
    out.append(result("1", "pause, then stop, another student's run wearing their id (bare, "
                      "re-signed, made up)", f"{codes}; the run is {status}",
                      all(c == 403 for c in codes) and status in ("running", "queued")))
    stop_all(t)
    return out


def caps(srv: Server, quick: bool) -> list[Result]:
    t = teacher(srv)
    out = []
    # one machine clears its cookies and starts again, five times
    started = 0
    for _ in range(5):
        b = student(srv, "10.0.2.1")
        started += b.post("/api/runs", json=LONG).status_code == 201
    out.append(result("2", "clear cookies and start again, 5 times, at cap 1",
                      f"{started} run(s) started", started <= 1))
    # random ids without a session
    forged = 0
    for i in range(5):
        b = srv.browser("10.0.2.2")
        b.cookies.set("collapse_lab_student", f"{i:016x}")
        forged += b.post("/api/runs", json=LONG).status_code == 201
    out.append(result("2", "random 16-hex ids without any session, 5 times",
                      f"{forged} run(s) started", forged == 0))
    # one machine asks for many sessions
    minted = 0
    for _ in range(30 if not quick else 15):
        b = srv.browser("10.0.2.3")
        minted += b.get("/api/session").json()["owner"] == "student"
    out.append(result("2", f"ask one address for {30 if not quick else 15} new sessions",
                      f"{minted} sessions", minted <= 10))
    # the teacher's run while students hold the workers (different shapes: no packing)
    others = [student(srv, f"10.0.3.{i}") for i in range(1, 4)]
    for i, s in enumerate(others):
        s.post("/api/runs", json=dict(LONG, g_width=8 + 4 * i))
    t0 = time.monotonic()
    rt = t.post("/api/runs", json=dict(LONG, d_width=20)).json()
    while t.get(f"/api/runs/{rt['id']}").json()["status"] == "queued" and \
            time.monotonic() - t0 < 30:
        time.sleep(0.1)
    waited = time.monotonic() - t0
    st = t.get(f"/api/runs/{rt['id']}").json()["status"]
    out.append(result("2", "students' runs hold the workers; the teacher starts a run",
                      f"the teacher's run {st} after {waited:.1f} s", st == "running"))
    stop_all(t)
    return out


def pruning(srv: Server, quick: bool) -> list[Result]:
    t = teacher(srv)
    mine = [t.post("/api/runs", json=SHORT).json()["id"] for _ in range(5)]
    for rid in mine:
        settle(t, rid)
    s = student(srv, "10.0.4.1", "Loop")
    n = 12 if quick else 30
    t0 = time.monotonic()
    codes = []
    for _ in range(n):
        r = s.post("/api/runs", json=SHORT)
        codes.append(r.status_code)
        if r.status_code == 201:
            settle(s, r.json()["id"])
    left = {r["id"] for r in t.get("/api/runs").json()["runs"]}
    kept = sum(rid in left for rid in mine)
    return [result("3", f"a student's start/stop loop of {n} runs (max_runs 20, "
                   "runs_per_student 5)",
                   f"the teacher keeps {kept} of 5 finished runs; the student's starts "
                   f"{sorted(set(codes))} in {time.monotonic() - t0:.1f} s", kept == 5)]


def uploads(srv: Server, quick: bool) -> list[Result]:
    t = teacher(srv)
    a, b = student(srv, "10.0.5.1", "A"), student(srv, "10.0.5.2", "B")
    rows = "\n".join(f"{i % 97}.123456789012,{i % 89}.987654321098,{i % 3}"
                     for i in range(19_000))
    up = a.post("/api/uploads", content="x,y,mode\n" + rows, headers=CSV).json()
    ra = a.post("/api/runs", json=dict(LONG, dataset="csv", data=up["path"])).json()
    seen = b.get(f"/api/runs/{ra['id']}").json()["config"]["data"]
    tries = [b.post("/api/runs", json=dict(LONG, dataset="csv", data=d)).status_code
             for d in (up["path"], up["name"])]
    out = [result("4", "read A's upload path from A's run, train on it as B",
                  f"B sees data={seen!r}; B's runs on it: {tries}",
                  "/" not in seen and all(c == 422 for c in tries))]
    stop_all(t)
    n = 80 if quick else 320
    codes: list[int] = []
    lock = threading.Lock()

    def flood(k: int) -> None:
        for _ in range(k):
            c = b.post("/api/uploads", content="x,y,mode\n" + rows, headers=CSV).status_code
            with lock:
                codes.append(c)

    th = [threading.Thread(target=flood, args=(n // 8,)) for _ in range(8)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    again = a.post("/api/runs", json=dict(SHORT, dataset="csv", data=up["path"])).status_code
    counts = {c: codes.count(c) for c in sorted(set(codes))}
    out.append(result("4", f"{n} uploads of {len(rows) / 2**20:.2f} MiB from one student, 8 at "
                      "a time",
                      f"answers {counts}; A's run on A's file afterwards: {again}",
                      500 not in counts and again == 201))
    stop_all(t)
    return out


def origins(srv: Server, local: Server) -> list[Result]:
    t = teacher(srv)
    evil = f"http://127.0.0.1:{srv.port + 1}"
    before = t.get("/api/session").json()["role"]
    r = t.post("/api/class/rotate", headers={"origin": evil})
    still = t.get("/api/session").json()["role"]
    out = [result("5", "a page on another port posts a body-less form to /api/class/rotate "
                  "with the teacher's cookie", f"{r.status_code}; the teacher is still "
                  f"{still} (was {before})", r.status_code == 403 and still == "teacher")]
    page = local.browser(origin=False)
    r = page.post("/api/uploads", content="1,2\n3,4\n" * 20,
                  headers={**CSV, "origin": "http://localhost:5173"})
    out.append(result("5", "a page of another origin uploads to a server without a token",
                      str(r.status_code), r.status_code == 403))
    return out


def teacher_sessions(srv: Server, quick: bool) -> list[Result]:
    c1 = teacher(srv).cookies["collapse_lab_session"]
    t2 = teacher(srv)
    c2 = t2.cookies["collapse_lab_session"]
    sniffed = srv.browser()
    sniffed.cookies.set("collapse_lab_session", c2)
    role_before = sniffed.get("/api/session").json()["role"]
    t2.post("/api/session/signout")
    role_after = sniffed.get("/api/session").json()["role"]
    out = [result("8", "sign in twice; replay a sniffed cookie after the teacher signs out",
                  f"cookies differ: {c1 != c2}; the copy is {role_before}, then {role_after}",
                  c1 != c2 and role_after == "viewer")]
    guesser = srv.browser("10.0.8.1")
    n = 200 if quick else 1000
    compared = 0
    t0 = time.perf_counter()
    for i in range(n):
        r = guesser.get("/api/session", headers={"authorization": f"Bearer guess-{i:06d}"})
        compared += r.status_code != 429
    rate = n / (time.perf_counter() - t0)
    out.append(result("8", f"{n} token guesses on one connection",
                      f"{compared} compared, the rest 429 ({rate:.0f} requests/s)",
                      compared <= 10))
    return out


PROBE = """
import sys, time, httpx
c = httpx.Client(base_url=sys.argv[1], timeout=30)
end, lat = time.monotonic() + float(sys.argv[2]), []
while time.monotonic() < end:
    t0 = time.perf_counter(); c.get("/api/health"); lat.append(time.perf_counter() - t0)
    time.sleep(0.02)
lat.sort(); print(lat[-1] * 1000, lat[len(lat) // 2] * 1000)
"""


def burst(srv: Server, body: bytes) -> tuple[list[int], float, float]:
    """50 concurrent POSTs of `body` (with the token), while another process times
    /api/health (a probe in this process would time its own threads): the answers, and the
    probe's worst and median in ms."""
    probe = subprocess.Popen([sys.executable, "-c", PROBE, srv.url, "4"],
                             stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    codes: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            codes.append(c.post("/api/compare", content=body, headers={
                "authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
            ).status_code)

    senders = [threading.Thread(target=send) for _ in range(50)]
    for x in senders:
        x.start()
    for x in senders:
        x.join()
    worst, median = (float(v) for v in probe.communicate(timeout=60)[0].split())
    return sorted(set(codes)), worst, median


def smaller(srv: Server) -> list[Result]:
    import websockets.sync.client as wsc

    t = teacher(srv)
    out = []
    nested = b'{"base": {"a": ' + b"[" * 32_000 + b"]" * 32_000 + b'}, "variants": []}'
    flat = b'{"base": {"a": [' + b"1," * 32_000 + b'1]}, "variants": []}'  # as long, not deep
    seen = {}
    for label, body in (("nested", nested), ("flat", flat)):
        codes, worst, median = burst(srv, body)
        seen[label] = (codes, worst, median)
    codes, worst, median = seen["nested"]
    out.append(result("10", "50 concurrent 64 KiB deeply nested JSON bodies",
                      f"answers {codes}; /api/health worst {worst:.0f} ms, median "
                      f"{median:.0f} ms (50 flat bodies as long: worst {seen['flat'][1]:.0f} "
                      "ms)", codes == [422] and worst < max(500.0, 2 * seen["flat"][1])))
    r = t.post("/api/uploads", content="x,y,mode\n" + "1,2,\u00b2\n" * 30, headers=CSV)
    out.append(result("10", "an upload whose mode column is a superscript two",
                      str(r.status_code), r.status_code == 422))
    h = t.head("/api/health")
    out.append(result("10", "HEAD on a GET route", str(h.status_code), h.status_code == 200))
    try:
        with wsc.connect(f"ws://127.0.0.1:{srv.port}/ws/class",
                         additional_headers={"origin": f"https://127.0.0.1:{srv.port}"}) as ws:
            ws.recv(timeout=5)
        got, ok = "accepted", False
    except Exception as e:  # noqa: BLE001 - refused: the upgrade never becomes a websocket
        got, ok = f"refused ({type(e).__name__})", True
    out.append(result("10", "websocket upgrade from https:// on an http server", got, ok))
    return out


def main(argv: list[str] | None = None) -> list[Result]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (the test's)")
    ap.add_argument("--json", action="store_true", help="one JSON object per attack")
    ap.add_argument("--only", metavar="ITEMS", help="comma-separated items to run, e.g. 5,10")
    ns = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        env = {"COLLAPSE_LAB_MAX_RUNS": "20", "COLLAPSE_LAB_RUNS_PER_STUDENT": "5",
               "COLLAPSE_LAB_MAX_WORKERS": "2", "COLLAPSE_LAB_PACK": "false"}
        srv = Server(Path(d) / "class", "--token", TOKEN, "--students-may-run", env=env)
        local = Server(Path(d) / "local")
        results: list[Result] = []
        t0 = time.monotonic()
        steps = [("1", lambda: identity(srv)), ("2", lambda: caps(srv, ns.quick)),
                 ("3", lambda: pruning(srv, ns.quick)), ("4", lambda: uploads(srv, ns.quick)),
                 ("5", lambda: origins(srv, local)), ("10", lambda: smaller(srv)),
                 ("8", lambda: teacher_sessions(srv, ns.quick))]
        only = set(ns.only.split(",")) if ns.only else None
        try:
            for item, step in steps:
                if only is None or item in only:
                    results += step()
            rss = rss_mb(srv.proc.pid)
        finally:
            srv.stop()
            local.stop()
    for r in results:
        if ns.json:
            print(json.dumps(r))
        else:
            mark = "refused" if r["refused"] else "NOT REFUSED"
            print(f"{r['item']:>3}  {mark:<11}  {r['attack']}\n{'':16} got: {r['got']}")
    if not ns.json:
        print(f"{sum(r['refused'] for r in results)} of {len(results)} refused in "
              f"{time.monotonic() - t0:.0f} s; server RSS at the end {rss:.0f} MB")
    return results


if __name__ == "__main__":
    res = main()
    sys.exit(0 if all(r["refused"] for r in res) else 1)
