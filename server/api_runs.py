"""Runs: create, list, read, delete, control, history (JSON/CSV) and replay."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response

from collapse_lab.server import protocol
from collapse_lab.server.auth import require_control
from collapse_lab.server.models import (
    ControlIn,
    ControlOut,
    Deleted,
    ErrorOut,
    HistoryOut,
    RunCreate,
    RunList,
    RunOut,
    knob_values,
)
from collapse_lab.server.supervisor import Run, Supervisor
from collapse_lab.trainer.presets import from_preset
from collapse_lab.trainer.stats import SCALAR_NAMES

router = APIRouter(prefix="/api/runs", tags=["runs"])
RunId = Path(pattern=r"^[a-z0-9]{1,32}$", description="the run's id")
ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut},
    422: {"model": ErrorOut}}

TICK_SCALARS = SCALAR_NAMES[3:]  # after step, time, config_version


def sup(request: Request) -> Supervisor:
    return request.app.state.sup


def get_run(request: Request, run_id: str) -> Run:
    run = sup(request).runs.get(run_id)
    if run is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return run


def run_out(run: Run) -> RunOut:
    hello = run.hello or {}
    return RunOut(id=run.id, status=run.status, reason=run.reason, config=run.config,
                  config_version=run.config_version, step=run.step, group_id=run.group_id,
                  label=run.label, created=run.created, started=run.started, ended=run.ended,
                  checkpoint_step=run.checkpoint_step, provenance=run.provenance,
                  dataset=hello.get("dataset"), value_kind=hello.get("value_kind"),
                  last=_clean(run.last), viewers=len(run.hub.viewers))


def _clean(d: Any) -> Any:
    """JSON has no NaN/inf: send null."""
    if isinstance(d, float) and not math.isfinite(d):
        return None
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_clean(v) for v in d]
    return d


@router.post("", response_model=RunOut, status_code=201, responses=ERRORS,
             dependencies=[Depends(require_control)])
async def create_run(body: RunCreate, request: Request) -> RunOut:  # type: ignore[valid-type]
    """Start a run from a flat config or `{"preset": NAME, ...overrides}`."""
    cfg = from_preset(body.preset, knob_values(body))  # type: ignore[attr-defined]
    run = sup(request).create(cfg.to_dict(), label=body.label)  # type: ignore[attr-defined]
    return run_out(run)


@router.get("", response_model=RunList)
async def list_runs(request: Request, status: str | None = Query(None, max_length=20),
              group: str | None = Query(None, max_length=32)) -> RunList:
    runs = sorted(sup(request).runs.values(), key=lambda r: r.created)
    if status:
        runs = [r for r in runs if r.status.value == status]
    if group:
        runs = [r for r in runs if r.group_id == group]
    return RunList(runs=[run_out(r) for r in runs])


@router.get("/{run_id}", response_model=RunOut, responses=ERRORS)
async def read_run(request: Request, run_id: str = RunId) -> RunOut:
    return run_out(get_run(request, run_id))


@router.delete("/{run_id}", response_model=Deleted, responses=ERRORS,
               dependencies=[Depends(require_control)])
async def delete_run(request: Request, run_id: str = RunId) -> Deleted:
    """Delete a run and everything stored for it (an active run's worker is stopped)."""
    sup(request).delete(get_run(request, run_id))
    return Deleted(id=run_id)


@router.post("/{run_id}/control", response_model=ControlOut, responses=ERRORS,
             dependencies=[Depends(require_control)])
async def control_run(body: ControlIn, request: Request, run_id: str = RunId) -> ControlOut:
    """pause, resume (also an interrupted run, from its checkpoint), stop, step, or set knobs."""
    run = get_run(request, run_id)
    res = await sup(request).control(run, body.model_dump())
    return ControlOut(run_id=run.id, status=run.status, **res)


def csv_columns(k: int) -> list[str]:
    return ["step", "time", "config_version", *TICK_SCALARS, *(f"occ_{i}" for i in range(k))]


@router.get("/{run_id}/history", response_model=HistoryOut, responses=ERRORS)
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
