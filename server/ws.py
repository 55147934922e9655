"""The websocket of one run: hello, real samples, then frames, events and status (docs/protocol.md).

Two tasks per socket: a sender that drains the viewer's mailbox (server/fanout.py) and a receiver
that takes control messages, with the same shapes and rules as POST /api/runs/{id}/control, and
layer choices (`{"layers": {"manifold": true}}`), which any viewer may send: they change what
this viewer is sent, never the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError

from collapse_lab.server import messages, protocol
from collapse_lab.server.api_runs import _clean, control_body, run_out
from collapse_lab.server.auth import may_control, origin_allowed
from collapse_lab.server.errors import validation_body
from collapse_lab.server.fanout import Overflow, Viewer
from collapse_lab.server.models import ControlIn, LayersIn
from collapse_lab.server.supervisor import FINAL, Conflict, Run, Supervisor
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)
router = APIRouter()
CONTROL = TypeAdapter(ControlIn)
MAX_MESSAGE = 65_536  # bytes of one client message


async def hello(ws: WebSocket, sup: Supervisor, run: Run) -> messages.Hello:
    await asyncio.to_thread(sup.store.flush)
    events = await asyncio.to_thread(sup.store.events, run.id)
    h = run.hello or {}
    return messages.Hello(protocol=protocol.VERSION, run=run_out(run, ws), dataset=h.get("dataset"),
                          value_kind=h.get("value_kind"),
                          events=_clean([e for e in events if e.get("type") == "config"]))


async def sender(ws: WebSocket, sup: Supervisor, run: Run, viewer: Viewer,
                 ended: bool) -> None:
    """`ended`: the run had ended when this viewer joined. A run that ends later (even during
    the hello below) has its last frame and status in the viewer's mailbox, in that order."""
    await run.ready.wait()  # a queued run says hello when its worker has started
    await ws.send_text((await hello(ws, sup, run)).model_dump_json())
    real = run.real or await asyncio.to_thread(sup.store.real, run.id)
    if real:
        await ws.send_bytes(real)
    if ended:  # its last frame, then its end: the order a live viewer saw
        last = run.hub.latest
        if last is None:
            snaps = await asyncio.to_thread(sup.store.snapshots, run.id)
            last = snaps[-1] if snaps else None
        if last is not None:
            await ws.send_bytes(last)
        await ws.send_text(messages.Status(status=run.status.value,
                                           reason=run.reason).model_dump_json())
    elif run.hub.latest is not None:
        viewer.push_first_frame(run.hub.latest)
    while True:
        try:
            items = await viewer.next()
        except Overflow:
            await ws.close(code=1013, reason="too far behind")
            return
        for item in items:
            if isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_text(item)


def _error(message: str, field: str | None = None) -> str:
    return messages.Error(message=message[:2000], field=field).model_dump_json()


class Refused(Exception):
    """A message no client of this protocol sends: the socket is closed with `code`."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


async def next_control(ws: WebSocket) -> str:
    """The next client message: JSON text of at most MAX_MESSAGE bytes, or Refused."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise Refused(1003, "binary messages are not accepted; send control messages as "
                      "JSON text")
    if len(text) > MAX_MESSAGE:
        raise Refused(1008, f"message of {len(text)} characters; at most {MAX_MESSAGE}")
    if not text.lstrip().startswith("{"):
        raise Refused(1008, "malformed message: expected a JSON object (docs/protocol.md)")
    return text


async def receiver(ws: WebSocket, sup: Supervisor, run: Run, viewer: Viewer) -> None:
    while True:
        text = await next_control(ws)
        try:
            body = json.loads(text)
        except (ValueError, RecursionError):
            raise Refused(1008, "malformed message: not valid JSON") from None
        if isinstance(body, dict) and "layers" in body:  # what this viewer draws: anyone may
            try:
                layers = LayersIn.model_validate(body).layers.model_dump()
            except ValidationError as e:
                detail = validation_body([dict(x) for x in e.errors()])
                await ws.send_text(_error(detail["detail"], detail["field"]))
                continue
            if run.hub.set_layers(viewer, layers):
                sup.viewers_changed(run)
            continue
        if not may_control(ws, run):
            await ws.send_text(_error("watch only: steering this run needs the teacher's "
                                      "session (or, where the teacher allows, your own run)"))
            continue
        try:
            cmd = CONTROL.validate_python(body)
            await sup.controls.apply(run, await control_body(ws, run, cmd))
        except ValidationError as e:
            detail = validation_body([dict(x) for x in e.errors()])
            field = detail["field"] if detail["field"] != "body" else None
            await ws.send_text(_error(detail["detail"], field))
        except ConfigError as e:
            await ws.send_text(_error(str(e), e.field))
        except Conflict as e:
            await ws.send_text(_error(str(e)))
        except HTTPException as e:  # the queue is full (resume)
            await ws.send_text(_error(str(e.detail)))


@router.websocket("/ws/runs/{run_id}")
async def run_socket(ws: WebSocket, run_id: str) -> None:
    if not origin_allowed(ws):
        await ws.close(code=1008)  # before accept: the upgrade is refused with HTTP 403
        return
    sup: Supervisor = ws.app.state.sup
    await ws.accept()
    run = sup.runs.get(run_id)
    if run is None:
        await ws.send_text(_error(f"no run {run_id!r}"))
        await ws.close(code=4404)
        return
    viewer = run.hub.join()
    ended = run.status in FINAL  # decided as it joins: from here on the mailbox gets the rest
    sup.viewers_changed(run)
    tasks = [asyncio.create_task(sender(ws, sup, run, viewer, ended)),
             asyncio.create_task(receiver(ws, sup, run, viewer))]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            exc = t.exception()
            if isinstance(exc, Refused):
                log.warning("websocket of run %s closed (%d): %s", run_id, exc.code, exc.reason)
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await ws.close(code=exc.code, reason=exc.reason[:120])
            elif exc and not isinstance(exc, (WebSocketDisconnect, RuntimeError)):
                log.warning("websocket of run %s ended: %r", run_id, exc)
    finally:
        for t in tasks:
            t.cancel()
        run.hub.leave(viewer)
        sup.viewers_changed(run)
