"""What a run will cost, asked before it starts or before a live change applies.

`GET /api/estimate?config={…}`: a config's memory and time per step (knobs, or a preset and
overrides, as POST /api/runs takes them) and whether it fits the per-run budget.
`GET /api/runs/{id}/estimate?set={…}`: the run as it is and as the change would make it,
with the run's measured rate scaled by the ratio of the two estimates — the page asks before
applying a change that would slow the run more than 3× (docs/performance.md, "Costs").
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from collapse_lab.server.api_runs import ERRORS, RunId, get_run
from collapse_lab.trainer import families
from collapse_lab.trainer.families import make_config, validate_changes
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import from_preset

router = APIRouter(tags=["runs"])
SLOWER = 3.0  # a change past this slow-down is asked about first


class Estimate(BaseModel):
    memory_mb: float = Field(description="estimated peak memory of the run's worker (MB)")
    step_ms: float = Field(description="estimated milliseconds per training step, ticks "
                           "included, one thread")
    steps_per_sec: float | None
    heaviest: str = Field(description="the knob that weighs most in the time estimate")
    heaviest_memory: str = Field(description="the knob that weighs most in the memory one")
    parts_ms: dict[str, float] = Field(description="the estimate's terms (bench/costs.py)")
    why: str = Field("", description="what the largest time term counts")
    why_memory: str = Field("", description="what the largest memory part holds")
    tick_ms: float = Field(0.0, description="estimated milliseconds of one tick: the step that "
                           "ticks takes them all, so they are held to the per-step budget too")
    heaviest_tick: str = Field("", description="the knob that weighs most in a tick")
    why_tick: str = Field("", description="what a tick's largest term counts")
    budget_mb: float = Field(description="the per-run budget (setting run_memory_mb)")
    budget_step_ms: float = Field(description="the per-step budget (run_step_seconds)")
    fits: bool = Field(description="within both budgets: such a run would be accepted")


class ChangeEstimate(BaseModel):
    run_id: str
    now: Estimate
    after: Estimate
    slowdown: float = Field(description="after.step_ms over now.step_ms")
    measured_steps_per_sec: float | None = Field(description="the run's rate at its last tick")
    expected_steps_per_sec: float | None = Field(description="the measured rate over slowdown "
                                                 "(the estimate's own where none is measured)")
    ask: bool = Field(description=f"slowdown over {SLOWER:g}×: say so before applying")


def _out(request: Request, cfg: Any) -> Estimate:
    settings = request.app.state.settings
    budget, step = settings.run_memory_mb, settings.run_step_seconds * 1000
    estimate = families.of(cfg).estimate
    if estimate is None:
        raise ConfigError("family", f"no cost model for a {cfg.family} run")
    e = estimate(cfg)
    return Estimate(**e, budget_mb=budget, budget_step_ms=step,
                    fits=(e["memory_mb"] <= budget and e["step_ms"] <= step
                          and e.get("tick_ms", 0.0) <= step))


def _object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ConfigError(name, "expected a JSON object of knobs") from None
    if not isinstance(value, dict):
        raise ConfigError(name, "expected a JSON object of knobs")
    return value


@router.get("/api/estimate", response_model=Estimate, responses={422: ERRORS[422]})
async def estimate_config(request: Request, config: str = Query(
        "{}", max_length=4096, description='a config as JSON: knobs, or {"preset": NAME, …}')
) -> Estimate:
    """Memory and time per step of a run of this config, and whether it fits the budget."""
    values = _object(config, "config")
    preset = values.pop("preset", None)
    values.pop("label", None)
    if preset is not None and not isinstance(preset, str):
        raise ConfigError("preset", "expected a preset name")
    return _out(request, from_preset(preset, values))


@router.get("/api/runs/{run_id}/estimate", response_model=ChangeEstimate, responses=ERRORS)
async def estimate_change(request: Request, run_id: str = RunId, set: str = Query(
        "{}", max_length=4096, description="knob changes as JSON, as a control's `set`")
) -> ChangeEstimate:
    """The run now and after the change: estimates, the slow-down and the expected rate."""
    run = get_run(request, run_id)
    cfg = make_config(run.config)
    changes = _object(set, "set")
    after = cfg.replace(**validate_changes(cfg, changes, live=False)) if changes else cfg
    now, then = _out(request, cfg), _out(request, after)
    slowdown = then.step_ms / now.step_ms if now.step_ms > 0 else 1.0
    measured = (run.last or {}).get("steps_per_sec") or None
    expected = (measured / slowdown if measured else then.steps_per_sec)
    return ChangeEstimate(run_id=run.id, now=now, after=then, slowdown=round(slowdown, 2),
                          measured_steps_per_sec=measured,
                          expected_steps_per_sec=round(expected, 1) if expected else None,
                          ask=slowdown > SLOWER)
