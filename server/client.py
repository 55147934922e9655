"""A Python client of a Collapse Lab server: HTTP calls and the live websocket stream.

Synchronous (the websockets library's sync client), so it works the same in a script, a test
and a notebook cell, where an event loop is often already running:

    from collapse_lab.server.client import Client
    c = Client("http://localhost:8000")
    run = c.start_run(preset="collapse-ring8", steps=2000)
    with c.stream(run["id"]) as s:
        for frame in s.frames(20):
            print(frame.step, frame.scalars["modes_covered"], frame.occupancy)
        s.control({"set": {"objective": "wgan-gp"}})
    ring = c.preview("ring8")  # the data before any run: ring.samples, ring.scalars["dataset"]
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from collapse_lab.server.protocol import FRAME, Message, decode, unpack_records
from collapse_lab.trainer import families

FINAL = ("done", "failed", "interrupted", "deleted")


class ServerError(RuntimeError):
    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status, self.detail = status, detail


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None,
                 timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    # ------------------------------------------------------------------ HTTP
    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self.token:
            req.add_header("authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw = r.read()
                if r.headers.get_content_type() == "application/json":
                    return json.loads(raw)
                return raw
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("detail", "")
            except ValueError:
                detail = e.reason
            raise ServerError(e.code, str(detail)) from None

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/api/health")

    def start_run(self, preset: str | None = None, **knobs: Any) -> dict[str, Any]:
        body = dict(knobs, **({"preset": preset} if preset else {}))
        return self.request("POST", "/api/runs", body)

    def runs(self) -> list[dict[str, Any]]:
        """Every run on the server, oldest first."""
        return self.request("GET", "/api/runs")["runs"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/runs/{run_id}")

    def control(self, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/runs/{run_id}/control", body)

    def history(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/runs/{run_id}/history")

    def replay(self, run_id: str) -> list[Message]:
        return [decode(m) for m in unpack_records(self.request("GET",
                                                               f"/api/runs/{run_id}/replay"))]

    def preview(self, dataset: str) -> Message:
        """A dataset's real samples before any run; `.scalars["dataset"]` describes its modes."""
        return decode(self.request("GET", f"/api/datasets/{dataset}/preview"))

    # ------------------------------------------------------------------ websocket
    def ws_url(self, run_id: str) -> str:
        p = urlsplit(self.url)
        scheme = "wss" if p.scheme == "https" else "ws"
        return urlunsplit((scheme, p.netloc, f"/ws/runs/{run_id}", "", ""))

    def stream(self, run_id: str) -> RunStream:
        # the token travels in a header, never in the URL (URLs end up in logs)
        headers = {"authorization": f"Bearer {self.token}"} if self.token else None
        return RunStream(self.ws_url(run_id), self.timeout, headers)


class RunStream:
    """One run's websocket: `hello`, `real`, then `frames()`; text messages update the state."""

    def __init__(self, ws_url: str, timeout: float = 30.0,
                 headers: dict[str, str] | None = None):
        from websockets.sync.client import connect

        # entered at once (websockets ≥ 17 wants the context-manager protocol); close() ends it
        self.ws = connect(ws_url, compression=None, open_timeout=timeout, max_size=2**26,
                          additional_headers=headers).__enter__()
        self.timeout = timeout
        self.hello: dict[str, Any] = json.loads(self._recv_text())
        if self.hello.get("type") != "hello":
            raise ServerError(404, self.hello.get("message", "no hello"))
        self.config: dict[str, Any] = self.hello["run"]["config"]
        self.status: str = self.hello["run"]["status"]
        self.reason: str | None = self.hello["run"].get("reason")
        self.events: list[dict[str, Any]] = list(self.hello.get("events", []))
        self.errors: list[dict[str, Any]] = []
        self.real = decode(self._recv_bytes())
        self.bytes_received = 0

    def _recv_text(self) -> str:
        m = self.ws.recv(self.timeout)
        if not isinstance(m, str):
            raise ServerError(0, "expected a text message first")
        return m

    def _recv_bytes(self) -> bytes:
        m = self.ws.recv(self.timeout)
        if not isinstance(m, bytes):
            raise ServerError(0, "expected the real-samples message after hello")
        return m

    def handle_text(self, msg: dict[str, Any]) -> None:
        t = msg.get("type")
        if t == "event":
            ev = msg["event"]
            self.events.append(ev)
            if ev.get("type") == "config":
                self.config = ev["config"]
        elif t == "status":
            self.status, self.reason = msg["status"], msg.get("reason")
        elif t == "error":
            self.errors.append(msg)

    def frames(self, n: int | None = None, timeout: float | None = None) -> Iterator[Message]:
        """Yield up to n frames (all, when None) until the run ends or the socket closes."""
        from websockets.exceptions import ConnectionClosed

        got = 0
        while n is None or got < n:
            try:
                m = self.ws.recv(timeout or self.timeout)
            except (ConnectionClosed, TimeoutError):
                return
            if isinstance(m, bytes):
                self.bytes_received += len(m)
                msg = decode(m)
                if msg.type == FRAME:
                    got += 1
                    yield msg
            else:
                self.handle_text(json.loads(m))
                if self.status in FINAL:  # its last frame came before this message
                    return

    def control(self, body: dict[str, Any]) -> None:
        self.ws.send(json.dumps(body))

    def layers(self, **layers: bool) -> None:
        """Ask for optional frame parts, e.g. `layers(manifold=True)`: frames then carry G's
        image of a latent grid (`Message.manifold`) once the run's worker adds it."""
        self.ws.send(json.dumps({"layers": layers}))

    def in_force(self) -> dict[str, Any]:
        """The objective and the remedies switched on, from the latest config."""
        c = self.config
        # a remedy is on when a knob that switches it on holds other than its off value (the
        # family's registry: trainer/families/gan/remedies.py for the GAN)
        on = {k: c[k] for r in families.of(c).remedies for k in r.typical
              if c.get(k) is not None and c.get(k) != r.off.get(k)}
        return {"objective": c.get("objective"), "remedies": on}

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> RunStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
