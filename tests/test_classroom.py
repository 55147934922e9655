"""The class channel in-process: the teacher presents, followers get it; viewers cannot present;
the teacher sees how many are connected and following."""

from __future__ import annotations

import json

import pytest
from cookie_jar import Browser
from fastapi.testclient import TestClient

from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings

ORIGIN = {"origin": "http://127.0.0.1"}
TOKEN = "teacher-secret-1"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), token=TOKEN, worker_threads=1)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


def until(ws, kind, limit=50):
    for _ in range(limit):
        m = ws.receive_json()
        if m["type"] == kind:
            return m
    raise AssertionError(f"no {kind} message")


def test_present_follow_and_audience(client):
    teacher, v1, v2 = Browser(client), Browser(client), Browser(client)
    teacher.get(f"/?token={TOKEN}")
    with teacher.websocket_connect("ws://127.0.0.1/ws/class", headers=ORIGIN) as t:
        hello = t.receive_json()
        assert hello["type"] == "class" and hello["role"] == "teacher"
        assert hello["audience"]["connected"] == 0
        with v1.websocket_connect("ws://127.0.0.1/ws/class", headers=ORIGIN) as a, \
                v2.websocket_connect("ws://127.0.0.1/ws/class", headers=ORIGIN) as b:
            for ws in (a, b):
                h = ws.receive_json()
                assert h["role"] == "viewer" and h["presented"] is None and "audience" not in h
            aud = until(t, "audience")
            while aud["connected"] < 2:
                aud = until(t, "audience")
            assert aud == {"type": "audience", "connected": 2, "following": 2, "teachers": 1}
            # the teacher presents: every page gets the same state, numbered
            state = {"view": "live", "run": "abc123", "replay": 40, "lesson": "collapse-ring",
                     "lesson_step": 2, "show": {"arrows": True}}
            t.send_text(json.dumps({"type": "present", "state": state}))
            for ws in (a, b, t):
                p = until(ws, "present")
                assert p["state"]["run"] == "abc123" and p["state"]["lesson_step"] == 2
                assert p["state"]["show"]["arrows"] is True and p["seq"] == 1
            # a viewer detaches: the teacher's count says so
            b.send_text(json.dumps({"type": "follow", "following": False}))
            assert until(t, "audience")["following"] == 1
            # a viewer cannot present, and bad messages are named
            a.send_text(json.dumps({"type": "present", "state": {"run": "zzz"}}))
            assert "only the teacher" in until(a, "error")["message"]
            a.send_text(json.dumps({"type": "present", "state": {"view": "evil"}}))
            assert "state.view" in until(a, "error")["message"]
            a.send_text("x" * 5000)
            assert "at most 4096" in until(a, "error")["message"]
        # a late joiner gets the latest presented state in its hello
        with Browser(client).websocket_connect("ws://127.0.0.1/ws/class", headers=ORIGIN) as late:
            h = late.receive_json()
            assert h["presented"]["run"] == "abc123" and h["seq"] == 1
        # settings changes reach every page
        with v1.websocket_connect("ws://127.0.0.1/ws/class", headers=ORIGIN) as a:
            a.receive_json()
            assert teacher.post("/api/class/settings",
                                json={"students_may_run": True}).status_code == 200
            assert until(a, "settings")["settings"]["students_may_run"] is True
            # a rotated token: every page is told to ask who it is again
            assert teacher.post("/api/class/rotate").status_code == 200
            until(a, "session")
            client.app.state.token = TOKEN


def test_the_class_is_bounded(tmp_path):
    s = Settings(data_dir=tmp_path, worker_threads=1, max_class=1)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        with c.websocket_connect("ws://127.0.0.1/ws/class") as first:
            assert first.receive_json()["type"] == "class"
            with c.websocket_connect("ws://127.0.0.1/ws/class") as second:
                m = second.receive_json()
                assert m["type"] == "error" and "full" in m["message"]
