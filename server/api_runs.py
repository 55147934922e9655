"""Runs: create, list, read, delete, control, history (JSON/CSV) and replay."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path as FilePath
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import HTTPConnection

from collapse_lab.server import protocol
from collapse_lab.server.auth import (
    identity,
    is_teacher,
    owner_of,
    require_control,
    require_run_control,
    require_start,
)
from collapse_lab.server.budget import check_budget
from collapse_lab.server.datapaths import check_data, shown_path, student_folder
from collapse_lab.server.devices import check_device
from collapse_lab.server.models import (
    ControlIn,
    ControlOut,
    Deleted,
    ErrorOut,
    HistoryOut,
    RunCreate,
    RunList,
    RunOut,
    SetIn,
    StopIn,
    StopOut,
    ValidationErrorOut,
    given,
    knob_values,
)
from collapse_lab.server.runs import FINAL, Conflict, Run, RunState
from collapse_lab.server.scheduling import is_student as is_student_owner
from collapse_lab.server.supervisor import Supervisor
from collapse_lab.trainer import families, stats
from collapse_lab.trainer.registry import SCALAR_NAMES, from_preset

router = APIRouter(prefix="/api/runs", tags=["runs"])
RunId = Path(pattern=r"^[a-z0-9]{1,32}$", description="the run's id")
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ValidationErrorOut}}
FULL: dict[int | str, dict[str, Any]] = {  # a route that may queue runs
    **ERRORS, 429: {"model": ErrorOut, "description": "the queue of runs waiting for a worker "
                    "is full, or the server holds max_runs runs that are all active; try again "
                    "after Retry-After seconds",
                    "headers": {"Retry-After": {"description": "seconds to wait",
                                                "schema": {"type": "integer"}}}}}
RETRY_AFTER = 30

ACTIVE = set(RunState) - FINAL


def sup(request: HTTPConnection) -> Supervisor:
    return request.app.state.sup


def get_run(request: Request, run_id: str) -> Run:
    run = sup(request).runs.get(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return run


def check_room(request: HTTPConnection, new: int) -> None:
    """Refuse (429) `new` more runs when they would overflow the queue or max_runs."""
    s, st = sup(request), request.app.state.settings
    runs = list(s.runs.values())
    queued = sum(r.status == RunState.queued for r in runs)
    free = max(0, st.max_workers - s.active_workers()) if queued == 0 else 0
    waiting = queued + max(0, new - free)
    if waiting > st.max_queued:
        raise HTTPException(429, f"queue full: {queued} runs are waiting for a worker and the "
                            f"server queues at most {st.max_queued} (max_queued); try again when "
                            "some have started, or stop queued runs",
                            headers={"retry-after": str(RETRY_AFTER)})
    active = sum(r.status not in FINAL for r in runs)
    if active + new > st.max_runs:
        raise HTTPException(429, f"too many runs: the server keeps at most {st.max_runs} "
                            f"(max_runs) and {active} are active; stop or delete some first",
                            headers={"retry-after": str(RETRY_AFTER)})


def own_folder(conn: HTTPConnection) -> FilePath | None:
    """A student's private uploads folder (None: the teacher's, which is the whole folder)."""
    owner = None if is_teacher(conn) else owner_of(conn)
    if owner is None or not owner.startswith("student:"):
        return None
    return student_folder(conn.app.state.settings.data_dir,
                          identity(conn).sign("uploads", owner[8:])[:16])


def check_kept(request: HTTPConnection, owner: str | None, new: int) -> None:
    """Refuse (429) runs whose keeping would need someone else's runs deleted: pruning takes
    only the starter's own oldest finished runs (server/placement.py: `over_quota`)."""
    s, st = sup(request), request.app.state.settings
    extra = s.over_quota(owner, new)
    if extra <= len(s.prunable(owner)):
        return
    if is_student_owner(owner) and len(s.runs) + new <= st.max_runs:
        raise HTTPException(429, f"You keep at most {st.runs_per_student} runs "
                            "(runs_per_student) and none of yours has finished to make room: "
                            "stop one first", headers={"retry-after": str(RETRY_AFTER)})
    raise HTTPException(429, f"The server keeps at most {st.max_runs} runs (max_runs) and none "
                        "of yours has finished to make room (only your own runs are ever "
                        "deleted for it): the teacher may delete runs in History",
                        headers={"retry-after": str(RETRY_AFTER)})


async def at_the_door(request: HTTPConnection, values: dict[str, Any]) -> dict[str, Any]:
    """What only a worker would find out, checked when the run is created: the device exists
    and `data` names an uploaded file this connection may read (server/datapaths.py). Returns
    the values to use."""
    if "device" in values:
        check_device(values["device"])
    if values.get("data") is not None:
        values = dict(values, data=await check_data(request.app.state.settings.data_dir,
                                                    values["data"], own_folder(request)))
    return values


def shown_config(conn: HTTPConnection | None, cfg: Any, full: bool) -> Any:
    """A config as a client sees it: `data` relative to the uploads folder, and another
    student's private upload by its bare name."""
    if not isinstance(cfg, dict) or "data" not in cfg or conn is None:
        return cfg
    return dict(cfg, data=shown_path(conn.app.state.settings.data_dir, cfg["data"], full))


def run_out(run: Run, conn: HTTPConnection | None = None,
            places: dict[str, tuple[int, float | None]] | None = None) -> RunOut:
    """A run as `conn` may see it: whose it is by kind and display name (never a student's
    id), whether it is this connection's own, and upload paths it may see; a queued run's
    place and wait from `places` (Supervisor.queue_places, worked out once for a list)."""
    hello = run.hello or {}
    place, wait = (places or {}).get(run.id, (None, None))
    owner = owner_of(conn) if conn is not None else None
    mine = owner is not None and owner == run.owner
    full = mine or (conn is not None and is_teacher(conn))
    kind = None if not run.owner else "student" if is_student_owner(run.owner) else "teacher"
    prov = run.provenance
    if isinstance(prov, dict) and "config" in prov:
        prov = dict(prov, config=shown_config(conn, prov["config"], full))
    return RunOut(id=run.id, status=run.status, reason=run.reason,
                  config=shown_config(conn, run.config, full),
                  config_version=run.config_version, step=run.step, group_id=run.group_id,
                  label=run.label, created=run.created, started=run.started, ended=run.ended,
                  checkpoint_step=run.checkpoint_step, provenance=prov,
                  dataset=hello.get("dataset"), value_kind=hello.get("value_kind"),
                  last=_clean(run.last), viewers=len(run.hub.viewers), owner=kind,
                  owner_name=identity(conn).name_of(run.owner) if conn is not None else None,
                  mine=mine, queue_position=place, wait_s=wait)


def _clean(d: Any) -> Any:
    """JSON has no NaN/inf: send null."""
    if isinstance(d, float) and not math.isfinite(d):
        return None
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_clean(v) for v in d]
    return d


@router.post("", response_model=RunOut, status_code=201, responses=FULL)
async def create_run(body: RunCreate, request: Request) -> RunOut:  # type: ignore[valid-type]
    """Start a run from a flat config or `{"preset": NAME, ...overrides}`. The teacher may
    always; a student where the teacher allows it, up to the cap of active runs."""
    owner = require_start(request)
    check_room(request, 1)
    check_kept(request, owner, 1)
    values = await at_the_door(request, knob_values(body))
    cfg = from_preset(body.preset, values)  # type: ignore[attr-defined]
    check_device(cfg.device)
    check_budget(request.app.state.settings.run_memory_mb, cfg,
                 step_seconds=request.app.state.settings.run_step_seconds)
    if is_student_owner(owner):
        check_student_cap(request, owner)
    s = sup(request)
    run = s.create(cfg.to_dict(), label=body.label, owner=owner)  # type: ignore[attr-defined]
    return run_out(run, request, s.queue_places())


def check_student_cap(request: HTTPConnection, owner: str, new: int = 1) -> None:
    """A person may have `student_cap` active runs — every student session minted from one
    network address counts as one person (server/identity.py) — and all students together
    `student_runs`."""
    room = request.app.state.classroom
    who = identity(request)
    active = [r for r in sup(request).runs.values()
              if r.status in ACTIVE and is_student_owner(r.owner)]
    mine = [r for r in active if who.same_person(r.owner, owner)]
    if len(mine) + new > room.student_cap:
        ids = ", ".join(r.id for r in mine)
        also = "" if all(r.owner == owner for r in mine) else \
            " (counting the runs of other student sessions from this machine's address)"
        raise HTTPException(429, f"Each student may have {room.student_cap} active "
                            f"run{'s' if room.student_cap != 1 else ''} at a time and you have "
                            f"{len(mine)} ({ids}){also}: stop one to start another")
    limit = request.app.state.settings.student_runs
    if len(active) + new > limit:
        raise HTTPException(429, f"The class already has {len(active)} student runs active, "
                            f"the most this server takes is {limit} (student_runs): wait for "
                            "one to finish")


@router.post("/stop", response_model=StopOut, responses=ERRORS)
async def stop_runs(body: StopIn, request: Request) -> StopOut:
    """Stop several runs at once: `runs` by id (the teacher any; a student only their own), a
    compare `group`, or `all` active runs (the teacher). Stopped runs stay in History; a queued
    run ends at once, a training one at its next step boundary."""
    s = sup(request)
    if body.runs is not None:
        targets = []
        for rid in dict.fromkeys(body.runs):
            run = s.runs.get(rid)
            if run is None:
                raise HTTPException(404, f"runs: no run {rid!r}")
            require_run_control(request, run)  # every one checked before any is stopped
            targets.append(run)
    elif not is_teacher(request):
        raise HTTPException(403, "only the teacher stops a compare group or every run; a "
                            "student stops their own runs by id (runs: [...])")
    elif body.group is not None:
        if body.group not in s.groups:
            raise HTTPException(404, f"group: no compare group {body.group!r}")
        targets = s.groups.runs_of(body.group)
    else:
        targets = [r for r in s.runs.values() if r.status not in FINAL]
    stopped, already = [], []
    for run in targets:
        try:
            await s.controls.apply(run, {"action": "stop"})
            stopped.append(run.id)
        except Conflict:
            already.append(run.id)
    return StopOut(stopped=stopped, already=already)


@router.get("", response_model=RunList, responses={422: {"model": ValidationErrorOut}})
async def list_runs(request: Request, status: RunState | None = Query(None),
              group: str | None = Query(None, max_length=32)) -> RunList:
    runs = sorted(sup(request).runs.values(), key=lambda r: r.created)
    if status:
        runs = [r for r in runs if r.status == status]
    if group:
        runs = [r for r in runs if r.group_id == group]
    places = sup(request).queue_places()
    return RunList(runs=[run_out(r, request, places) for r in runs])


@router.get("/{run_id}", response_model=RunOut, responses=ERRORS)
async def read_run(request: Request, run_id: str = RunId) -> RunOut:
    return run_out(get_run(request, run_id), request, sup(request).queue_places())


@router.delete("/{run_id}", response_model=Deleted, responses=ERRORS,
               dependencies=[Depends(require_control)])
async def delete_run(request: Request, run_id: str = RunId) -> Deleted:
    """Delete a run and everything stored for it (an active run's worker is stopped)."""
    sup(request).delete(get_run(request, run_id))
    return Deleted(id=run_id)


@router.post("/{run_id}/control", response_model=ControlOut, responses=FULL)
async def control_run(body: ControlIn, request: Request, run_id: str = RunId) -> ControlOut:
    """pause, resume (also an interrupted run, from its checkpoint), stop, step, or set knobs.
    The teacher any run; a student their own."""
    run = get_run(request, run_id)
    require_run_control(request, run)
    res = await sup(request).controls.apply(run, await control_body(request, run, body))
    return ControlOut(run_id=run.id, status=run.status, **res)


async def control_body(request: HTTPConnection, run: Run, body: Any) -> dict[str, Any]:
    """The control as the supervisor takes it, after the door's checks (a queued run may still
    change `device` and `data`; resuming an interrupted run queues it again)."""
    if isinstance(body, SetIn):
        return {"set": await at_the_door(request, given(body.set))}
    if body.action == "resume" and run.status == RunState.interrupted:
        check_room(request, 1)
        if is_student_owner(run.owner) and not is_teacher(request):
            check_student_cap(request, run.owner or "")  # a resumed run is active again
    return body.model_dump()


def csv_columns(k: int, config: dict[str, Any] | None = None) -> list[str]:
    """A run's series columns: the scalars its family's tick reports (trainer/stats.py:
    `scalars`), in order, then occ_0..occ_{k-1}; without a config, or for a run of no
    registered family (a tracked run: server/tracked.py), every family's scalars."""
    family = None if config is None else config.get("family", families.DEFAULT)
    names = (tuple(s.name for s in stats.scalars(families.FAMILIES[family]))
             if family in families.FAMILIES else SCALAR_NAMES)
    return [*names, *(f"occ_{i}" for i in range(k))]


PAGE = 2_000  # ticks read from the store per step of a streamed history
HISTORY_STREAMS = 4  # histories streamed at once; more wait their turn


@router.get("/{run_id}/history", response_model=HistoryOut, responses={**ERRORS, 200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "the series: JSON, or CSV with `?format=csv` (header row, one row per tick)"}})
async def history(request: Request, run_id: str = RunId,
                  format: Literal["json", "csv"] = Query("json"),
                  since: int = Query(-1, ge=-1, le=2**31, description="only ticks after step"),
                  limit: int = Query(1_000_000, ge=1, le=1_000_000,
                                     description="at most this many ticks; `next` then says "
                                     "the `since` of the following page")) -> Any:
    """The metric series, one row per tick (JSON, or CSV with `?format=csv`), oldest first.

    Streamed from the store a page at a time, the stored rows as they are (not parsed and
    encoded again), at most HISTORY_STREAMS at once: a long run's history costs the server
    one page of memory per reader, and the event loop nothing but forwarding bytes."""
    run = get_run(request, run_id)
    store = sup(request).store
    await asyncio.to_thread(store.flush)
    gate = _gate(request)
    if format == "csv":
        first = await asyncio.to_thread(store.tick_rows, run.id, since, 1)
        k = (len(json.loads(first[0][1]).get("occupancy", [])) if first else
             (run.hello or {}).get("dataset", {}).get("num_modes", 0))
        name = f'attachment; filename="run-{run.id}.csv"'
        return StreamingResponse(_csv_rows(store, run.id, since, limit,
                                           csv_columns(k, run.config), gate),
                                 media_type="text/csv", headers={"content-disposition": name})
    events = await asyncio.to_thread(store.events, run.id)
    head = json.dumps({"run_id": run.id, "columns": None})[:-len("null}")]
    return StreamingResponse(_json_rows(store, run.id, since, limit, head, events, gate,
                                        run.config),
                             media_type="application/json")


def _gate(request: Request) -> asyncio.Semaphore:
    gate = getattr(request.app.state, "history_gate", None)
    if gate is None:
        gate = request.app.state.history_gate = asyncio.Semaphore(HISTORY_STREAMS)
    return gate


Page = tuple[list[tuple[int, str]], int | None]


async def _pages(store: Any, run_id: str, since: int, limit: int,
                 gate: asyncio.Semaphore) -> AsyncIterator[Page]:
    """The stored rows a page at a time, each with -1 while more pages follow; the last page
    with `next`: the step to continue from when `limit` cut the series short, else None."""
    async with gate:
        left = limit
        while True:
            want = min(PAGE, left)
            rows = await asyncio.to_thread(store.tick_rows, run_id, since, want)
            left -= len(rows)
            if len(rows) < want:  # the end of the series
                yield rows, None
                return
            since = rows[-1][0]
            if left == 0:  # the limit: is there more after it?
                more = await asyncio.to_thread(store.tick_rows, run_id, since, 1)
                yield rows, (since if more else None)
                return
            yield rows, -1


def _finite(text: str) -> str:
    """A stored tick as JSON: NaN/inf (JSON has none) become null."""
    if "NaN" in text or "Infinity" in text:
        return json.dumps(_clean(json.loads(text)), allow_nan=False)
    return text


async def _json_rows(store: Any, run_id: str, since: int, limit: int, head: str,
                     events: list[dict[str, Any]], gate: asyncio.Semaphore,
                     config: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
    nxt: int | None = None
    cols: list[str] | None = None
    first = True
    async for rows, more in _pages(store, run_id, since, limit, gate):
        if cols is None:
            k = len(json.loads(rows[0][1]).get("occupancy", [])) if rows else 0
            cols = csv_columns(k, config)
            yield (head + json.dumps(cols) + ', "ticks": [').encode()
        body = ",".join(_finite(text) for _, text in rows)
        if body:
            yield (("" if first else ",") + body).encode()
            first = False
        if more is None or more >= 0:
            nxt = more
    if cols is None:  # no page at all
        yield (head + json.dumps(csv_columns(0, config)) + ', "ticks": [').encode()
    yield ("], \"events\": " + json.dumps(_clean(events), allow_nan=False)
           + f', "next": {json.dumps(nxt)}}}').encode()


async def _csv_rows(store: Any, run_id: str, since: int, limit: int, cols: list[str],
                    gate: asyncio.Semaphore) -> AsyncIterator[str]:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    yield out.getvalue()
    n = sum(not c.startswith("occ_") for c in cols)
    async for rows, _ in _pages(store, run_id, since, limit, gate):
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        for _, text in rows:
            t = json.loads(text)
            w.writerow([_cell(t.get(c)) for c in cols[:n]] + [_cell(v) for v in
                                                              t.get("occupancy", [])])
        yield out.getvalue()


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return v


@router.get("/{run_id}/replay", responses={**ERRORS, 200: {
    "content": {"application/octet-stream": {}},
    "description": "u32 length + message records: the real samples, then the recorded frames "
                   "(docs/protocol.md, Replay)"}})
async def replay(request: Request, run_id: str = RunId) -> Response:
    """The recorded frames of a run (finished or live), oldest first, after its real samples."""
    run = get_run(request, run_id)
    store = sup(request).store
    await asyncio.to_thread(store.flush)
    real = run.real or await asyncio.to_thread(store.real, run.id)
    frames = await asyncio.to_thread(store.snapshots, run.id)
    body = protocol.pack_records(([real] if real else []) + frames)
    return Response(body, media_type="application/octet-stream",
                    headers={"x-frames": str(len(frames))})
