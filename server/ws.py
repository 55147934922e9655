"""The websocket of one run: hello, real samples, then frames, events and status (docs/protocol.md).

Two tasks per socket: a sender that drains the viewer's mailbox (server/fanout.py) and a receiver
that takes control messages, with the same shapes and rules as POST /api/runs/{id}/control, and
layer choices (`{"layers": {"manifold": true}}`), which any viewer may send: they change what
this viewer is sent, never the run.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError

from collapse_lab.server import messages, protocol
from collapse_lab.server.api_runs import _clean, run_out
from collapse_lab.server.auth import may_control, origin_allowed
from collapse_lab.server.fanout import Overflow, Viewer
from collapse_lab.server.models import ControlIn, LayersIn
from collapse_lab.server.supervisor import FINAL, Conflict, Run, Supervisor
from collapse_lab.trainer.config import ConfigError

log = logging.getLogger(__name__)
router = APIRouter()
CONTROL = TypeAdapter(ControlIn)
MAX_MESSAGE = 65_536  # bytes of one client message


async def hello(sup: Supervisor, run: Run) -> messages.Hello:
    await asyncio.to_thread(sup.store.flush)
    events = await asyncio.to_thread(sup.store.events, run.id)
    h = run.hello or {}
    return messages.Hello(protocol=protocol.VERSION, run=run_out(run), dataset=h.get("dataset"),
                          value_kind=h.get("value_kind"),
                          events=_clean([e for e in events if e.get("type") == "config"]))


async def sender(ws: WebSocket, sup: Supervisor, run: Run, viewer: Viewer) -> None:
    await run.ready.wait()  # a queued run says hello when its worker has started
    await ws.send_text((await hello(sup, run)).model_dump_json())
    real = run.real or await asyncio.to_thread(sup.store.real, run.id)
    if real:
        await ws.send_bytes(real)
    if run.status in FINAL:  # its last frame, then its end: the order a live viewer saw
        last = run.hub.latest
        if last is None:
            snaps = await asyncio.to_thread(sup.store.snapshots, run.id)
            last = snaps[-1] if snaps else None
        if last is not None:
            await ws.send_bytes(last)
        await ws.send_text(messages.Status(status=run.status.value,
                                           reason=run.reason).model_dump_json())
    elif run.hub.latest is not None:
        viewer.push_frame(run.hub.latest)
    while True:
        try:
            texts, frame = await viewer.next()
        except Overflow:
            await ws.close(code=1013, reason="too far behind")
            return
        for t in texts:
            await ws.send_text(t)
        if frame is not None:
            await ws.send_bytes(frame)


def _error(message: str, field: str | None = None) -> str:
    return messages.Error(message=message[:2000], field=field).model_dump_json()


def _field(e: ValidationError) -> tuple[str | None, str]:
    err = e.errors()[0]
    field = ".".join(str(p) for p in err["loc"] if p not in ("action", "set")) or None
    return field, err["msg"]


async def receiver(ws: WebSocket, sup: Supervisor, run: Run, viewer: Viewer) -> None:
    while True:
        text = await ws.receive_text()
        if len(text) > MAX_MESSAGE:
            await ws.send_text(_error(f"message of {len(text)} bytes; at most {MAX_MESSAGE}"))
            continue
        try:
            body = json.loads(text)
        except ValueError as e:
            await ws.send_text(_error(f"message: Invalid JSON ({e})"))
            continue
        if isinstance(body, dict) and "layers" in body:  # what this viewer draws: anyone may
            try:
                layers = LayersIn.model_validate(body).layers.model_dump()
            except ValidationError as e:
                field, msg = _field(e)
                await ws.send_text(_error(f"{field or 'message'}: {msg}", field))
                continue
            if run.hub.set_layers(viewer, layers):
                sup.viewers_changed(run)
            continue
        if not may_control(ws):
            await ws.send_text(_error("controlling runs needs the teacher token (?token=...)"))
            continue
        try:
            cmd = CONTROL.validate_python(body)
            await sup.control(run, cmd.model_dump())
        except ValidationError as e:
            field, msg = _field(e)
            await ws.send_text(_error(f"{field or 'message'}: {msg}", field))
        except ConfigError as e:
            await ws.send_text(_error(str(e), e.field))
        except Conflict as e:
            await ws.send_text(_error(str(e)))


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
    sup.viewers_changed(run)
    tasks = [asyncio.create_task(sender(ws, sup, run, viewer)),
             asyncio.create_task(receiver(ws, sup, run, viewer))]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            exc = t.exception()
            if exc and not isinstance(exc, (WebSocketDisconnect, RuntimeError)):
                log.warning("websocket of run %s ended: %r", run_id, exc)
    finally:
        for t in tasks:
            t.cancel()
        run.hub.leave(viewer)
        sup.viewers_changed(run)
