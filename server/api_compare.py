"""Compare groups: 2–8 runs that share dataset, seed and data stream and differ in given knobs.

The same seed gives the same initial networks (where the architectures match) and the same real
batches, so differences between the runs come from the knobs that differ.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from starlette.requests import HTTPConnection

from collapse_lab.server.api_runs import (
    ERRORS,
    FULL,
    at_the_door,
    check_kept,
    check_room,
    run_out,
    shown_config,
    sup,
)
from collapse_lab.server.auth import require_control
from collapse_lab.server.budget import check_budget
from collapse_lab.server.devices import check_device
from collapse_lab.server.models import (
    SHARED,
    CompareIn,
    ExtendIn,
    GroupControlIn,
    GroupControlOut,
    GroupList,
    GroupOut,
    given,
)
from collapse_lab.server.supervisor import Conflict, RunState, Supervisor
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import from_preset

router = APIRouter(prefix="/api/compare", tags=["compare"])
GroupId = Path(pattern=r"^g[a-z0-9]{1,31}$", description="the group's id")
MAX_RUNS = 8


def variant_label(v: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v[k]}" for k in sorted(v)) or "base"


def build_config(base: dict[str, Any], variant: dict[str, Any], where: str) -> dict[str, Any]:
    for k in SHARED:
        if k in variant:
            raise ConfigError(f"{where}.{k}", "runs of a compare group share dataset, data and "
                              "seed; put it in base")
    if "preset" in variant or "label" in variant:
        raise ConfigError(f"{where}.preset", "a variant holds knobs only; put a preset in base")
    values = {k: v for k, v in base.items() if k not in ("preset", "label")}
    values.update(variant)
    try:
        cfg = from_preset(base.get("preset"), values)
        check_device(cfg.device)
        return cfg.to_dict()
    except ConfigError as e:
        field = e.field if e.field in base and e.field not in variant else f"{where}.{e.field}"
        if e.field == "preset":
            field = "base.preset"
        raise ConfigError(field, e.message) from None


def group_out(s: Supervisor, g: dict[str, Any], conn: HTTPConnection) -> GroupOut:
    places = s.queue_places()
    return GroupOut(id=g["id"], label=g.get("label"), created=g["created"],
                    base=shown_config(conn, g["base"], True), varied=g["varied"],
                    runs=[run_out(r, conn, places) for r in s.groups.runs_of(g["id"])])


def get_group(request: Request, gid: str) -> dict[str, Any]:
    g = sup(request).groups.get(gid)
    if g is None:
        raise HTTPException(404, f"no compare group {gid!r}")
    return g


@router.post("", response_model=GroupOut, status_code=201, responses=FULL,
             dependencies=[Depends(require_control)])
async def create_group(body: CompareIn, request: Request) -> GroupOut:
    """Start 2–8 runs side by side: `base` is shared, each of `variants` says what differs."""
    check_room(request, len(body.variants))
    check_kept(request, None, len(body.variants))
    base = given(body.base)
    try:
        base = await at_the_door(request, base)
    except ConfigError as e:
        raise ConfigError(f"base.{e.field}", e.message) from None
    variants = [given(v) for v in body.variants]
    for i, v in enumerate(variants):
        try:
            await at_the_door(request, v)
        except ConfigError as e:
            raise ConfigError(f"variants[{i}].{e.field}", e.message) from None
    configs = [build_config(base, v, f"variants[{i}]") for i, v in enumerate(variants)]
    for i, cfg in enumerate(configs):
        check_budget(request.app.state.settings.run_memory_mb, cfg, f"variants[{i}].",
                     request.app.state.settings.run_step_seconds)
    s = sup(request)
    g = s.groups.new(base, variants, body.label)
    for v, cfg in zip(variants, configs, strict=False):
        s.create(cfg, group_id=g["id"], label=variant_label(v), schedule=False)
    s.schedule()  # all at once, so the runs that can train batched start together
    return group_out(s, g, request)


@router.get("", response_model=GroupList)
async def list_groups(request: Request) -> GroupList:
    s = sup(request)
    return GroupList(groups=[group_out(s, g, request) for g in s.groups])


@router.get("/{group_id}", response_model=GroupOut, responses=ERRORS)
async def read_group(request: Request, group_id: str = GroupId) -> GroupOut:
    return group_out(sup(request), get_group(request, group_id), request)


@router.post("/{group_id}/control", response_model=GroupControlOut, responses=FULL,
             dependencies=[Depends(require_control)])
async def control_group(body: GroupControlIn, request: Request,
                        group_id: str = GroupId) -> GroupControlOut:
    """Pause, resume or stop every run of the group; runs whose state refuses it are listed."""
    g = get_group(request, group_id)
    s = sup(request)
    runs = s.groups.runs_of(g["id"])
    if body.action == "resume":  # interrupted runs queue again
        check_room(request, sum(r.status == RunState.interrupted for r in runs))
    results = []
    for r in runs:
        try:
            res = await s.controls.apply(r, {"action": body.action})
            results.append(dict(id=r.id, accepted=res["accepted"], status=r.status.value))
        except Conflict as e:
            results.append(dict(id=r.id, error=str(e), status=r.status.value))
    return GroupControlOut(id=g["id"], results=results)


@router.post("/{group_id}/runs", response_model=GroupOut, status_code=201, responses=FULL,
             dependencies=[Depends(require_control)])
async def extend_group(body: ExtendIn, request: Request, group_id: str = GroupId) -> GroupOut:
    """Add one more variant to a group (at most 8 runs)."""
    g = get_group(request, group_id)
    s = sup(request)
    if len(s.groups.runs_of(g["id"])) >= MAX_RUNS:
        raise Conflict(f"group {g['id']} already has {MAX_RUNS} runs, the most a group holds")
    check_room(request, 1)
    check_kept(request, None, 1)
    variant = given(body.variant)
    try:
        await at_the_door(request, variant)
    except ConfigError as e:
        raise ConfigError(f"variant.{e.field}", e.message) from None
    cfg = build_config(g["base"], variant, "variant")
    check_budget(request.app.state.settings.run_memory_mb, cfg, "variant.",
                 request.app.state.settings.run_step_seconds)
    g["varied"].append(variant)
    s.store.save_group(g)
    s.create(cfg, group_id=g["id"], label=variant_label(variant))
    return group_out(s, g, request)
