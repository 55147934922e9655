"""The scalars a tick reports, by name: one list for the trainer, the wire protocol, the store,
the CSV export and the dashboard's charts (exported through `/api/options`).

A training step *reports* named per-run values (losses, penalty terms, gradient norms) into a
`StepStats`; a tick reads them as means over the steps since the last tick (or, for gradient
norms, the last step's value) beside the mode metrics of trainer/metrics.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from collapse_lab.trainer.families.gan.remedies import PENALTIES


@dataclass(frozen=True)
class Stat:
    name: str
    label: str
    kind: str  # "tick" | "loss" | "term" | "norm" | "metric"
    help: str
    # how a tick reads a step stat: the mean over D updates ("d") or G steps ("g") since the
    # previous tick, or the last update's value ("last")
    stage: str = ""
    integer: bool = False
    # a short line in plain words for a person, under the metric's card on the dashboard
    hint: str = ""


TICK = (
    Stat("step", "step", "tick", "generator steps taken", integer=True),
    Stat("time", "time (s)", "tick", "training wall time"),
    Stat("config_version", "config version", "tick", "live changes applied so far",
         integer=True),
    Stat("steps_per_sec", "steps/s", "tick", "training speed since the previous tick"),
)
STEP = (
    Stat("loss_d", "D loss", "loss", "the discriminator's loss, mean over its updates",
         stage="d"),
    Stat("loss_g", "G loss", "loss", "the generator's loss (without penalty terms)",
         stage="g"),
    *(Stat(p.stat, p.label, "term", f"{p.label}: its weighted term in "
           f"{'D' if p.stage == 'd' else 'G'}'s loss", stage=p.stage) for p in PENALTIES),
    Stat("grad_norm_d", "‖∇D‖", "norm", "norm of D's gradient in its last update",
         stage="last"),
    Stat("grad_norm_g", "‖∇G‖", "norm", "norm of G's gradient in its last update",
         stage="last"),
)
METRICS = (
    Stat("modes_captured", "modes captured", "metric", "modes nearest to ≥ 1 high-quality "
         "sample (VEEGAN, PacGAN)", integer=True),
    Stat("modes_covered", "modes covered", "metric", "modes holding ≥ a quarter of the fair "
         "share of samples", integer=True, hint="modes it really draws"),
    Stat("hq_fraction", "high quality", "metric", "share of samples within 3 std of a mode",
         hint="samples on a mode"),
    Stat("effective_modes", "effective modes", "metric", "exp(entropy) of the nearest-mode "
         "histogram", hint="1 = a single blob"),
    Stat("reverse_kl", "reverse KL", "metric", "KL(generated ‖ data) over modes",
         hint="0 = shares as in the data"),
    Stat("hopping", "hopping", "metric", "total variation between consecutive occupancies",
         hint="1 = jumped elsewhere"),
)
SCALARS = TICK + STEP + METRICS
SCALAR_NAMES = tuple(s.name for s in SCALARS)
STEP_NAMES = tuple(s.name for s in STEP)
METRIC_NAMES = tuple(s.name for s in METRICS)


def describe() -> list[dict[str, Any]]:
    return [dict(name=s.name, label=s.label, kind=s.kind, help=s.help, integer=s.integer,
                 hint=s.hint) for s in SCALARS]


class StepStats:
    """Per-run sums of the step's scalars since the last tick, one (R,) device buffer each.

    The buffers never move (a captured CUDA graph adds into them); a tick reads and zeroes them.
    """

    def __init__(self, runs: int, device: torch.device):
        self.sums = torch.zeros(len(STEP), runs, device=device)  # (S, R)
        self.index = {s.name: i for i, s in enumerate(STEP)}
        self.stage = [s.stage for s in STEP]

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
