"""What a run will cost before it starts: the pieces the families' cost models share.

Every family's model (trainer/families/*/cost.py) has one shape. Time: a linear model in a few
work counts of one training step (the family's `work(cfg)`, the tick's share divided by
tick_every), seconds per unit measured by `python bench/costs.py --family NAME --write` and
stored beside the model in `costs.json` with the table they were fitted to (built-in ones,
`DEFAULT`, where that file is missing). Memory: the process's own (`base_mb`) plus the largest
tensors a step or a tick holds, counted from the knobs (`memory_parts`), and never less than a
default run's measured peak (`floor_mb`: the imports' peak, which small tensors fit into once
freed).

Which knob to name when a run is over a budget: the largest term's knobs, each compared with its
registered default (trainer/families/*/knobs.py), and the one furthest past it in the direction
that costs (larger, or for tick_every smaller) is named. So a diffusion run with 1,000 sampling
steps is told to lower sample_steps, and the same run with tick_every 1 to raise tick_every.

The estimate is a guide, not a bound: workers also run under an address-space limit
(server/worker.py), so a wrong estimate fails that worker's runs, never the machine.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

MB = 2.0**20
FLOAT = 4  # bytes of a float32


@lru_cache(maxsize=16)
def coefficients(table: Path, default: str) -> dict[str, Any]:
    """The fitted coefficients stored in `table` (costs.json), else `default` (JSON text)."""
    try:
        return json.loads(table.read_text())["coefficients"]
    except (OSError, ValueError, KeyError):
        return json.loads(default)


def heaviest(cfg: Any, knobs: dict[str, Any], drivers: tuple[str, ...]) -> str:
    """Of `drivers` (knob names; "-name" where a smaller value costs more, as tick_every),
    the one furthest past its registered default; the first where none is past it."""
    best, worst = drivers[0].lstrip("-"), 1.0
    for d in drivers:
        name = d.lstrip("-")
        value, default = float(getattr(cfg, name)), float(knobs[name].default or 1)
        ratio = (default / max(value, 1e-12)) if d.startswith("-") else value / default
        if ratio > worst:
            best, worst = name, ratio
    return best


def result(parts_s: dict[str, float], memory: dict[str, float], base_mb: float, knob: str,
           memory_knob: str, why: str, why_memory: str, floor_mb: float = 0.0,
           tick_s: float = 0.0, tick_knob: str = "", why_tick: str = "") -> dict[str, Any]:
    """An estimate as every family returns it (server/api_estimate.py `Estimate`)."""
    secs = sum(parts_s.values())
    return dict(memory_mb=round(max(floor_mb, base_mb + sum(memory.values())), 1),
                step_ms=round(secs * 1e3, 3),
                steps_per_sec=round(1.0 / secs, 1) if secs > 0 else None,
                heaviest=knob, heaviest_memory=memory_knob,
                parts_ms={k: round(v * 1e3, 3) for k, v in parts_s.items()}, why=why,
                why_memory=why_memory, tick_ms=round(tick_s * 1e3, 3),
                heaviest_tick=tick_knob, why_tick=why_tick)


def estimate(cfg: Any, model: Any, watched: bool = True) -> dict[str, Any]:
    """The estimate of `cfg` by a family's cost module `model`: its FEATURES, `work`,
    `memory_parts`, `drivers(cfg)` (the knobs behind each time term and memory part), WHY
    (what each term and part counts, for a refusal), TICKED (the terms a tick's work over
    tick_every), `knobs()` and `coefficients()`.

    `tick_ms` is one tick's own time (the ticked terms × tick_every): a step spreads it over
    tick_every steps, but the step that ticks takes all of it, and a worker's other runs wait
    that long, so the budget bounds it too (server/budget.py)."""
    co = model.coefficients()
    w = model.work(cfg, watched)
    parts = {k: co["seconds"][k] * w[k] for k in model.FEATURES}
    mem = model.memory_parts(cfg, watched)
    top = max(parts, key=lambda k: parts[k])
    top_mem = max(mem, key=lambda k: mem[k]) if mem else top
    top_tick = max(model.TICKED, key=lambda k: parts[k])
    knobs, drivers = model.knobs(), model.drivers(cfg)
    # raising tick_every spreads a tick, it never shortens one: not a knob to name for it
    tick_drivers = tuple(d for d in drivers[top_tick] if d != "-tick_every") or ("tick_every",)
    return result(parts, mem, co["memory"]["base_mb"], heaviest(cfg, knobs, drivers[top]),
                  heaviest(cfg, knobs, drivers.get(top_mem, drivers[top])),
                  model.WHY[top], model.WHY.get(top_mem, model.WHY[top]),
                  co["memory"].get("floor_mb", 0.0),
                  sum(parts[k] for k in model.TICKED) * max(cfg.tick_every, 1),
                  heaviest(cfg, knobs, tick_drivers), model.WHY[top_tick])
