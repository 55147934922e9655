"""Runs: create, list, read, delete, control, history (JSON/CSV) and replay."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from starlette.requests import HTTPConnection

from collapse_lab.server import protocol
from collapse_lab.server.auth import (
    is_teacher,
    require_control,
    require_run_control,
    require_start,
)
from collapse_lab.server.datapaths import check_data
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
from collapse_lab.trainer.presets import from_preset
from collapse_lab.trainer.stats import SCALAR_NAMES

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
TICK_SCALARS = SCALAR_NAMES[3:]  # after step, time, config_version


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


async def at_the_door(request: HTTPConnection, values: dict[str, Any]) -> dict[str, Any]:
    """What only a worker would find out, checked when the run is created: the device exists
    and `data` names an uploaded file (server/datapaths.py). Returns the values to use."""
    if "device" in values:
        check_device(values["device"])
    if values.get("data") is not None:
        values = dict(values, data=await check_data(request.app.state.settings.data_dir,
                                                    values["data"]))
    return values


def run_out(run: Run, places: dict[str, tuple[int, float | None]] | None = None) -> RunOut:
    """A run as the API shows it; `places` (Supervisor.queue_places) saves working out the queue
    again for each run of a list."""
    hello = run.hello or {}
    place, wait = (places or {}).get(run.id, (None, None))
    return RunOut(id=run.id, status=run.status, reason=run.reason, config=run.config,
                  config_version=run.config_version, step=run.step, group_id=run.group_id,
                  label=run.label, created=run.created, started=run.started, ended=run.ended,
                  checkpoint_step=run.checkpoint_step, provenance=run.provenance,
                  dataset=hello.get("dataset"), value_kind=hello.get("value_kind"),
                  last=_clean(run.last), viewers=len(run.hub.viewers), owner=run.owner,
                  queue_position=place, wait_s=wait)


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
    values = await at_the_door(request, knob_values(body))
    cfg = from_preset(body.preset, values)  # type: ignore[attr-defined]
    check_device(cfg.device)
    if is_student_owner(owner):
        check_student_cap(request, owner)
    s = sup(request)
    run = s.create(cfg.to_dict(), label=body.label, owner=owner)  # type: ignore[attr-defined]
    return run_out(run, s.queue_places())


def check_student_cap(request: Request, owner: str) -> None:
    """A student may have `student_cap` active runs; all students together `student_runs`."""
    room = request.app.state.classroom
    active = [r for r in sup(request).runs.values()
              if r.status in ACTIVE and is_student_owner(r.owner)]
    mine = [r for r in active if r.owner == owner]
    if len(mine) >= room.student_cap:
        ids = ", ".join(r.id for r in mine)
        raise HTTPException(429, f"Each student may have {room.student_cap} active "
                            f"run{'s' if room.student_cap != 1 else ''} at a time and you have "
                            f"{len(mine)} ({ids}): stop one to start another")
    limit = request.app.state.settings.student_runs
    if len(active) >= limit:
        raise HTTPException(429, f"The class already has {limit} student runs active, the most "
                            "this server takes: wait for one to finish")


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
        targets = s.group_runs(body.group)
    else:
        targets = [r for r in s.runs.values() if r.status not in FINAL]
    stopped, already = [], []
    for run in targets:
        try:
            await s.control(run, {"action": "stop"})
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
    return RunList(runs=[run_out(r, places) for r in runs])


@router.get("/{run_id}", response_model=RunOut, responses=ERRORS)
async def read_run(request: Request, run_id: str = RunId) -> RunOut:
    return run_out(get_run(request, run_id), sup(request).queue_places())


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
    res = await sup(request).control(run, await control_body(request, run, body))
    return ControlOut(run_id=run.id, status=run.status, **res)


async def control_body(request: HTTPConnection, run: Run, body: Any) -> dict[str, Any]:
    """The control as the supervisor takes it, after the door's checks (a queued run may still
    change `device` and `data`; resuming an interrupted run queues it again)."""
    if isinstance(body, SetIn):
        return {"set": await at_the_door(request, given(body.set))}
    if body.action == "resume" and run.status == RunState.interrupted:
        check_room(request, 1)
    return body.model_dump()


def csv_columns(k: int) -> list[str]:
    return ["step", "time", "config_version", *TICK_SCALARS, *(f"occ_{i}" for i in range(k))]


@router.get("/{run_id}/history", response_model=HistoryOut, responses={**ERRORS, 200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "the series: JSON, or CSV with `?format=csv` (header row, one row per tick)"}})
async def history(request: Request, run_id: str = RunId,
                  format: Literal["json", "csv"] = Query("json"),
                  since: int = Query(-1, ge=-1, le=2**31, description="only ticks after step"),
                  limit: int = Query(1_000_000, ge=1, le=1_000_000)) -> Any:
    """The metric series, one row per tick (JSON, or CSV with `?format=csv`)."""
    run = get_run(request, run_id)
    store = sup(request).store
    await asyncio.to_thread(store.flush)
    ticks = await asyncio.to_thread(store.ticks, run.id, since, limit)
    k = len(ticks[0]["occupancy"]) if ticks else (run.hello or {}).get("dataset", {}).get(
        "num_modes", 0)
    cols = csv_columns(k)
    if format == "csv":
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(cols)
        for t in ticks:
            occ = t.get("occupancy", [])
            w.writerow([_cell(t.get(c)) for c in cols[:3 + len(TICK_SCALARS)]]
                       + [_cell(v) for v in occ])
        return Response(out.getvalue(), media_type="text/csv", headers={
            "content-disposition": f'attachment; filename="run-{run.id}.csv"'})
    events = await asyncio.to_thread(store.events, run.id)
    return HistoryOut(run_id=run.id, columns=cols, ticks=_clean(ticks), events=_clean(events))


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
