"""Stopping many runs at once (POST /api/runs/stop) and a queued run's place and wait, in-process
with real workers: one worker slot and no packing, so a second run waits in the queue."""

from __future__ import annotations

import pytest
from cookie_jar import Browser
from fastapi.testclient import TestClient
from polling import wait_for

from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings

TOKEN = "teacher-secret-1"
SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu", steps=0)
ACTIVE = ("queued", "running", "paused", "stopping")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), token=TOKEN, max_workers=1,
                 worker_threads=1, frame_rate=20, stop_timeout=10, pack=False)
    a = create_app(s)
    with TestClient(a, base_url="http://127.0.0.1") as c:
        a.state.test_client = c
        yield a


def teacher(app) -> Browser:
    b = Browser(app.state.test_client)
    assert b.get(f"/?token={TOKEN}").status_code == 303
    return b


def student(app) -> Browser:
    b = Browser(app.state.test_client)
    b.get("/api/session")  # the student cookie
    return b


def status(b: Browser, rid: str) -> str:
    return b.get(f"/api/runs/{rid}").json()["status"]


def nothing_active(b: Browser) -> bool:
    return not [r for r in b.get("/api/runs").json()["runs"] if r["status"] in ACTIVE]


def test_stop_body_is_typed(app):
    t = teacher(app)
    for body, words in [({}, "exactly one of runs, group or all"),
                        ({"runs": ["abc"], "all": True}, "got runs, all"),
                        ({"all": False}, "all"), ({"runs": []}, "runs"),
                        ({"runs": ["a" * 33]}, "runs"), ({"group": "nope"}, "group"),
                        ({"runs": ["x"] * 65}, "runs"), ({"everything": True}, "everything")]:
        r = t.post("/api/runs/stop", json=body)
        assert r.status_code == 422, (body, r.text)
        assert words in r.text, (body, r.text)
    r = t.post("/api/runs/stop", json={"runs": ["abc"]})
    assert r.status_code == 404 and "no run 'abc'" in r.json()["detail"]
    r = t.post("/api/runs/stop", json={"group": "gabc"})
    assert r.status_code == 404 and "no compare group" in r.json()["detail"]


def test_queue_place_wait_and_stopping_runs_groups_and_everything(app):
    t, s1, s2 = teacher(app), student(app), student(app)
    assert t.post("/api/class/settings", json={"students_may_run": True,
                                                "student_cap": 2}).status_code == 200
    # the teacher's run trains until stopped: a run queued behind it has no estimated wait
    a = t.post("/api/runs", json=SMALL).json()
    wait_for(lambda: status(t, a["id"]) == "running", timeout=60)
    b = s1.post("/api/runs", json=SMALL).json()
    c = s1.post("/api/runs", json=SMALL).json()
    assert b["status"] == "queued" and b["queue_position"] == 1 and b["wait_s"] is None
    assert c["queue_position"] == 2
    # once it has a length and a measured speed, the wait is what it has left at that speed
    assert t.post(f"/api/runs/{a['id']}/control",
                  json={"set": {"steps": 1_000_000}}).status_code == 200
    wait_for(lambda: t.get(f"/api/runs/{a['id']}").json()["config"]["steps"] == 1_000_000
             and (t.get(f"/api/runs/{a['id']}").json()["last"] or {}).get("steps_per_sec"),
             timeout=60)
    wait_for(lambda: t.get(f"/api/runs/{b['id']}").json()["wait_s"] is not None, timeout=30)
    ra, rb = t.get(f"/api/runs/{a['id']}").json(), t.get(f"/api/runs/{b['id']}").json()
    left = (1_000_000 - ra["step"]) / ra["last"]["steps_per_sec"]
    assert 0.5 * left < rb["wait_s"] < 2 * left
    # one worker: the second in the queue waits for a second worker to free up, unknown
    assert t.get(f"/api/runs/{c['id']}").json()["wait_s"] is None
    listed = {r["id"]: r for r in t.get("/api/runs").json()["runs"]}
    assert listed[b["id"]]["queue_position"] == 1 and listed[a["id"]]["queue_position"] is None

    # a student stops only their own runs, never a group or everything
    assert s2.post("/api/runs/stop", json={"runs": [b["id"]]}).status_code == 403
    assert s1.post("/api/runs/stop", json={"runs": [a["id"], b["id"]]}).status_code == 403
    assert status(t, b["id"]) == "queued"  # a refusal stops none of them
    assert s1.post("/api/runs/stop", json={"all": True}).status_code == 403
    r = s1.post("/api/runs/stop", json={"runs": [b["id"], b["id"]]})
    assert r.status_code == 200 and r.json() == {"stopped": [b["id"]], "already": []}
    assert status(t, b["id"]) == "done"  # a queued run ends at once, kept in History
    assert t.get(f"/api/runs/{c['id']}").json()["queue_position"] == 1

    # the teacher stops a compare group
    g = t.post("/api/compare", json={"base": SMALL, "variants": [{}, {"lr_g": 0.001}]}).json()
    r = t.post("/api/runs/stop", json={"group": g["id"]}).json()
    assert sorted(r["stopped"]) == sorted(x["id"] for x in g["runs"])
    # ... and everything; asking again names what had already ended or was stopping
    r = t.post("/api/runs/stop", json={"all": True}).json()
    assert set(r["stopped"]) == {a["id"], c["id"]}
    wait_for(lambda: nothing_active(t), timeout=60)
    again = t.post("/api/runs/stop", json={"runs": [a["id"]]}).json()
    assert again == {"stopped": [], "already": [a["id"]]}
    assert len(t.get("/api/runs").json()["runs"]) == 5  # stopped, not deleted
    # students switched off: stopping is refused at the door, before the body is read
    t.post("/api/class/settings", json={"students_may_run": False})
    assert s1.post("/api/runs/stop", json={"runs": [c["id"]]}).status_code == 403
