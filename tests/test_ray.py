"""The Ray backend against a real local Ray (2 CPUs): runs through the server, a viewer, a live
change (a GAN's, and a run of every other family switched to its remedy twin), a killed actor,
and a sweep on Ray.

Marked `ray` (skip them with `-m "not ray"`). Without Ray installed they skip with the reason,
except under CI=true, where that is a failure (.ci/run installs the `ray` extra).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings
from collapse_lab.trainer import families
from collapse_lab.trainer.registry import PRESETS, preset_values

try:
    import ray
except ImportError as e:  # pragma: no cover - depends on the install
    ray = None
    if os.environ.get("CI") == "true":
        raise RuntimeError("the Ray tests need Ray under CI: pip install -e '.[test,ray]'") from e

pytestmark = [pytest.mark.ray, pytest.mark.skipif(ray is None, reason="Ray is not installed "
                                                  "(pip install -e '.[ray]')")]
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu")
ORIGIN = {"origin": "http://127.0.0.1"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), backend="ray", max_workers=2,
                 worker_threads=1, frame_rate=20, snapshot_every=2, stop_timeout=10,
                 ray_cpus_per_worker=0.5)
    try:
        with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
            yield c
    finally:
        ray.shutdown()


def get(client, rid):
    return client.get(f"/api/runs/{rid}").json()


def test_a_run_trains_streams_and_takes_a_live_change_on_ray(client):
    r = client.post("/api/runs", json=dict(SMALL, preset="collapse-ring8", steps=400))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    with client.websocket_connect(f"ws://127.0.0.1/ws/runs/{rid}", headers=ORIGIN) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["dataset"]["name"] == "ring8"
        real = protocol.decode(ws.receive_bytes())
        assert real.samples.shape == (2500, 2)
        frames = []
        while len(frames) < 3:
            m = ws.receive()
            if m.get("bytes") is not None:
                frames.append(protocol.decode(m["bytes"]))
        assert frames[-1].samples.shape == (200, 2) and len(frames[-1].occupancy) == 8
        ws.send_text(json.dumps({"set": {"lr_d": 5e-4}}))
        wait_for(lambda: get(client, rid)["config_version"] == 1, timeout=60)
    run = wait_for(lambda: (j := get(client, rid))["status"] == "done" and j, timeout=120)
    assert run["reason"] == "finished 400 steps"
    assert run["provenance"]["backend"] == "ray" and run["provenance"]["pid"] != os.getpid()
    ticks = client.get(f"/api/runs/{rid}/history").json()["ticks"]
    assert [t["step"] for t in ticks] == list(range(0, 401, 5))
    assert ticks[-1]["config_version"] == 1


OTHER_FAMILIES = [f for f in families.FAMILIES if f != families.DEFAULT]


@pytest.mark.parametrize("family", OTHER_FAMILIES)
def test_every_family_trains_streams_and_switches_to_its_remedy_twin_on_ray(client, family):
    """A family's first preset on Ray, watched, switched live to a remedy twin's live knobs (as
    the page's "switch this run to the preset" sends them), to the end of its steps."""
    collapse = next(n for n, p in PRESETS.items() if p.family == family and not p.base)
    twin = next(n for n, p in PRESETS.items() if p.base == collapse)
    live = families.get(family).live_knobs - {"steps", "tick_every", "speed"}
    start, target = preset_values(collapse), preset_values(twin)
    change = {k: v for k, v in target.items() if k in live and start.get(k) != v}
    assert change, (collapse, twin)  # the twin differs from its collapse preset in a live knob
    r = client.post("/api/runs", json=dict(preset=collapse, steps=60, tick_every=10))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    with client.websocket_connect(f"ws://127.0.0.1/ws/runs/{rid}", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "hello"
        frames = 0
        while frames < 2:
            m = ws.receive()
            if m.get("bytes") is not None:
                protocol.decode(m["bytes"])
                frames += 1
        ws.send_text(json.dumps({"set": change}))
        wait_for(lambda: get(client, rid)["config_version"] == 1, timeout=60)
    run = wait_for(lambda: (j := get(client, rid))["status"] in ("done", "failed") and j,
                   timeout=180)
    assert run["status"] == "done" and run["reason"] == "finished 60 steps", run["reason"]
    assert run["provenance"]["backend"] == "ray" and run["provenance"]["pid"] != os.getpid()
    assert run["config"]["family"] == family
    assert all(run["config"][k] == v for k, v in change.items()), (change, run["config"])
    ticks = client.get(f"/api/runs/{rid}/history").json()["ticks"]
    assert ticks[-1]["step"] == 60 and ticks[-1]["config_version"] == 1


def test_a_killed_actor_fails_its_run_and_nothing_else(client):
    a = client.post("/api/runs", json=dict(SMALL, steps=1_000_000)).json()["id"]
    b = client.post("/api/runs", json=dict(SMALL, steps=1_000_000, n_critic=2)).json()["id"]
    pa = wait_for(lambda: get(client, a)["provenance"], timeout=90)
    wait_for(lambda: get(client, b)["provenance"], timeout=90)
    assert pa["pid"] != get(client, b)["provenance"]["pid"]  # two actors
    os.kill(pa["pid"], signal.SIGKILL)
    ra = wait_for(lambda: (j := get(client, a))["status"] == "failed" and j, timeout=60)
    assert "Ray actor lost" in ra["reason"]
    sb = get(client, b)["step"]
    wait_for(lambda: get(client, b)["step"] > sb, timeout=60)
    assert get(client, b)["status"] == "running"
    client.post(f"/api/runs/{b}/control", json={"action": "stop"})
    wait_for(lambda: get(client, b)["status"] == "done", timeout=60)


def test_a_sweep_of_eight_configs_on_ray_prints_its_table(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "collapse_lab.server.cli", "sweep", "--backend", "ray",
         "--preset", "collapse-ring8", "--vary", "lr_g=1e-4,2e-4,5e-4,1e-3",
         "--vary", "objective=nsgan,hinge", "--seeds", "0", "--steps", "40", "--pack", "4",
         "--csv", str(tmp_path / "rows.csv")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("config") for line in lines)
    assert sum("lr_g=" in line and "objective=" in line for line in lines) == 8
    assert len((tmp_path / "rows.csv").read_text().splitlines()) == 1 + 8
