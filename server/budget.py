"""A cost before work: a run's estimated memory checked against the per-run budget when it is
created or changed, and the estimate served. Every family has a model (trainer/families/*/
cost.py, the shared shape in trainer/cost.py), registered as its `Family.estimate`.

Over `run_memory_mb`, or slower than `run_step_seconds` a step — on average, or in the step that
ticks (a tick's own time: a worker's other runs wait for it) — a run is refused with a 422 that
names the knob weighing most and says what the run would need; nothing starts. The estimate is
a guide: workers also run under an address-space limit (`worker_memory_mb`, server/worker.py),
so a wrong one fails that worker's runs with "out of memory", never the machine.
"""

from __future__ import annotations

import os
from typing import Any

from collapse_lab.trainer import families
from collapse_lab.trainer.knobs import ConfigError


def check_budget(budget_mb: float, config: dict[str, Any] | Any, where: str = "",
                 step_seconds: float = 10.0) -> dict:
    """The estimate of `config`; ConfigError naming the heaviest knob when it is over the
    memory budget or slower than `step_seconds` a step."""
    cfg = families.make_config(config) if isinstance(config, dict) else config
    estimate = families.of(cfg).estimate
    if estimate is None:  # a family without a cost model: nothing to refuse
        return {}
    est = estimate(cfg)
    over_memory = est["memory_mb"] > budget_mb
    knob = est["heaviest_memory"] if over_memory else est["heaviest"]
    why = est["why_memory"] if over_memory else est["why"]
    lower = (f"{'raise' if knob == 'tick_every' else 'lower'} {knob} "
             f"(currently {getattr(cfg, knob)})")
    if over_memory:
        raise ConfigError(f"{where}{knob}", f"this run would need about "
                          f"{est['memory_mb'] / 1024:.1f} GB, over the per-run budget of "
                          f"{budget_mb / 1024:.1f} GB (setting run_memory_mb): {why}; {lower}")
    if est["step_ms"] > step_seconds * 1000:
        raise ConfigError(f"{where}{knob}", f"this run would take about "
                          f"{est['step_ms'] / 1000:.3g} s a step, over the per-run budget of "
                          f"{step_seconds:g} s (setting run_step_seconds): {why}; {lower}")
    if est.get("tick_ms", 0.0) > step_seconds * 1000:  # the step that ticks takes it all
        knob = est["heaviest_tick"]
        raise ConfigError(f"{where}{knob}", f"each tick of this run would take about "
                          f"{est['tick_ms'] / 1000:.3g} s, over the per-run budget of "
                          f"{step_seconds:g} s a step (setting run_step_seconds): "
                          f"{est['why_tick']}; lower {knob} (currently {getattr(cfg, knob)})")
    return est


def worker_memory_mb(setting: int) -> int:
    """The address-space limit of a worker: the setting, or (0) half the machine's memory."""
    if setting:
        return setting
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0
    return max(2048, total // 2 // 2**20)
