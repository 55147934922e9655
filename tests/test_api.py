"""Every HTTP endpoint in-process (TestClient), its error paths, and one real worker.

One app, with max_workers=1 and packing off: a long run holds the only worker, so the runs started
after it stay `queued` and their controls can be checked without more worker processes.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings
from collapse_lab.trainer.families.gan.config import knobs

SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu")




@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), max_workers=1, worker_threads=1,
                 frame_rate=20, snapshot_every=2, checkpoint_every=5, stop_timeout=10,
                 pack=False)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def long_run(client):
    """A run that holds the only worker slot until the test stops it."""
    r = client.post("/api/runs", json=dict(SMALL, preset="collapse-ring8", steps=1_000_000,
                                           label="long"))
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "running" and run["label"] == "long"
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["step"] >= 10)
    return run["id"]


def test_health_and_options(client):
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["protocol"] == 1 and h["token_required"] is False
    opts = client.get("/api/options").json()
    assert [k["name"] for k in opts["knobs"]] == [k["name"] for k in knobs()]
    assert {"ring8", "digits"} <= {d["name"] for d in opts["datasets"]}
    assert "collapse-ring8" in {p["name"] for p in opts["presets"]}


@pytest.mark.parametrize("body, field, words", [
    ({"lr_g": 5}, "lr_g", "[1e-06, 0.1]"),
    ({"objective": "bogus"}, "objective", "one of minimax"),
    ({"steps": "many"}, "steps", "an integer in [0, 1e+06]"),
    ({"preset": "nope"}, "preset", "unknown preset"),
    ({"bogus": 1}, "bogus", "unknown field"),
    ({"label": "x" * 300}, "label", "at most 200"),
    ({"dataset": "csv"}, "data", "needs a file"),
])
def test_create_run_rejects_bad_input_naming_the_field(client, body, field, words):
    r = client.post("/api/runs", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field and words in r.json()["detail"]


def test_missing_and_malformed_ids(client):
    assert client.get("/api/runs/abc123").status_code == 404
    assert client.get("/api/runs/NOT-AN-ID").status_code == 422
    assert client.delete("/api/runs/abc123").status_code == 404
    assert client.post("/api/runs/abc123/control", json={"action": "pause"}).status_code == 404
    assert client.get("/api/runs/abc123/history").status_code == 404
    assert client.get("/api/runs/abc123/replay").status_code == 404
    assert client.get("/api/compare/gabc").status_code == 404


def test_control_validation(client, long_run):
    url = f"/api/runs/{long_run}/control"
    r = client.post(url, json={"action": "jump"})
    assert r.status_code == 422 and "action" in r.json()["detail"]
    r = client.post(url, json={"action": "step", "n": 0})
    assert r.status_code == 422 and r.json()["field"] == "n"
    r = client.post(url, json={"action": "step", "part": "q"})
    assert r.status_code == 422 and r.json()["field"] == "part"
    assert "'d', 'g' or 'both'" in r.json()["detail"]
    r = client.post(url, json={"action": "stop", "part": "d"})
    assert r.status_code == 422 and r.json()["field"] == "part"
    assert "goes with action step only" in r.json()["detail"]
    r = client.post(url, json={"set": {"lr_d": 1.5}})
    assert r.status_code == 422 and r.json()["field"] == "lr_d" and "0.1" in r.json()["detail"]
    r = client.post(url, json={"set": {"z_dim": 8}})  # shapes the networks: not live
    assert r.status_code == 422 and "cannot change while a run is in progress" in r.text
    r = client.post(url, json={"set": {}})
    assert r.status_code == 422
    assert client.get(f"/api/runs/{long_run}").json()["config"]["lr_d"] == 1e-3  # untouched


def test_live_control_of_a_real_worker(client, long_run):
    url = f"/api/runs/{long_run}/control"
    r = client.post(url, json={"set": {"lr_g": 3e-4, "objective": "hinge"}})
    assert r.status_code == 200 and r.json()["accepted"] == {"lr_g": 3e-4, "objective": "hinge"}
    run = wait_for(lambda: (j := client.get(f"/api/runs/{long_run}").json())
                   ["config_version"] >= 1 and j)
    assert run["config"]["objective"] == "hinge" and run["config"]["lr_g"] == 3e-4
    assert client.post(url, json={"action": "pause"}).status_code == 200
    wait_for(lambda: client.get(f"/api/runs/{long_run}").json()["status"] == "paused")
    step = client.get(f"/api/runs/{long_run}").json()["step"]
    assert client.post(url, json={"action": "step", "n": 3}).json()["accepted"]["n"] == 3
    wait_for(lambda: client.get(f"/api/runs/{long_run}").json()["step"] == step + 3)
    assert client.post(url, json={"action": "resume"}).status_code == 200
    wait_for(lambda: client.get(f"/api/runs/{long_run}").json()["status"] == "running")


def test_queued_runs_and_compare_groups(client, long_run):
    r = client.post("/api/runs", json=dict(SMALL, dataset="grid25", steps=50))
    queued = r.json()["id"]
    assert r.json()["status"] == "queued"  # the only worker is busy
    r = client.post(f"/api/runs/{queued}/control", json={"set": {"z_dim": 8}})
    assert r.json()["applied"] is True  # nothing started yet: any knob may change
    assert client.get(f"/api/runs/{queued}").json()["config"]["z_dim"] == 8
    r = client.post(f"/api/runs/{queued}/control", json={"action": "pause"})
    assert r.status_code == 409 and "queued" in r.json()["detail"]

    bad = client.post("/api/compare", json={"base": {"dataset": "ring8"},
                                            "variants": [{"seed": 1}, {"seed": 2}]})
    assert bad.status_code == 422 and bad.json()["field"] == "variants[0].seed"
    one = client.post("/api/compare", json={"variants": [{"objective": "nsgan"}]})
    assert one.status_code == 422 and one.json()["field"] == "variants"
    worse = client.post("/api/compare", json={"variants": [{"objective": "nsgan"},
                                                           {"gp": -1}]})
    assert worse.status_code == 422 and worse.json()["field"] == "variants[1].gp"

    r = client.post("/api/compare", json={
        "base": dict(SMALL, preset="collapse-ring8", seed=3, steps=40), "label": "obj",
        "variants": [{"objective": "nsgan"}, {"objective": "wgan-gp", "n_critic": 2}]})
    assert r.status_code == 201, r.text
    g = r.json()
    assert [x["status"] for x in g["runs"]] == ["queued", "queued"]
    assert {x["config"]["seed"] for x in g["runs"]} == {3}
    assert [x["config"]["objective"] for x in g["runs"]] == ["nsgan", "wgan-gp"]
    r = client.post(f"/api/compare/{g['id']}/runs", json={"variant": {"objective": "hinge"}})
    assert r.status_code == 201 and len(r.json()["runs"]) == 3
    assert r.json()["runs"][2]["label"] == "objective=hinge"
    assert client.post(f"/api/compare/{g['id']}/runs",
                       json={"variant": {"dataset": "spiral"}}).status_code == 422
    assert g["id"] in [x["id"] for x in client.get("/api/compare").json()["groups"]]
    assert len(client.get(f"/api/runs?group={g['id']}").json()["runs"]) == 3

    r = client.post(f"/api/compare/{g['id']}/control", json={"action": "stop"})
    assert [x["accepted"] for x in r.json()["results"]] == [{"action": "stop"}] * 3
    group = client.get(f"/api/compare/{g['id']}").json()
    assert {x["status"] for x in group["runs"]} == {"done"}
    assert client.post(f"/api/compare/{g['id']}/control",
                       json={"action": "pause"}).json()["results"][0]["error"]
    assert client.post(f"/api/runs/{queued}/control", json={"action": "stop"}).status_code == 200
    assert client.delete(f"/api/runs/{queued}").status_code == 200
    assert client.get(f"/api/runs/{queued}").status_code == 404


def test_stop_history_csv_and_replay(client, long_run):
    url = f"/api/runs/{long_run}/control"
    assert client.post(url, json={"action": "stop"}).json()["status"] == "stopping"
    run = wait_for(lambda: (j := client.get(f"/api/runs/{long_run}").json())["status"]
                   == "done" and j)
    assert run["reason"].startswith("stopped at step")
    assert run["provenance"]["device"] == "cpu" and run["provenance"]["torch"]
    assert client.post(url, json={"action": "pause"}).status_code == 409
    assert client.post(url, json={"set": {"lr_g": 1e-4}}).status_code == 409

    h = client.get(f"/api/runs/{long_run}/history").json()
    steps = [t["step"] for t in h["ticks"]]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == run["step"]
    assert {t["config_version"] for t in h["ticks"]} == {0, 1}
    assert [e["changes"] for e in h["events"] if e["type"] == "config"] == [
        {"lr_g": 3e-4, "objective": "hinge"}]
    csv = client.get(f"/api/runs/{long_run}/history?format=csv")
    lines = csv.text.strip().split("\n")
    assert csv.headers["content-type"].startswith("text/csv")
    assert lines[0].split(",")[:4] == ["step", "time", "config_version", "steps_per_sec"]
    assert lines[0].split(",")[-8:] == [f"occ_{i}" for i in range(8)]
    # the columns are the run's family's scalars, in the registry's order
    from collapse_lab.trainer import families, stats

    assert lines[0].split(",")[:-8] == [s.name for s in stats.scalars(families.get("gan"))]
    assert len(lines) == len(steps) + 1
    assert client.get(f"/api/runs/{long_run}/history?format=xml").status_code == 422

    r = client.get(f"/api/runs/{long_run}/replay")
    msgs = [protocol.decode(m) for m in protocol.unpack_records(r.content)]
    assert msgs[0].type == protocol.REAL and msgs[0].samples.shape == (2500, 2)
    frames = msgs[1:]
    assert len(frames) == int(r.headers["x-frames"]) >= 2
    assert frames[-1].step == run["step"] and frames[-1].scalars["status"] == "done"


def test_origin_is_checked_on_websocket_upgrade(client, long_run):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as e:
        with client.websocket_connect(f"ws://127.0.0.1/ws/runs/{long_run}",
                                      headers={"origin": "http://evil.example"}):
            pass
    assert e.value.code == 1008
    with client.websocket_connect("ws://127.0.0.1/ws/runs/abc") as ws:
        assert ws.receive_json()["type"] == "error"


def test_token_guards_changes_but_not_watching(tmp_path):
    s = Settings(data_dir=tmp_path, token="teacher-secret-1", worker_threads=1)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        assert c.get("/api/health").json()["token_required"] is True
        assert c.get("/api/runs").status_code == 200
        r = c.post("/api/runs", json={"steps": 10})
        assert r.status_code == 403 and "teacher token" in r.json()["detail"]
        assert c.post("/api/runs", json={"lr_g": 9},
                      headers={"authorization": "Bearer wrong-token"}).status_code == 403
        # the right token passes the guard (and reaches validation)
        assert c.post("/api/runs", json={"lr_g": 9},
                      headers={"authorization": "Bearer teacher-secret-1"}).status_code == 422
        # never in the URL: a query token is refused (URLs end up in logs and histories)
        assert c.post("/api/runs?token=teacher-secret-1", json={"lr_g": 9}).status_code == 403
        assert c.post("/api/compare", json={"variants": [{}, {}]}).status_code == 403


def test_static_frontend_and_plotly(client):
    r = client.get("/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000
    assert "Collapse Lab" in client.get("/openapi.json").json()["info"]["title"]
