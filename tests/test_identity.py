"""Identities that cannot be borrowed, writes that prove their origin, quotas per owner: the
attacks a student on the classroom network (or a page the teacher opens) tried, in-process with
real workers. bench/attacks.py runs them again against a real `serve` and reports figures."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from cookie_jar import Browser
from fastapi.testclient import TestClient
from polling import wait_for
from starlette.websockets import WebSocketDisconnect

from collapse_lab.server.app import create_app
from collapse_lab.server.auth import SESSION_COOKIE, STUDENT_COOKIE
from collapse_lab.server.guard import MAX_DEPTH, json_depth
from collapse_lab.server.identity import TOKEN_FAILURES, Identity, clean_name
from collapse_lab.server.settings import Settings

TOKEN = "teacher-secret-27"
TINY = dict(g_width=8, d_width=8, z_dim=2, batch_size=16, eval_samples=100, grid_size=8,
            tick_every=5, device="cpu")
LONG = dict(TINY, steps=1_000_000)
SHORT = dict(TINY, steps=10)
HERE = "http://127.0.0.1"
CSV = {"content-type": "text/csv"}


def make(tmp_path, **kw) -> TestClient:
    s = Settings(data_dir=tmp_path, token=TOKEN, worker_threads=1, stop_timeout=10, **kw)
    return TestClient(create_app(s), base_url=HERE)


def teacher(c: TestClient) -> Browser:
    b = Browser(c)
    assert b.get(f"/?token={TOKEN}").status_code == 303
    return b


def student(c: TestClient, name: str | None = None) -> Browser:
    b = Browser(c)
    assert b.get("/api/session").json()["owner"] == "student"
    if name:
        assert b.post("/api/session/name", json={"name": name}).status_code == 200
    return b


def cookie(b: Browser, name: str) -> str:
    return next(ck.value for ck in b.jar if ck.name == name)


def set_cookie(b: Browser, name: str, value: str) -> None:
    from http.cookiejar import Cookie

    b.jar = [ck for ck in b.jar if ck.name != name] + [Cookie(
        0, name, value, None, False, "127.0.0.1", False, False, "/", True, False, None, False,
        None, None, {})]


def settle(b: Browser, rid: str) -> None:
    wait_for(lambda: b.get(f"/api/runs/{rid}").json()["status"] in ("done", "failed"),
             timeout=90)


def stop(b: Browser, rid: str) -> None:
    assert b.post(f"/api/runs/{rid}/control", json={"action": "stop"}).status_code == 200
    settle(b, rid)


# ---------------------------------------------------------------------------- 1. identities
def test_a_copied_or_forged_student_id_is_nobody(tmp_path):
    with make(tmp_path, students_may_run=True, max_workers=1) as c:
        t, a, b = teacher(c), student(c, "Ana"), student(c, "Ben")
        run = a.post("/api/runs", json=LONG).json()
        # nobody else sees who started it: a kind and a display name, never an id
        listed = b.get("/api/runs").text
        raw = cookie(a, STUDENT_COOKIE)
        sid = raw.split(".")[0]
        assert sid not in listed and "student:" not in listed
        seen = b.get(f"/api/runs/{run['id']}").json()
        assert (seen["owner"], seen["owner_name"], seen["mine"]) == ("student", "Ana", False)
        assert a.get(f"/api/runs/{run['id']}").json()["mine"] is True
        # B wears A's bare id, A's id with another signature, a made-up id: nobody, each time
        for forged in (sid, f"{sid}.{'0' * 32}", f"{'1' * 16}.{'2' * 32}", raw + "x"):
            set_cookie(b, STUDENT_COOKIE, forged)
            for action in ("pause", "stop"):
                r = b.post(f"/api/runs/{run['id']}/control", json={"action": action})
                assert r.status_code == 403, (forged, action, r.text)
            assert b.post("/api/runs", json=LONG).status_code == 403
        # A's full cookie, copied, is A (a stolen cookie is a stolen session: HttpOnly keeps
        # it from scripts); the run is untouched by all of the above
        assert c.get(f"/api/runs/{run['id']}").json()["status"] in ("queued", "running")
        stop(t, run["id"])


def test_teacher_sessions_are_fresh_server_side_and_end(tmp_path):
    with make(tmp_path) as c:
        t1, t2 = teacher(c), teacher(c)
        s1, s2 = cookie(t1, SESSION_COOKIE), cookie(t2, SESSION_COOKIE)
        assert s1 != s2 and TOKEN not in s1
        # a sniffed cookie is not the token's image: a made-up one is nobody
        fake = Browser(c)
        set_cookie(fake, SESSION_COOKIE, "x" * 43)
        assert fake.get("/api/session").json()["role"] == "viewer"
        # sign-out ends this session (a replayed copy of the cookie too), not the other
        replay = Browser(c)
        set_cookie(replay, SESSION_COOKIE, s1)
        assert replay.get("/api/session").json()["role"] == "teacher"
        assert t1.post("/api/session/signout").json() == {"signed_out": True}
        assert replay.get("/api/session").json()["role"] == "viewer"
        assert replay.post("/api/class/rotate").status_code == 403
        assert t2.get("/api/session").json()["role"] == "teacher"
        # rotation ends every session but the rotating browser's new one
        t3 = teacher(c)
        assert t3.post("/api/class/rotate").status_code == 200
        assert t2.get("/api/session").json()["role"] == "viewer"
        assert t3.get("/api/session").json()["role"] == "teacher"


def test_session_expiry_is_kept_by_the_server(tmp_path, monkeypatch):
    import collapse_lab.server.identity as ident

    who = Identity(tmp_path)
    value = who.new_teacher_session()
    assert who.teacher_session(value)
    now = time.time()
    monkeypatch.setattr(ident.time, "time", lambda: now + ident.SESSION_MAX_AGE + 1)
    assert not who.teacher_session(value)


def test_wrong_tokens_are_slowed_per_address(tmp_path):
    with make(tmp_path) as c:
        for i in range(TOKEN_FAILURES):
            r = c.get("/api/session", headers={"authorization": f"Bearer wrong-{i:04d}"})
            assert r.json()["role"] == "viewer"
        # the address is now answered 429 without a comparison, the right token included
        r = c.get("/api/session", headers={"authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 429 and "wait" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1
        assert c.get(f"/?token={TOKEN}", follow_redirects=False).status_code == 429
        # another address is not slowed by it
        other = TestClient(c.app, base_url=HERE, client=("10.1.2.3", 5000))
        assert other.get(f"/?token={TOKEN}", follow_redirects=False).status_code == 303


def test_names_are_cleaned_bounded_unique_and_removable(tmp_path):
    assert clean_name("  Ana\u202e \t Maria\u200b ") == "Ana Maria"
    for bad in ("", " \u200b ", "x" * 33):
        with pytest.raises(ValueError):
            clean_name(bad)
    with make(tmp_path, students_may_run=True) as c:
        t = teacher(c)
        a, b = student(c), student(c)
        assert a.post("/api/session/name", json={"name": "<b>Ana</b>"}).json() == {
            "name": "<b>Ana</b>"}  # stored as text; the page sets textContent
        assert b.post("/api/session/name", json={"name": "<B>ana</B>"}).json() == {
            "name": "<B>ana</B> 2"}
        r = b.post("/api/session/name", json={"name": "y" * 40})
        assert r.status_code == 422 and r.json()["field"] == "name"
        assert a.get("/api/session").json()["name"] == "<b>Ana</b>"
        # only a student names themselves; the list and removal are the teacher's
        assert t.post("/api/session/name", json={"name": "T"}).status_code == 403
        assert a.get("/api/class/students").status_code == 403
        listed = t.get("/api/class/students").json()
        assert {s["name"] for s in listed} == {"<b>Ana</b>", "<B>ana</B> 2"}
        ana = next(s for s in listed if s["name"] == "<b>Ana</b>")
        assert a.delete(f"/api/class/students/{ana['handle']}/name").status_code == 403
        assert t.delete(f"/api/class/students/{ana['handle']}/name").json() == {
            "removed": "<b>Ana</b>"}
        assert a.get("/api/session").json()["name"] is None
        assert t.delete(f"/api/class/students/{ana['handle']}/name").status_code == 404


# ---------------------------------------------------------------------------- 2. caps
def test_resume_counts_toward_the_cap(tmp_path):
    data = tmp_path / "d"
    with make(data, students_may_run=True, student_cap=2, max_workers=1) as c:
        a = student(c, "Ana")
        ids = [a.post("/api/runs", json=LONG).json()["id"] for _ in range(2)]
        wait_for(lambda: any(a.get(f"/api/runs/{i}").json()["status"] == "running"
                             for i in ids), timeout=60)
        jar = a.jar
    # the server stops: both runs are interrupted; the same data dir, the same secret
    with make(data, students_may_run=True, student_cap=1, max_workers=1) as c:
        a = Browser(c)
        a.jar = jar
        assert all(c.get(f"/api/runs/{i}").json()["status"] == "interrupted" for i in ids)
        assert a.post(f"/api/runs/{ids[0]}/control", json={"action": "resume"}).status_code \
            == 200
        r = a.post(f"/api/runs/{ids[1]}/control", json={"action": "resume"})
        assert r.status_code == 429 and "1 active run" in r.json()["detail"]
        assert c.get(f"/api/runs/{ids[1]}").json()["status"] == "interrupted"
        stop(teacher(c), ids[0])


def test_the_teachers_run_never_queues_behind_students(tmp_path):
    with make(tmp_path, students_may_run=True, max_workers=2, pack=False) as c:
        t, a, b = teacher(c), student(c, "A"), student(c, "B")
        ra = a.post("/api/runs", json=LONG).json()
        rb = b.post("/api/runs", json=dict(LONG, g_width=12)).json()
        wait_for(lambda: c.get(f"/api/runs/{ra['id']}").json()["status"] == "running")
        time.sleep(0.5)
        # one slot is kept for the teacher: the second student's run waits, the teacher's not
        assert c.get(f"/api/runs/{rb['id']}").json()["status"] == "queued"
        rt = t.post("/api/runs", json=dict(LONG, d_width=12)).json()
        wait_for(lambda: c.get(f"/api/runs/{rt['id']}").json()["status"] == "running",
                 timeout=60)
        for r in (rt, ra, rb):
            stop(t, r["id"])


# ---------------------------------------------------------------------------- 3. quotas
def test_pruning_takes_only_the_starters_own_runs(tmp_path):
    with make(tmp_path, students_may_run=True, max_runs=6, runs_per_student=2,
              max_workers=2) as c:
        t, a = teacher(c), student(c, "A")
        mine = [t.post("/api/runs", json=SHORT).json()["id"] for _ in range(3)]
        for rid in mine:
            settle(t, rid)
        started = []
        for _ in range(5):  # a student's start-and-finish loop
            r = a.post("/api/runs", json=SHORT)
            assert r.status_code == 201, r.text
            started.append(r.json()["id"])
            settle(a, started[-1])
        ids = {r["id"] for r in c.get("/api/runs").json()["runs"]}
        assert set(mine) <= ids  # the teacher's runs are all kept
        assert ids & set(started) == set(started[-2:])  # the student keeps their newest two
        # the teacher fills the server: their own oldest finished run makes room
        more = [t.post("/api/runs", json=SHORT).json()["id"] for _ in range(2)]
        for rid in more:
            settle(t, rid)
        ids = {r["id"] for r in c.get("/api/runs").json()["runs"]}
        assert mine[0] not in ids and set(started[-2:]) <= ids
        # a server full of others' runs and none of the starter's finished: a clear 429
        b = student(c, "B")
        assert len(ids) == 6
        r = b.post("/api/runs", json=SHORT)
        assert r.status_code == 429 and "max_runs" in r.json()["detail"]


def test_uploads_are_private_bounded_per_owner_and_race_free(tmp_path):
    rng = np.random.default_rng(0)
    body = "\n".join(f"{x:.3f},{y:.3f}" for x, y in rng.normal(size=(50, 2)))
    with make(tmp_path, students_may_run=True, upload_files=3, max_workers=1) as c:
        t, a, b = teacher(c), student(c, "A"), student(c, "B")
        ta = t.post("/api/uploads", content=body, headers=CSV).json()
        ups = [a.post("/api/uploads", content=body, headers=CSV).json() for _ in range(5)]
        bu = b.post("/api/uploads", content=body, headers=CSV).json()
        folder = tmp_path / "uploads"
        a_dir = folder / ups[0]["path"].rsplit("/", 1)[0]
        assert ups[0]["path"].startswith("students/") and str(tmp_path) not in json.dumps(ups)
        # A keeps their newest three; B's and the teacher's files are untouched
        assert sorted(p.name for p in a_dir.iterdir()) == sorted(u["name"] for u in ups[-3:])
        assert (folder / bu["path"]).is_file() and (folder / ta["path"]).is_file()
        # B cannot train on A's file, by its path or its name; A and the teacher can
        for data in (ups[-1]["path"], ups[-1]["name"], str(folder / ups[-1]["path"])):
            r = b.post("/api/runs", json=dict(LONG, dataset="csv", data=data))
            assert r.status_code == 422 and r.json()["field"] == "data", data
        run = a.post("/api/runs", json=dict(LONG, dataset="csv", data=ups[-1]["path"]))
        assert run.status_code == 201, run.text
        rid = run.json()["id"]
        # others read the run's config without the path; its owner and the teacher with it
        assert b.get(f"/api/runs/{rid}").json()["config"]["data"] == ups[-1]["name"]
        assert a.get(f"/api/runs/{rid}").json()["config"]["data"] == ups[-1]["path"]
        assert t.get(f"/api/runs/{rid}").json()["config"]["data"] == ups[-1]["path"]
        # a student may train on the teacher's upload (shown to the class)
        stop(t, rid)
        r = b.post("/api/runs", json=dict(SHORT, dataset="csv", data=ta["path"]))
        assert r.status_code == 201, r.text
        settle(t, r.json()["id"])
        # 16 parallel uploads of one owner against its pruning: no 500, three kept
        codes: list[int] = []

        def up() -> None:
            codes.append(a.c.post("/api/uploads", content=body, headers=CSV,
                                  cookies={STUDENT_COOKIE: cookie(a, STUDENT_COOKIE)})
                         .status_code)

        threads = [threading.Thread(target=up) for _ in range(16)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert codes == [201] * 16
        assert len(list(a_dir.glob("*.csv"))) == 3


def test_the_servers_upload_total_is_a_clear_413(tmp_path):
    rows = "\n".join(f"{i % 97}.123456,{i % 89}.654321" for i in range(20_000))
    with make(tmp_path, students_may_run=True, upload_total_bytes=1 << 20) as c:
        a = student(c, "A")
        codes = [a.post("/api/uploads", content=rows, headers=CSV).status_code
                 for _ in range(4)]
        assert codes[0] == 201 and codes[-1] == 413
        r = a.post("/api/uploads", content=rows, headers=CSV)
        assert "upload_total_bytes" in r.json()["detail"]


# ---------------------------------------------------------------------------- 5. origins
def test_writes_from_another_origin_are_refused(tmp_path):
    with make(tmp_path) as c:
        t = teacher(c)
        for origin in ("http://127.0.0.1:8888", "https://127.0.0.1", "http://evil.example",
                       "null", "http://127.0.0.1.evil.example"):
            # a body-less form post to rotate, with the teacher's cookie: refused
            r = t.post("/api/class/rotate", headers={"origin": origin})
            assert r.status_code == 403 and "another origin" in r.json()["detail"], origin
            assert c.app.state.token == TOKEN
        r = t.post("/api/class/rotate", headers={"sec-fetch-site": "same-site"})
        assert r.status_code == 403 and c.app.state.token == TOKEN
        # the page's own origin, its default port written or not, and scripts (no Origin) pass
        assert t.post("/api/class/settings", json={"student_cap": 2},
                      headers={"origin": "http://127.0.0.1:80"}).status_code == 200
        assert t.post("/api/class/settings", json={"student_cap": 1},
                      headers={"origin": HERE, "sec-fetch-site": "same-origin"}
                      ).status_code == 200
        # websockets: the scheme counts too
        with pytest.raises(WebSocketDisconnect):
            with t.websocket_connect("ws://127.0.0.1/ws/class",
                                     headers={"origin": "https://127.0.0.1"}):
                pass
        with t.websocket_connect("ws://127.0.0.1/ws/class", headers={"origin": HERE}) as ws:
            assert ws.receive_json()["type"] == "class"


def test_a_server_without_a_token_refuses_other_origins_too(tmp_path):
    s = Settings(data_dir=tmp_path, worker_threads=1)
    with TestClient(create_app(s), base_url=HERE) as c:
        r = c.post("/api/uploads", content="1,2\n3,4\n" * 20,
                   headers={**CSV, "origin": "http://localhost:3000"})
        assert r.status_code == 403
        assert not (tmp_path / "uploads").exists()
        assert c.post("/api/uploads", content="1,2\n3,4\n" * 20,
                      headers={**CSV, "origin": HERE}).status_code == 201


# ---------------------------------------------------------------------------- 10. smaller
def test_json_nesting_is_refused_before_parsing(tmp_path):
    assert json_depth(b'{"a": [[1]], "b": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == 3
    deep = b"[" * 40 + b"]" * 40
    assert json_depth(deep) == 40
    assert json_depth(b'["\\"' + b"[" * 40 + b'"]') == 1  # an escaped quote stays in its string
    assert json_depth(b'["\\\\"' + b",[" * 40 + b"]" * 40 + b"]") == 41  # \\ ends the string
    with make(tmp_path) as c:
        body = b'{"base": {"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}, \"variants\": []}"
        t0 = time.perf_counter()
        r = c.post("/api/compare", content=body, headers={
            "authorization": f"Bearer {TOKEN}", "content-type": "application/json"})
        assert r.status_code == 422 and f"{MAX_DEPTH} levels" in r.json()["detail"]
        assert time.perf_counter() - t0 < 0.5


def test_superscript_mode_is_a_422_and_head_answers_like_get(tmp_path):
    with make(tmp_path) as c:
        t = teacher(c)
        r = t.post("/api/uploads", content="x,y,mode\n" + "1,2,\u00b2\n" * 30, headers=CSV)
        assert r.status_code == 422 and "mode must be an integer" in r.json()["detail"]
        for path in ("/api/health", "/api/options", "/api/runs", "/"):
            g, h = c.get(path), c.head(path)
            assert h.status_code == g.status_code == 200, path
            assert h.content == b"" and h.headers["content-type"] == g.headers["content-type"]
