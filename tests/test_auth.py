"""Roles, the teacher's session cookie, token rotation and students' own runs, over HTTP and the
websocket, in-process with real workers (one worker slot, tiny runs)."""

from __future__ import annotations

import json

import pytest
from cookie_jar import Browser
from fastapi.testclient import TestClient
from polling import wait_for
from starlette.websockets import WebSocketDisconnect

from collapse_lab.server.app import create_app
from collapse_lab.server.auth import SESSION_COOKIE, STUDENT_COOKIE
from collapse_lab.server.settings import Settings

TOKEN = "teacher-secret-1"
SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=200, grid_size=8,
             tick_every=5, device="cpu", steps=1_000_000)
ORIGIN = {"origin": "http://127.0.0.1"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), token=TOKEN, max_workers=1,
                 worker_threads=1, frame_rate=20, stop_timeout=10)
    a = create_app(s)
    with TestClient(a, base_url="http://127.0.0.1") as c:
        a.state.test_client = c
        yield a


def browser(app) -> Browser:
    return Browser(app.state.test_client)


def teacher(app) -> Browser:
    """A browser that opened the teacher link: it holds the session cookie."""
    b = browser(app)
    r = b.get(f"/?token={TOKEN}")
    assert r.status_code == 303 and r.headers["location"] == "/"
    return b


def ended(b: Browser, rid: str) -> None:
    """Wait until a stopped run is over, so the next test's run gets the one worker slot."""
    wait_for(lambda: b.get(f"/api/runs/{rid}").json()["status"] in ("done", "failed"), timeout=90)


def test_teacher_link_sets_a_strict_httponly_cookie_and_cleans_the_url(app):
    c = browser(app)
    r = c.get(f"/?token={TOKEN}")
    assert r.status_code == 303
    assert r.headers["location"] == "/"  # the address bar ends without the token
    assert r.headers["referrer-policy"] == "no-referrer"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/" in low
    assert TOKEN not in cookie  # the cookie holds a session id, not the token
    # every sign-in is a fresh session id (the server keeps them): not a value of the token
    again = browser(app).get(f"/?token={TOKEN}").headers["set-cookie"]
    assert again.split(";")[0] != cookie.split(";")[0]
    assert c.get("/api/session").json()["role"] == "teacher"
    # the page itself is served at the clean address
    page = c.get("/")
    assert page.status_code == 200 and "Collapse Lab" in page.text
    # a wrong teacher link lands, watch only, on a page that says so
    other = browser(app)
    r = other.get("/?token=not-the-token")
    assert r.status_code == 303 and r.headers["location"] == "/?link=expired"
    assert "set-cookie" not in r.headers
    assert other.get("/api/session").json()["role"] == "viewer"


def test_roles_and_what_each_may_do(app):
    viewer, t = browser(app), teacher(app)
    s = viewer.get("/api/session").json()
    assert s["role"] == "viewer" and s["owner"] == "student"
    assert s["students_may_run"] is False
    assert STUDENT_COOKIE in viewer.cookie_names  # a per-browser identity, set on first sight
    assert all("0.0.0.0" not in u and "token" not in u for u in s["viewer_links"])
    # a viewer is refused every change; a token in the URL is refused too (URLs get logged)
    r = viewer.post("/api/runs", json=SMALL)
    assert r.status_code == 403 and "watch only" in r.json()["detail"]
    assert viewer.post(f"/api/runs?token={TOKEN}", json=SMALL).status_code == 403
    assert viewer.post("/api/class/settings",
                       json={"students_may_run": True}).status_code == 403
    # scripts send the token in a header
    r = viewer.post("/api/runs", json={"lr_g": 9},
                    headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422
    # the teacher's browser: its cookie is enough
    run = t.post("/api/runs", json=dict(SMALL, label="teacher's")).json()
    assert run["owner"] == "teacher"
    assert viewer.post(f"/api/runs/{run['id']}/control",
                       json={"action": "stop"}).status_code == 403
    assert viewer.delete(f"/api/runs/{run['id']}").status_code == 403
    assert t.post(f"/api/runs/{run['id']}/control", json={"action": "stop"}).status_code == 200
    ended(t, run["id"])


def test_websocket_control_by_cookie_not_by_url(app):
    viewer, t = browser(app), teacher(app)
    run = t.post("/api/runs", json=SMALL).json()
    rid = run["id"]
    # a viewer's socket watches but its control messages are refused
    with viewer.websocket_connect(f"ws://127.0.0.1/ws/runs/{rid}?token={TOKEN}",
                                  headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_text(json.dumps({"action": "pause"}))
        for _ in range(500):
            m = ws.receive()
            if m.get("text") and json.loads(m["text"])["type"] == "error":
                assert "watch only" in json.loads(m["text"])["message"]
                break
        else:
            raise AssertionError("no refusal")
    # the teacher's socket carries the session cookie: its control is taken
    with t.websocket_connect(f"ws://127.0.0.1/ws/runs/{rid}", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_text(json.dumps({"action": "stop"}))
        wait_for(lambda: t.get(f"/api/runs/{rid}").json()["status"] in ("stopping", "done"),
                 timeout=90)
    ended(t, rid)


def test_rotation_ends_old_links_and_sessions(app):
    t, other_teacher = teacher(app), teacher(app)
    lines: list[str] = []
    app.state.announce = lines.extend
    r = t.post("/api/class/rotate")
    assert r.status_code == 200 and r.json() == {"rotated": True, "printed": True}
    new = app.state.token
    assert new != TOKEN
    assert len(lines) >= 1 and all(f"?token={new}" in x for x in lines)
    assert all(TOKEN not in x for x in lines)
    # the rotating browser keeps its session (a new cookie); the other one lost it
    assert t.get("/api/session").json()["role"] == "teacher"
    assert other_teacher.get("/api/session").json()["role"] == "viewer"
    assert other_teacher.post("/api/runs", json=SMALL).status_code == 403
    # the old teacher link no longer signs anyone in; the new one does
    c = browser(app)
    assert c.get(f"/?token={TOKEN}").headers["location"] == "/?link=expired"
    assert c.get(f"/?token={new}").headers["location"] == "/"
    assert c.get("/api/session").json()["role"] == "teacher"
    # the old token in a header is refused too
    assert other_teacher.post("/api/runs", json=SMALL, headers={
        "authorization": f"Bearer {TOKEN}"}).status_code == 403
    app.state.token = TOKEN  # the other tests use the first token


def test_students_run_their_own_under_a_cap(app):
    a, b, t = browser(app), browser(app), teacher(app)
    a.get("/api/session")
    b.get("/api/session")
    assert a.post("/api/runs", json=SMALL).status_code == 403  # not allowed yet
    assert t.post("/api/class/settings", json={"students_may_run": True,
                                                "student_cap": 1}).json() == {
        "students_may_run": True, "student_cap": 1}
    assert t.post("/api/class/settings", json={"student_cap": 99}).status_code == 422
    ra = a.post("/api/runs", json=dict(SMALL, label="a's")).json()
    assert ra["owner"] == "student" and ra["mine"] is True
    # over the cap: a clear refusal naming the cap and the run to stop
    r = a.post("/api/runs", json=SMALL)
    assert r.status_code == 429
    assert "1 active run at a time" in r.json()["detail"] and ra["id"] in r.json()["detail"]
    rb = b.post("/api/runs", json=SMALL).json()
    # a student steers their own run only; the teacher steers any
    assert b.post(f"/api/runs/{ra['id']}/control",
                  json={"action": "pause"}).status_code == 403
    assert a.post(f"/api/runs/{ra['id']}/control",
                  json={"set": {"lr_g": 0.0005}}).status_code == 200
    assert a.delete(f"/api/runs/{ra['id']}").status_code == 403  # deleting is the teacher's
    assert a.post("/api/compare", json={"variants": [{}, {}]}).status_code == 403
    for rid in (ra["id"], rb["id"]):
        assert t.post(f"/api/runs/{rid}/control", json={"action": "stop"}).status_code == 200
    # the run stopped: the student may start another
    wait_for(lambda: a.get(f"/api/runs/{ra['id']}").json()["status"] == "done", timeout=30)
    again = a.post("/api/runs", json=SMALL)
    assert again.status_code == 201
    t.post(f"/api/runs/{again.json()['id']}/control", json={"action": "stop"})
    ended(t, again.json()["id"])
    # the teacher switches students off: their runs are watch only again
    t.post("/api/class/settings", json={"students_may_run": False})
    assert a.post("/api/runs", json=SMALL).status_code == 403


def test_class_socket_refuses_other_origins(app):
    c = browser(app)
    with pytest.raises(WebSocketDisconnect) as e:
        with c.websocket_connect("ws://127.0.0.1/ws/class", headers={"origin": "http://evil.example"}):
            pass
    assert e.value.code == 1008


def test_local_server_without_token(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, worker_threads=1)),
                    base_url="http://127.0.0.1") as c:
        s = c.get("/api/session").json()
        assert s["role"] == "local" and s["token_required"] is False
        assert c.post("/api/class/rotate").status_code == 409
        assert c.get("/?token=x", follow_redirects=False).headers["location"] == "/"
