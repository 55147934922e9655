"""The scalars a tick reports, by name: one list for the trainer, the wire protocol, the store,
the CSV export and the dashboard's charts and cards (exported through `/api/options`).

Every family's tick reports the common stats (`TICK`), what its own step reports (its `stats`,
e.g. trainer/families/gan/stats.py: losses, penalty terms, gradient norms) and the mode metrics of
trainer/metrics.py (`METRICS`). A step *reports* named per-run values into a `StepStats`; a tick
reads them as means over the steps since the last tick (or the last step's value).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from collapse_lab.trainer.family import Family, Stat

__all__ = ["METRICS", "METRIC_NAMES", "TICK", "Stat", "StepStats", "describe", "scalars"]

TICK = (
    Stat("step", "step", "tick", "steps taken (a GAN's generator steps, a GA's generations)",
         integer=True, fmt="d", show=("card", "chart", "csv")),
    Stat("time", "time", "tick", "training wall time", unit="s", fmt=".1f", show=("csv",)),
    Stat("config_version", "config version", "tick", "live changes applied so far",
         integer=True, fmt="d", show=("csv",)),
    Stat("steps_per_sec", "steps/s", "tick", "training speed since the previous tick",
         fmt=".0f", show=("card", "chart", "csv"), color="#475569", under="step"),
)

METRICS = (
    Stat("modes_captured", "modes captured", "metric", "modes nearest to ≥ 1 high-quality "
         "sample (VEEGAN, PacGAN)", integer=True, fmt="d", show=("card", "chart", "csv"),
         color="#8fbf9f", under="modes_covered"),
    Stat("modes_covered", "modes covered", "metric", "modes holding ≥ a quarter of the fair "
         "share of samples", integer=True, fmt="d", show=("card", "chart", "csv"),
         color="#2e9e5b", hint="modes it really draws"),
    Stat("hq_fraction", "high quality", "metric", "share of samples within 3 std of a mode",
         fmt=".1%", show=("card", "chart", "csv"), color="#0f766e", hint="samples on a mode"),
    Stat("effective_modes", "effective modes", "metric", "exp(entropy) of the nearest-mode "
         "histogram", fmt=".3g", show=("card", "chart", "csv"), color="#4c8bf5",
         hint="1 = a single blob"),
    Stat("reverse_kl", "reverse KL", "metric", "KL(generated ‖ data) over modes", fmt=".3g",
         show=("card", "chart", "csv"), color="#c2410c", hint="0 = shares as in the data"),
    Stat("hopping", "hopping", "metric", "total variation between consecutive occupancies",
         fmt=".2g", show=("card", "chart", "csv"), color="#7c3aed", hint="1 = jumped elsewhere"),
)
METRIC_NAMES = tuple(s.name for s in METRICS)


def scalars(family: Family) -> tuple[Stat, ...]:
    """Every scalar a tick of `family` reports, in the order of frames and CSV columns: the
    common tick stats, the family's own, the mode metrics."""
    return TICK + tuple(family.stats) + METRICS


def merged(families: Sequence[Family]) -> tuple[Stat, ...]:
    """The scalars of several families, each name once (the first family's description)."""
    out: dict[str, Stat] = {}
    for s in TICK:
        out[s.name] = s
    for f in families:
        for s in f.stats:
            out.setdefault(s.name, s)
    for s in METRICS:
        out[s.name] = s
    return tuple(out.values())


def describe(stats: Sequence[Stat]) -> list[dict[str, Any]]:
    return [s.describe() for s in stats]


class StepStats:
    """Per-run sums of the step's scalars since the last tick, one (R,) device buffer each.

    The buffers never move (a captured CUDA graph adds into them); a tick reads and zeroes them.
    """

    def __init__(self, stats: Sequence[Stat], runs: int, device: torch.device):
        self.sums = torch.zeros(len(stats), runs, device=device)  # (S, R)
        self.index = {s.name: i for i, s in enumerate(stats)}
        self.stage = [s.stage for s in stats]

    def add(self, name: str, value: torch.Tensor) -> None:
        self.sums[self.index[name]] += value.detach()

    def put(self, name: str, value: torch.Tensor) -> None:
        self.sums[self.index[name]] = value.detach()

    def means(self, n_d: torch.Tensor, n_g: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """(S, n) for the runs `rows`: each stat's mean over the D updates (n_d) or G steps (n_g)
        since the run's last tick, the `last` stats as they are."""
        sums = self.sums[:, rows]
        per = {"d": n_d.clamp_min(1), "g": n_g.clamp_min(1)}
        return torch.stack([sums[k] / per[st] if st in per else sums[k]
                            for k, st in enumerate(self.stage)])

    def reset(self, rows: torch.Tensor | None = None) -> None:
        if rows is None:
            self.sums.zero_()
        else:
            self.sums[:, rows] = 0.0


def tick_fields(engine: Any, i: int, now: float, row: Any, step_names: Sequence[str],
                metric_names: Sequence[str]) -> dict[str, Any]:
    """Run i's tick from its packed host row (its step stats, the mode metrics, the occupancy,
    then a finite flag), with the step, time, config version and steps/s since its last tick
    (which this records). `engine` is any stacked engine: steps, last_tick, versions, elapsed()."""
    t_last, s_last = engine.last_tick[i]
    step = int(engine.steps[i])
    rate = (step - s_last) / (now - t_last) if step > s_last and now > t_last else 0.0
    engine.last_tick[i] = (now, step)
    t: dict[str, Any] = dict(step=step, time=round(engine.elapsed(i, now), 4),
                             config_version=engine.versions[i], steps_per_sec=round(rate, 2))
    s, m = len(step_names), len(metric_names)
    for k, name in enumerate(step_names):
        t[name] = float(row[k])
    for k, name in enumerate(metric_names):
        t[name] = float(row[s + k])
    t["modes_captured"], t["modes_covered"] = int(t["modes_captured"]), int(t["modes_covered"])
    t["occupancy"] = [float(v) for v in row[s + m:-1]]
    return t
