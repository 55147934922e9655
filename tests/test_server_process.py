"""`collapse-lab serve` as a real subprocess: a run to done, a restart, history read back,
an interrupted run resumed from its checkpoint, and `collapse-lab watch` against it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_for as _wait_for

from collapse_lab.server.client import Client

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def wait_for(fn, timeout=60.0):
    # a server subprocess refuses connections until it is up: that is "not yet", not a failure
    return _wait_for(fn, timeout, every=0.1, ignoring=(OSError,))


class Server:
    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
                   COLLAPSE_LAB_CHECKPOINT_EVERY="2", COLLAPSE_LAB_WORKER_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collapse_lab.server.cli", "serve", "--port", str(self.port),
             "--data-dir", str(data_dir)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.client = Client(self.url, timeout=30)
        wait_for(lambda: self.proc.poll() is None and self.client.health())

    def stop(self) -> int:
        """SIGTERM (graceful: workers stopped, runs marked), then kill after a timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def test_serve_run_restart_history_resume(tmp_path):
    srv = Server(tmp_path)
    try:
        first = srv.proc.stdout.readline()
        assert first.startswith(f"Collapse Lab at http://127.0.0.1:{srv.port}/")
        c = srv.client
        a = c.start_run(preset="collapse-ring8", steps=60, **SMALL)
        b = c.start_run(preset="collapse-ring8", steps=1_000_000, **SMALL)
        with c.stream(a["id"]) as s:
            s.layers(manifold=True)  # a viewer may ask; the frames stay valid either way
            frames = list(s.frames())
        assert s.status == "done" and frames and frames[-1].step == 60
        assert not s.errors
        ring = c.preview("ring8")
        assert ring.samples.shape == (2500, 2) and ring.scalars["dataset"]["num_modes"] == 8
        a_done = c.run(a["id"])
        assert a_done["status"] == "done" and a_done["step"] == 60
        history = c.history(a["id"])
        assert [t["step"] for t in history["ticks"]] == list(range(0, 61, 5))
        wait_for(lambda: (c.run(b["id"])["checkpoint_step"] or 0) >= 20)
        assert srv.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after shutdown
    finally:
        srv.stop()

    srv = Server(tmp_path)
    try:
        c = srv.client
        assert c.history(a["id"]) == history  # everything of a finished run survives
        replay = c.replay(a["id"])
        assert replay[0].samples.shape == (2500, 2) and replay[-1].step == 60

        out = subprocess.run([sys.executable, "-m", "collapse_lab.server.cli", "watch", srv.url,
                              a["id"],
                              "--json", "--frames", "3"], cwd=ROOT, capture_output=True,
                             text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert out.returncode == 0, out.stderr
        last = json.loads(out.stdout.strip().split("\n")[-1])
        assert last["step"] == 60 and last["objective"] == "nsgan" and len(last["occupancy"]) == 8

        bb = c.run(b["id"])
        assert bb["status"] == "interrupted" and "shut down" in bb["reason"]
        ck = bb["checkpoint_step"]
        res = c.control(b["id"], {"action": "resume"})
        assert res["from_step"] == ck
        wait_for(lambda: c.run(b["id"])["step"] > ck + 20)
        c.control(b["id"], {"action": "stop"})
        wait_for(lambda: c.run(b["id"])["status"] == "done")
        steps = [t["step"] for t in c.history(b["id"])["ticks"]]
        assert steps == sorted(set(steps)) and steps[-1] > ck + 20
        regular = [s for s in steps if s % 5 == 0]  # the stop adds one off-beat final tick
        assert regular == list(range(0, regular[-1] + 1, 5))  # one series, no gap, no repeat
    finally:
        srv.stop()


def test_resume_after_sigkill_continues_the_exact_series(tmp_path):
    """kill -9 of the server mid-run; after a restart the run is interrupted, and resume goes
    on from the step it names, with no gap or repeated tick — the ticks from there on are the
    ones an uninterrupted run of the same config has."""
    cfg = dict(SMALL, preset="collapse-ring8", steps=1_000_000, seed=11)
    srv = Server(tmp_path)
    try:
        c = srv.client
        run = c.start_run(**cfg)
        wait_for(lambda: (c.run(run["id"])["checkpoint_step"] or 0) >= 40)
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(10)
    finally:
        srv.stop()

    srv = Server(tmp_path)
    try:
        c = srv.client
        r = c.run(run["id"])
        assert r["status"] == "interrupted"
        before = [t["step"] for t in c.history(run["id"])["ticks"]]
        res = c.control(run["id"], {"action": "resume"})
        n = res["from_step"]
        assert n >= 40 and n in before  # a checkpoint the stored series reaches
        wait_for(lambda: c.run(run["id"])["step"] >= n + 40)
        c.control(run["id"], {"action": "stop"})
        wait_for(lambda: c.run(run["id"])["status"] == "done")
        ticks = c.history(run["id"])["ticks"]
    finally:
        srv.stop()
    steps = [t["step"] for t in ticks]
    regular = [s for s in steps if s % 5 == 0]  # the stop adds one off-beat final tick
    assert regular == list(range(0, regular[-1] + 1, 5))  # no gap, no repeat
    assert regular[-1] >= n + 40

    # the same config trained straight through, headless
    out = subprocess.run(
        [sys.executable, "-m", "collapse_lab.server.cli", "train", "--json", "--series",
         "--preset", "collapse-ring8", "--steps", str(n + 40), "--threads", "1",
         *[a for k, v in cfg.items() if k not in ("preset", "steps")
           for a in (f"--{k.replace('_', '-')}", str(v))]],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    straight = {t["step"]: t for t in json.loads(out.stdout)["series"]}
    resumed = {t["step"]: t for t in ticks}
    for s in range(n + 5, n + 41, 5):
        for k in ("loss_d", "loss_g", "modes_covered", "hq_fraction", "effective_modes"):
            assert resumed[s][k] == straight[s][k], (s, k)
