"""The websocket of a run, in-process, with a real worker process behind it."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from collapse_lab.server import protocol
from collapse_lab.server.app import create_app
from collapse_lab.server.settings import Settings

SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=300, grid_size=12,
             tick_every=5, device="cpu")


def next_frame(ws, texts=None, limit=500):
    for _ in range(limit):
        m = ws.receive()
        assert m["type"] != "websocket.close", m
        if m.get("bytes") is not None:
            return protocol.decode(m["bytes"])
        if texts is not None:
            texts.append(json.loads(m["text"]))
    raise AssertionError("no frame")


def until(ws, pred, limit=2000):
    """Receive until a text message satisfies pred; returns every text message seen."""
    texts = []
    for _ in range(limit):
        m = ws.receive()
        assert m["type"] != "websocket.close", m
        if m.get("text") is not None:
            texts.append(json.loads(m["text"]))
            if pred(texts[-1]):
                return texts
    raise AssertionError("message not seen")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    s = Settings(data_dir=tmp_path_factory.mktemp("data"), worker_threads=1, frame_rate=20)
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        yield c


def test_frames_control_and_second_viewer(client):
    run = client.post("/api/runs", json=dict(SMALL, preset="collapse-ring8",
                                             steps=1_000_000)).json()
    with client.websocket_connect(f"ws://127.0.0.1/ws/runs/{run['id']}",
                                  headers={"origin": "http://127.0.0.1"}) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["protocol"] == 1
        assert hello["dataset"]["name"] == "ring8" and len(hello["dataset"]["centres"]) == 8
        assert hello["value_kind"] == "probability" and hello["run"]["id"] == run["id"]
        real = protocol.decode(ws.receive_bytes())
        assert real.type == protocol.REAL and real.samples.shape == (2500, 2)
        assert set(real.nearest.tolist()) == set(range(8))

        f = next_frame(ws)
        assert f.type == protocol.FRAME and f.samples.shape == (300, 2)
        assert f.value_grid.shape == (12, 12) and len(f.occupancy) == 8
        assert f.config_version == 0 and f.scalars["status"] == "running"

        # a bad change is refused on this socket, the run goes on untouched
        ws.send_text(json.dumps({"set": {"lr_g": 7}}))
        err = until(ws, lambda t: t["type"] == "error")[-1]
        assert err["field"] == "lr_g" and "[1e-06, 0.1]" in err["message"]
        # (malformed messages close the socket: tests/test_hardening.py)

        ws.send_text(json.dumps({"set": {"objective": "wgan-gp"}}))
        texts = []
        f = next_frame(ws, texts)
        while f.config_version == 0:
            f = next_frame(ws, texts)
        assert f.config_version == 1 and f.scalars["value_kind"] == "critic"
        ev = next(t["event"] for t in texts if t["type"] == "event")
        assert ev["type"] == "config" and ev["changes"] == {"objective": "wgan-gp"}
        assert ev["step"] <= f.step

        # a second viewer joining now gets the change in its hello
        with client.websocket_connect(f"ws://127.0.0.1/ws/runs/{run['id']}") as ws2:
            h2 = ws2.receive_json()
            assert [e["version"] for e in h2["events"]] == [1]
            ws2.receive_bytes()
            assert next_frame(ws2).config_version == 1

        ws.send_text(json.dumps({"action": "pause"}))
        until(ws, lambda t: t.get("status") == "paused")
        ws.send_text(json.dumps({"action": "stop"}))
        texts = until(ws, lambda t: t.get("status") == "done")
        assert any(t.get("status") == "stopping" for t in texts)


def test_viewer_mailbox_keeps_latest_frame_and_every_event():
    import asyncio

    from collapse_lab.server.fanout import Hub, Overflow
    from collapse_lab.server.messages import Event, Status

    async def scenario():
        hub = Hub(max_text=3)
        v = hub.join()
        for i in range(50):  # a stalled viewer: 50 frames arrive, it keeps only the newest
            hub.publish_frame(bytes([i]))
        hub.publish(Event(event={"n": 1}))
        items = await v.next()
        assert items[0] == bytes([49]) and v.dropped_frames == 49 and len(items) == 2
        # a newer frame replaces an unsent one and goes out at its own place among the texts
        hub.publish(Event(event={"n": 2}))
        hub.publish_frame(b"older")
        hub.publish(Event(event={"n": 3}))
        hub.publish_frame(b"newer")
        items = await v.next()
        assert [type(i) for i in items] == [str, str, bytes] and items[2] == b"newer"
        # the last frame goes out before the status that ends the run, even when both wait
        # for a slow viewer
        hub.publish_frame(b"last")
        hub.publish(Status(status="done"))
        items = await v.next()
        assert items[0] == b"last" and '"done"' in items[1]
        # a viewer joining mid-run starts from the latest frame, before what it was sent since
        w = hub.join()
        hub.publish(Event(event={"n": 4}))
        w.push_first_frame(b"start")
        assert (await w.next())[0] == b"start"
        hub.publish_frame(b"live")
        w.push_first_frame(b"stale")  # a newer frame is already waiting: it is kept
        assert await w.next() == [b"live"]
        for i in range(4):  # never-dropped messages overflow: the viewer is cut off instead
            hub.publish(Event(event={"n": i}))
        with pytest.raises(Overflow):
            await v.next()

    asyncio.run(scenario())


def test_hub_wants_a_layer_while_any_viewer_draws_it():
    from collapse_lab.server.fanout import Hub

    hub = Hub()
    a, b = hub.join(), hub.join()
    assert not hub.wants("manifold")
    assert hub.set_layers(a, {"manifold": True}) is True  # the first viewer: tell the worker
    assert hub.set_layers(b, {"manifold": True}) is False  # already wanted: nothing to tell
    assert hub.set_layers(a, {"manifold": None}) is False  # None leaves a layer as it was
    assert hub.set_layers(a, {"manifold": False}) is False and hub.wants("manifold")  # b still
    hub.leave(b)
    assert not hub.wants("manifold")  # the last one left


def test_layers_from_any_viewer_control_only_with_the_token(tmp_path):
    """A viewer without the teacher token may choose its layers (what it is sent) but may not
    control the run; bad layer messages are named; the hub tracks who wants the manifold."""
    from polling import wait_for

    s = Settings(data_dir=tmp_path, worker_threads=1, frame_rate=20, token="teacher-token-1")
    with TestClient(create_app(s), base_url="http://127.0.0.1") as c:
        run = c.post("/api/runs", json=dict(SMALL, steps=0),
                     headers={"authorization": "Bearer teacher-token-1"}).json()
        hub = c.app.state.sup.runs[run["id"]].hub
        with c.websocket_connect(f"ws://127.0.0.1/ws/runs/{run['id']}") as ws:
            assert ws.receive_json()["type"] == "hello"
            ws.send_text(json.dumps({"layers": {"manifold": True}}))
            wait_for(lambda: hub.wants("manifold"))
            ws.send_text(json.dumps({"layers": {"manifold": "yes"}}))
            err = until(ws, lambda t: t["type"] == "error")[-1]
            assert err["field"] == "layers.manifold" and "boolean" in err["message"]
            ws.send_text(json.dumps({"layers": {"landscape3d": True}}))
            err = until(ws, lambda t: t["type"] == "error")[-1]
            assert err["field"] == "layers.landscape3d"
            ws.send_text(json.dumps({"action": "pause"}))
            err = until(ws, lambda t: t["type"] == "error")[-1]
            assert "watch only" in err["message"]
            assert hub.wants("manifold")  # the refused messages changed nothing
            ws.send_text(json.dumps({"layers": {"manifold": False}}))
            wait_for(lambda: not hub.wants("manifold"))
            ws.send_text(json.dumps({"layers": {"manifold": True}}))
            wait_for(lambda: hub.wants("manifold"))
        wait_for(lambda: not hub.wants("manifold"))  # it left
        c.post(f"/api/runs/{run['id']}/control", json={"action": "stop"},
               headers={"authorization": "Bearer teacher-token-1"})


@pytest.mark.parametrize("body, status, words", [
    ({"action": "step", "part": "d"}, 200, None),
    ({"action": "step", "n": 1, "part": "g"}, 200, None),
    ({"action": "step", "part": "both"}, 200, None),
    ({"action": "step", "part": "x"}, 422, "part: Input should be 'd', 'g' or 'both'"),
    ({"action": "pause", "part": "d"}, 422, "part 'd' goes with action step only"),
])
def test_split_step_part_is_validated(body, status, words):
    from pydantic import TypeAdapter, ValidationError

    from collapse_lab.server.models import ControlIn

    adapter = TypeAdapter(ControlIn)
    if status == 200:
        cmd = adapter.validate_python(body).model_dump()
        assert cmd["part"] == body["part"] and cmd["action"] == "step" and cmd["n"] == 1
    else:
        with pytest.raises(ValidationError) as e:
            adapter.validate_python(body)
        assert words.split(": ")[-1] in str(e.value)
    assert adapter.validate_python({"action": "step"}).model_dump()["part"] == "both"
