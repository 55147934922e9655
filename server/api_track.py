"""The ingest of tracked runs: a training loop of the user's own streams into the dashboard
(`collapse_lab.track`, docs/tracking.md), and the dashboard steers the knobs it declared.

- `WS /ws/track`: the loop's connection. Its first message (binary, server/tracked.py's wire
  format) starts a run (`type: start`) or attaches to one again (`type: attach`, after a
  dropped connection or a server restart); then `log` messages, one tick each, and a `finish`.
  The server answers in text: `started` (the run and its knob values), `knobs` (a live change),
  `stop` (stop was pressed), `error`, `deleted`.
- `POST /api/track/writers` (teacher): a writer token that may start one tracked run (and
  reconnect to it), for a teacher to hand out instead of the teacher token.
- `GET/POST /api/track/{id}/knobs`: the declared knobs and their values; a change, checked
  against the type and range the loop declared.

Who may write: the teacher (or the local user of a server without a token), or the holder of a
writer token; the token travels in the `Authorization` header, never in a URL. The connection is
refused before any work: Origin, then the token, then the size of the first message. A tracked run
is a run like any other for the store, the viewers, History, replay and compare; its steps come
from outside, so it takes `stop` and knob changes only (no pause or step it cannot honour).
A loop that goes away without finishing has `track_grace` seconds to come back; then its run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

from collapse_lab.server import messages
from collapse_lab.server.api_runs import ERRORS, RunId
from collapse_lab.server.auth import (
    REFUSED,
    TEACHER,
    is_teacher,
    origin_allowed,
    presented_token,
    require_control,
)
from collapse_lab.server.models import ErrorOut
from collapse_lab.server.runs import FINAL, LIVE, Conflict, Run, RunState
from collapse_lab.server.tracked import (
    KnobSpec,
    Measure,
    Series,
    WireError,
    parse_knobs,
    unpack,
    validate_set,
)
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)
router = APIRouter(tags=["tracking"])
FAMILY = "tracked"
OUTBOX = 64  # server → loop messages queued (knob changes); a loop that lets more pile up is cut
FIRST_MESSAGE_TIMEOUT = 30.0
TRACK_REFUSED = ("this server needs a token to track a run: pass the teacher token or a writer "
                 "token the teacher made (collapse_lab.track(url, token=...); scripts: "
                 "Authorization: Bearer TOKEN)")


def is_tracked(run: Run) -> bool:
    return run.config.get("family") == FAMILY


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Link:
    """The live side of one tracked run: its knobs, its series, its loop's connection."""

    run: Run
    specs: dict[str, KnobSpec]
    series: Series | None = None
    out: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(OUTBOX))
    ws: WebSocket | None = None
    grace: asyncio.TimerHandle | None = None
    due: float = 0.0  # monotonic time the next live frame is due
    ticks: int = 0  # ticks with samples (snapshots are every snapshot_every of them)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.run.config.get("knobs") or {})


class Tracker:
    """Every tracked run's live side, and the writer tokens."""

    def __init__(self, sup: Any):
        self.sup = sup
        self.settings = sup.settings
        self.links: dict[str, Link] = {}
        self.writers: dict[str, dict[str, Any]] = {}  # token hash -> {run_id, label, created}
        self._init_writers()

    # ------------------------------------------------------------------ writer tokens
    def _init_writers(self) -> None:
        conn = sqlite3.connect(self.sup.store.path)
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS track_writers (hash TEXT PRIMARY KEY, "
                         "run_id TEXT, label TEXT, created REAL NOT NULL)")
            rows = conn.execute("SELECT hash, run_id, label, created FROM track_writers")
            for h, rid, label, created in rows.fetchall():
                self.writers[h] = dict(run_id=rid, label=label, created=created)
        conn.close()

    def _save_writer(self, h: str) -> None:
        w = self.writers[h]
        vals = (h, w["run_id"], w["label"], w["created"])
        self.sup.store.submit(lambda c: c.execute(
            "INSERT OR REPLACE INTO track_writers VALUES (?,?,?,?)", vals))

    def new_writer(self, label: str | None) -> str:
        if len(self.writers) >= self.settings.max_runs:
            raise HTTPException(429, f"the server keeps at most {self.settings.max_runs} writer "
                                "tokens (max_runs)")
        token = "w-" + secrets.token_urlsafe(24)
        h = _hash(token)
        self.writers[h] = dict(run_id=None, label=label, created=time.time())
        self._save_writer(h)
        return token

    def who(self, ws: WebSocket) -> tuple[str, str | None] | None:
        """("teacher", None), ("writer", token hash) or None (refused)."""
        if is_teacher(ws):
            return ("teacher", None)
        given = presented_token(ws)
        if given and len(given) <= 200:
            h = _hash(given)
            if h in self.writers:
                return ("writer", h)
        return None

    # ------------------------------------------------------------------ opening
    async def open(self, who: tuple[str, str | None], meta: dict[str, Any],
                   arrays: dict[str, Any]) -> tuple[Link, bool]:
        """Start a run or attach to one: (its link, whether it is new). Raises ConfigError,
        Conflict or HTTPException."""
        kind = meta.get("type")
        if kind not in ("start", "attach"):
            raise ConfigError("type", "the first message is a start or an attach")
        specs = parse_knobs(meta.get("knobs"))
        # k-means on a real batch takes a moment: off the event loop
        measure = await asyncio.to_thread(Measure.from_start, meta, arrays)
        writer = self.writers.get(who[1]) if who[0] == "writer" and who[1] else None
        if kind == "attach":
            rid = meta.get("run_id")
            run = self.sup.runs.get(rid) if isinstance(rid, str) else None
            if run is None or not is_tracked(run):
                raise HTTPException(404, f"no tracked run {str(rid)[:40]!r}")
            if writer is not None and writer["run_id"] != run.id:
                raise HTTPException(403, "this writer token belongs to another run")
            last = await asyncio.to_thread(self._last_step, run.id)
            return self._attach(run, measure, last), False
        if writer is not None and writer["run_id"] is not None:
            old = self.sup.runs.get(writer["run_id"])
            if old is not None and old.status not in FINAL:
                raise HTTPException(409, f"this writer token already tracks run {old.id}, "
                                    "which is active: finish it first (a token tracks one run "
                                    "at a time)")
        self._check_room()
        return self._start(who, writer, measure, specs, meta), True

    def _check_room(self) -> None:
        active = sum(r.status not in FINAL for r in self.sup.runs.values())
        if active >= self.settings.max_runs:
            raise HTTPException(429, f"too many runs: the server keeps at most "
                                f"{self.settings.max_runs} (max_runs) and {active} are active")

    def _start(self, who: tuple[str, str | None], writer: dict[str, Any] | None,
               measure: Measure, specs: dict[str, KnobSpec], meta: dict[str, Any]) -> Link:
        config = dict(family=FAMILY, name=measure.name, modes=measure.kind, steps=0,
                      knobs={k: s.value for k, s in specs.items()},
                      knob_specs={k: s.describe() for k, s in specs.items()})
        owner = TEACHER if who[0] == "teacher" else f"writer:{(who[1] or '')[:12]}"
        run = self.sup.create(config, label=measure.name, owner=owner, schedule=False)
        if writer is not None and who[1]:
            writer["run_id"] = run.id
            self._save_writer(who[1])
        given = meta.get("client")
        client: dict[str, Any] = given if isinstance(given, dict) else {}
        facts = {k: str(v)[:100] for k, v in list(client.items())[:8] if isinstance(k, str)}
        # the device card: where the loop runs (its own machine, not a worker of this server)
        run.provenance = dict(tracked=True, modes=measure.kind, client=facts,
                              device=f"tracked · {facts.get('host', 'its own loop')}")
        run.started = time.time()
        self.sup.set_status(run, RunState.running, None)
        link = Link(run, specs, Series(measure))
        self.links[run.id] = link
        self._fix_picture(link)
        return link

    def _last_step(self, rid: str) -> int | None:
        self.sup.store.flush()
        return self.sup.store.last_tick_step(rid)

    def _attach(self, run: Run, measure: Measure, last: int | None) -> Link:
        if run.status in (RunState.done, RunState.failed):
            raise Conflict(f"run {run.id} is {run.status.value}: start a new run")
        link = self.links.get(run.id)
        if link is None:  # after a server restart: the knobs as the run last had them
            specs = parse_knobs({k: dict(d, value=run.config.get("knobs", {}).get(k, d["value"]))
                                 for k, d in (run.config.get("knob_specs") or {}).items()})
            link = self.links[run.id] = Link(run, specs)
        link.series = Series(measure)
        link.series.last_step = last
        if run.status == RunState.interrupted:
            run.transition(RunState.queued, "the tracked loop reconnected")
            run.ended = None
            self.sup.set_status(run, RunState.running, "the tracked loop reconnected")
        self._fix_picture(link)
        return link

    def _fix_picture(self, link: Link) -> None:
        """Once the measure knows how samples are drawn: the hello's dataset and the real
        samples, and viewers may have their hello."""
        assert link.series is not None
        m, run = link.series.measure, link.run
        if not m.ready:
            return
        run.hello = dict(dataset=m.describe(), value_kind="probability")
        run.real = m.real_message()
        self.sup.store.save_run(run.record())
        self.sup.store.save_real(run.id, run.real)
        run.ready.set()

    # ------------------------------------------------------------------ the loop's messages
    def connected(self, link: Link, ws: WebSocket) -> WebSocket | None:
        """This socket now writes the run; returns the one it replaces."""
        old, link.ws = link.ws, ws
        if link.grace is not None:
            link.grace.cancel()
            link.grace = None
        return old

    def on_tick(self, link: Link, tick: dict[str, Any], sampled: bool) -> None:
        run, store = link.run, self.sup.store
        first = not run.ready.is_set()
        if first:
            self._fix_picture(link)
        store.add_tick(run.id, tick)
        run.step, run.last = tick["step"], tick
        assert link.series is not None
        now = time.monotonic()
        frame = None
        if now >= link.due and run.hub.viewers:
            frame = link.series.frame(tick, run.status.value)
            if frame is not None:
                link.due = max(link.due + 1 / self.settings.frame_rate,
                               now - 0.5 / self.settings.frame_rate)
                run.hub.publish_frame(frame)
        if sampled:
            link.ticks += 1
            if link.ticks % self.settings.snapshot_every == 1 or first \
                    or self.settings.snapshot_every == 1:
                snap = frame or link.series.frame(tick, run.status.value)
                if snap is not None:
                    store.add_snapshot(run.id, tick["step"], snap)
                    if not run.hub.viewers:
                        run.hub.latest = snap

    def finish(self, link: Link, status: str, reason: str) -> None:
        run = link.run
        if run.status in FINAL:
            return
        if link.series is not None and run.last is not None:
            final = link.series.frame(run.last, "done")
            if final is not None:
                self.sup.store.add_snapshot(run.id, run.last["step"], final)
                run.hub.publish_frame(final)
        if run.status == RunState.stopping and status == "done":
            reason = "stopped from the dashboard"
        self.sup.set_status(run, RunState(status), reason)
        run.ended = time.time()
        self.sup.store.save_run(run.record())

    def disconnected(self, link: Link, ws: WebSocket) -> None:
        """The loop's connection closed without a finish: it has track_grace seconds to come
        back before its run fails (or, if stop was pressed, is done)."""
        if link.ws is not ws:
            return  # replaced by a newer connection
        link.ws = None
        run = link.run
        if run.status in FINAL or self.sup.closing or self.sup.loop is None:
            return
        grace = self.settings.track_grace

        def expire() -> None:
            link.grace = None
            if link.ws is not None or run.status in FINAL or run.id not in self.sup.runs:
                return
            if run.status == RunState.stopping:
                self.finish(link, "done", "stopped from the dashboard")
            else:
                self.finish(link, "failed", f"the tracked loop went away without finishing "
                            f"(killed, crashed or cut off) and did not come back within "
                            f"{grace:g} s")

        link.grace = self.sup.loop.call_later(grace, expire)

    def push(self, link: Link, msg: dict[str, Any]) -> None:
        if link.ws is None:
            return  # the loop gets the values when it attaches again
        try:
            link.out.put_nowait(json.dumps(msg))
        except asyncio.QueueFull:
            log.warning("tracked run %s: its loop reads no messages; dropped one", link.run.id)

    # ------------------------------------------------------------------ control (supervisor)
    async def control(self, run: Run, cmd: dict[str, Any]) -> dict[str, Any]:
        if "set" in cmd:
            return dict(accepted=self.set(run, cmd["set"]), applied=True)
        action = cmd.get("action")
        if action == "stop":
            if run.status in FINAL or run.status == RunState.stopping:
                raise Conflict(f"run {run.id} is already {run.status.value}")
            link = self.links.get(run.id)
            self.sup.set_status(run, RunState.stopping, "stop requested: the loop is told")
            if link is None or link.ws is None:
                if link is not None and link.series is not None:
                    self.finish(link, "done", "stopped from the dashboard")
                else:
                    self.sup.set_status(run, RunState.done, "stopped from the dashboard")
            else:
                self.push(link, {"type": "stop"})
            return dict(accepted={"action": "stop"}, applied=False)
        raise Conflict(f"run {run.id} is tracked: its steps come from its own training loop, so "
                       f"it takes stop and changes of the knobs it declared, not "
                       f"'{action}'")

    def set(self, run: Run, changes: Any) -> dict[str, Any]:
        if run.status in FINAL or run.status == RunState.stopping:
            raise Conflict(f"run {run.id} is {run.status.value}; only an active run takes "
                           "changes")
        link = self.links.get(run.id)
        if link is None:
            specs = parse_knobs({k: dict(d, value=run.config.get("knobs", {}).get(k, d["value"]))
                                 for k, d in (run.config.get("knob_specs") or {}).items()})
            link = self.links[run.id] = Link(run, specs)
        accepted = validate_set(link.specs, changes)
        now = run.config.get("knobs") or {}
        accepted = {k: v for k, v in accepted.items() if k not in now or now[k] != v
                    or type(now[k]) is not type(v)}
        if not accepted:
            return {}  # the values it has already: no event, nothing sent
        run.config = dict(run.config, knobs=dict(run.config.get("knobs") or {}, **accepted))
        run.config_version += 1
        ev = dict(type="config", version=run.config_version, step=run.step, changes=accepted,
                  config=run.config)
        self.sup.store.add_event(run.id, ev)
        self.sup.store.save_run(run.record())
        run.hub.publish(messages.Event(event=ev))
        self.push(link, {"type": "knobs", "values": run.config["knobs"],
                         "version": run.config_version, "changes": accepted})
        return accepted

    def forget(self, run: Run) -> None:
        """The run was deleted: its loop is told, and stops sending."""
        link = self.links.pop(run.id, None)
        if link is None:
            return
        if link.grace is not None:
            link.grace.cancel()
        self.push(link, {"type": "deleted"})

    def interrupt_all(self) -> None:
        """The server shuts down: active tracked runs become interrupted (their loops attach
        again to the next server)."""
        for link in self.links.values():
            if link.grace is not None:
                link.grace.cancel()
            if link.run.status in LIVE:
                self.sup.set_status(link.run, RunState.interrupted,
                                    "the server shut down during the run")


# ---------------------------------------------------------------------------- the websocket
def _text(kind: str, **kw: Any) -> str:
    return json.dumps(dict(type=kind, **kw))


async def _first(ws: WebSocket) -> bytes:
    message = await asyncio.wait_for(ws.receive(), FIRST_MESSAGE_TIMEOUT)
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    data = message.get("bytes")
    if data is None:
        raise WireError("the first message is binary (a start or an attach)")
    return data


async def _send_out(ws: WebSocket, link: Link) -> None:
    while True:
        text = await link.out.get()
        await ws.send_text(text)


@router.websocket("/ws/track")
async def track_socket(ws: WebSocket) -> None:
    if not origin_allowed(ws):
        await ws.close(code=1008)  # a page of another site: refused before the upgrade (403)
        return
    tracker: Tracker = ws.app.state.tracker
    who = tracker.who(ws)
    await ws.accept()
    if who is None:
        with contextlib.suppress(Exception):  # its start first: the refusal is then its answer
            await asyncio.wait_for(ws.receive(), 5.0)
        await ws.send_text(_text("error", message=TRACK_REFUSED, fatal=True, status=403))
        await ws.close(code=4403, reason="a token is needed")
        return
    try:
        meta, arrays = unpack(await _first(ws))
        link, new = await tracker.open(who, meta, arrays)
    except (WebSocketDisconnect, asyncio.TimeoutError):
        return
    except (WireError, ConfigError, Conflict, HTTPException) as e:
        msg, status = _refusal(e)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.send_text(_text("error", message=msg, fatal=True, status=status,
                                     field=getattr(e, "field", None)))
            await ws.close(code=4400 if status == 422 else 4000 + status, reason=msg[:120])
        return
    old = tracker.connected(link, ws)
    if old is not None:
        with contextlib.suppress(Exception):
            await old.close(code=4409, reason="another connection writes this run now")
    while not link.out.empty():  # what was meant for an earlier connection: superseded below
        link.out.get_nowait()
    await ws.send_text(_text("started", run_id=link.run.id, new=new, step=link.run.step,
                             knobs=link.values, version=link.run.config_version,
                             status=link.run.status.value))
    if link.run.status == RunState.stopping:
        tracker.push(link, {"type": "stop"})
    sender = asyncio.create_task(_send_out(ws, link))
    try:
        await _receive(ws, tracker, link)
    except WebSocketDisconnect:
        pass
    except Exception as e:  # noqa: BLE001 - one loop's bad message fails its connection only
        log.warning("tracked run %s: connection ended: %r", link.run.id, e)
        with contextlib.suppress(Exception):
            await ws.close(code=1011, reason=str(e)[:120])
    finally:
        sender.cancel()
        tracker.disconnected(link, ws)


def _refusal(e: Exception) -> tuple[str, int]:
    if isinstance(e, HTTPException):
        return str(e.detail), e.status_code
    if isinstance(e, Conflict):
        return str(e), 409
    return str(e), 422


async def _receive(ws: WebSocket, tracker: Tracker, link: Link) -> None:
    run, settings = link.run, tracker.settings
    gap = 1.0 / settings.track_rate
    warned = False
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        if data is None:
            await ws.close(code=1003, reason="send binary messages (docs/tracking.md)")
            return
        began = time.monotonic()
        try:
            meta, arrays = unpack(data)
            kind = meta.get("type")
            if kind == "finish":
                status = meta.get("status")
                reason = meta.get("reason")
                reason = reason[:500] if isinstance(reason, str) else None
                tracker.finish(link, "failed" if status == "failed" else "done",
                               reason or ("the loop finished" if status != "failed"
                                          else "the loop failed"))
                await ws.send_text(_text("finished", status=run.status.value))
                await ws.close(code=1000)
                return
            if kind != "log":
                raise WireError("expected a log or a finish message")
            if tracker.links.get(run.id) is not link:  # deleted meanwhile: nothing is stored
                await ws.close(code=4404, reason="the run was deleted")
                return
            if run.status in FINAL:
                raise Conflict(f"run {run.id} is {run.status.value}")
            assert link.series is not None
            async with link.lock:
                tick = await asyncio.to_thread(link.series.tick, meta, arrays,
                                               run.config_version)
            tracker.on_tick(link, tick, "samples" in arrays)
        except Conflict as e:
            await ws.send_text(_text("error", message=str(e), fatal=True, status=409))
            await ws.close(code=4409)
            return
        except (WireError, ConfigError) as e:
            if isinstance(e, ConfigError) and e.field == "step":
                continue  # sent again after a reconnect: the series has it already
            if not warned:  # said once; the loop goes on
                warned = True
                await ws.send_text(_text("error", message=str(e), fatal=False, status=422,
                                         field=getattr(e, "field", None)))
        # at most track_rate logs a second: a faster loop waits here (its client merges logs)
        wait = gap - (time.monotonic() - began)
        if wait > 0:
            await asyncio.sleep(wait)


# ---------------------------------------------------------------------------- HTTP
class TrackWriterIn(BaseModel):
    model_config = {"extra": "forbid"}
    label: str | None = Field(None, max_length=200, description="who the token is for")


class TrackWriterOut(BaseModel):
    token: str = Field(description="a writer token: it may start one tracked run and reconnect "
                       "to it; shown once, never stored in clear")
    label: str | None = None


class TrackKnobsOut(BaseModel):
    run_id: str
    knobs: list[dict[str, Any]] = Field(description="each declared knob: name, type, value, "
                                        "min/max or choices, help")
    values: dict[str, Any]
    config_version: int


class TrackSetIn(BaseModel):
    model_config = {"extra": "forbid"}
    set: dict[str, Any] = Field(description="knob values, each checked against the type and "
                                "range the loop declared", max_length=32)


def _tracked_run(request: Request, run_id: str) -> Run:
    run = request.app.state.sup.runs.get(run_id)
    if run is None or not is_tracked(run):
        raise HTTPException(404, f"no tracked run {run_id!r}")
    return run


def _knobs_out(run: Run) -> TrackKnobsOut:
    values = run.config.get("knobs") or {}
    specs = [dict(d, value=values.get(k, d.get("value")))
             for k, d in (run.config.get("knob_specs") or {}).items()]
    return TrackKnobsOut(run_id=run.id, knobs=specs, values=values,
                    config_version=run.config_version)


@router.post("/api/track/writers", response_model=TrackWriterOut, status_code=201,
             responses={403: {"model": ErrorOut}, 429: {"model": ErrorOut}})
async def new_writer(body: TrackWriterIn, request: Request) -> TrackWriterOut:
    """A writer token for one tracked run (the teacher hands it to whoever trains)."""
    require_control(request)
    return TrackWriterOut(token=request.app.state.tracker.new_writer(body.label), label=body.label)


@router.get("/api/track/{run_id}/knobs", response_model=TrackKnobsOut, responses=ERRORS)
async def read_knobs(request: Request, run_id: str = RunId) -> TrackKnobsOut:
    """The knobs a tracked run's loop declared, and their values now."""
    return _knobs_out(_tracked_run(request, run_id))


@router.post("/api/track/{run_id}/knobs", response_model=TrackKnobsOut, responses=ERRORS)
async def set_knobs(body: TrackSetIn, request: Request, run_id: str = RunId) -> TrackKnobsOut:
    """Change a tracked run's knobs; its loop sees the values in `run.knobs` at once."""
    run = _tracked_run(request, run_id)
    if not is_teacher(request):
        raise HTTPException(403, REFUSED)
    request.app.state.tracker.set(run, body.set)
    return _knobs_out(run)
