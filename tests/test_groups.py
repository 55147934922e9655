"""Runs sharing a worker through the HTTP API and websockets: a compare group in one worker
with per-run control, and runs packed onto a live worker as they arrive."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings

SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu", dataset="ring8", seed=5)
ORIGIN = {"origin": "http://testserver"}


def app_client(tmp_path_factory, **settings):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), worker_threads=1, frame_rate=20,
                 snapshot_every=2, stop_timeout=10, **settings)
    return TestClient(create_app(s))


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with app_client(tmp_path_factory, max_workers=2, pack=False) as c:
        yield c


def get(client, rid):
    return client.get(f"/api/runs/{rid}").json()


def first_frame(client, rid):
    with client.websocket_connect(f"/ws/runs/{rid}", headers=ORIGIN) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["run"]["id"] == rid
        real = protocol.decode(ws.receive_bytes())
        assert real.type == protocol.REAL and real.samples.shape == (2500, 2)
        for _ in range(500):
            m = ws.receive()
            if m.get("bytes") is not None:
                return protocol.decode(m["bytes"])
    raise AssertionError("no frame")


def test_group_trains_in_one_worker_with_per_run_control(client):
    r = client.post("/api/compare", json={
        "base": dict(SMALL, steps=1_000_000),
        "variants": [{"objective": "nsgan"}, {"objective": "hinge", "lr_d": 1e-4}]})
    assert r.status_code == 201, r.text
    a, b = (x["id"] for x in r.json()["runs"])
    wait_for(lambda: get(client, a)["dataset"] and get(client, b)["dataset"])
    pa, pb = get(client, a)["provenance"], get(client, b)["provenance"]
    assert pa["pid"] == pb["pid"]  # one worker process for the group
    assert pa["runs_in_step"] + pb["runs_in_step"] >= 3  # stacked as they joined

    # each run streams its own frames, with its own objective's value kind
    fa, fb = first_frame(client, a), first_frame(client, b)
    assert fa.samples.shape == fb.samples.shape == (200, 2) and len(fa.occupancy) == 8
    assert fa.scalars["value_kind"] == "probability" and fb.scalars["value_kind"] == "critic"

    # a value change reaches run a only
    r = client.post(f"/api/runs/{a}/control", json={"set": {"lr_g": 3e-4}})
    assert r.status_code == 200, r.text
    assert get(client, a)["config"]["lr_g"] == 3e-4  # the server's copy changes on acceptance
    wait_for(lambda: get(client, a)["config_version"] == 1)
    assert get(client, b)["config_version"] == 0 and get(client, b)["config"]["lr_g"] != 3e-4

    # a knob that shapes the step is taken too: the run moves to a stack of its own
    r = client.post(f"/api/runs/{b}/control", json={"set": {"n_critic": 2}})
    assert r.status_code == 200, r.text
    wait_for(lambda: get(client, b)["config_version"] == 1)
    sb = get(client, b)["step"]
    wait_for(lambda: get(client, b)["step"] > sb)
    # a second quick change is checked against the first (one validation, at the door)
    with client.websocket_connect(f"/ws/runs/{b}", headers=ORIGIN) as ws:
        ws.send_text(json.dumps({"set": {"unroll": 2, "optimizer": "rmsprop"}}))
        for _ in range(2000):
            m = ws.receive()
            if m.get("text") and json.loads(m["text"])["type"] == "error":
                err = json.loads(m["text"])
                break
        assert err["field"] == "unroll" and "adam" in err["message"]

    # pause is per run: b pauses, a trains on
    assert client.post(f"/api/runs/{b}/control", json={"action": "pause"}).status_code == 200
    wait_for(lambda: get(client, b)["status"] == "paused")
    sa = get(client, a)["step"]
    wait_for(lambda: get(client, a)["step"] > sa)
    assert get(client, a)["status"] == "running"
    assert client.post(f"/api/runs/{b}/control",
                       json={"action": "step", "n": 1, "part": "g"}).status_code == 200
    wait_for(lambda: get(client, b)["step"] > sb)
    assert client.post(f"/api/compare/{r_group(client, a)}/control",
                       json={"action": "resume"}).status_code == 200
    wait_for(lambda: get(client, a)["status"] == get(client, b)["status"] == "running")

    # stop ends run a alone; b trains on in the same process
    assert client.post(f"/api/runs/{a}/control", json={"action": "stop"}).status_code == 200
    ra = wait_for(lambda: (j := get(client, a))["status"] == "done" and j)
    assert ra["reason"].startswith("stopped at step")
    sb = get(client, b)["step"]
    wait_for(lambda: get(client, b)["step"] > sb)
    assert get(client, b)["status"] == "running"
    r = client.post(f"/api/compare/{r_group(client, b)}/control", json={"action": "stop"})
    assert [x.get("accepted") for x in r.json()["results"]] == [None, {"action": "stop"}]
    wait_for(lambda: get(client, b)["status"] == "done")
    for rid in (a, b):
        ticks = client.get(f"/api/runs/{rid}/history").json()["ticks"]
        assert len(ticks) >= 2 and ticks[0]["step"] == 0


def r_group(client, rid):
    return get(client, rid)["group_id"]


def test_short_group_finishes_each_its_own_series(client):
    r = client.post("/api/compare", json={
        "base": dict(SMALL, steps=20), "variants": [{"gp": 1.0}, {"lr_g": 5e-4}]})
    runs = [x["id"] for x in r.json()["runs"]]
    for rid in runs:
        j = wait_for(lambda rid=rid: (j := get(client, rid))["status"] == "done" and j)
        assert j["reason"] == "finished 20 steps" and j["step"] == 20
        ticks = client.get(f"/api/runs/{rid}/history").json()["ticks"]
        assert ticks[0]["step"] == 0 and ticks[-1]["step"] == 20
    h0, h1 = (client.get(f"/api/runs/{rid}/history").json()["ticks"] for rid in runs)
    assert h0[-1]["term_gp"] > 0 and h1[-1]["term_gp"] == 0  # each run its own series


def test_runs_pack_onto_a_live_worker(tmp_path_factory):
    """With one worker slot and packing on, runs that can share its step join it as they
    arrive; a run of another shape waits for a worker of its own."""
    with app_client(tmp_path_factory, max_workers=1, pack=True) as c:
        first = c.post("/api/runs", json=dict(SMALL, steps=1_000_000)).json()["id"]
        wait_for(lambda: get(c, first)["dataset"])
        second = c.post("/api/runs", json=dict(SMALL, seed=9, lr_d=5e-4, steps=60)).json()
        assert second["status"] == "running"  # joined at once
        other = c.post("/api/runs", json=dict(SMALL, n_critic=3, steps=20)).json()
        assert other["status"] == "queued"  # another shape: no place until the worker ends
        done = wait_for(lambda: (j := get(c, second["id"]))["status"] == "done" and j)
        assert done["provenance"]["pid"] == get(c, first)["provenance"]["pid"]
        assert done["reason"] == "finished 60 steps"
        assert get(c, other["id"])["status"] == "queued"
        c.post(f"/api/runs/{first}/control", json={"action": "stop"})
        wait_for(lambda: get(c, other["id"])["status"] == "done")
