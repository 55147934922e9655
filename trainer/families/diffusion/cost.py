"""What a diffusion run will cost before it starts: memory and time per training step.

The shared shape is trainer/cost.py's. Work counts of one training step, with `net` the noise
predictor's multiply-adds for one point, (2 + EMBED)·width + (depth − 1)·width² + 2·width:

- `const`: 1, a step's fixed cost; `tick`: 1 / tick_every, a tick's (mode metrics, the frame);
- `train`: batch × net — the step's forward and backward;
- `sample`: sample_steps × samples × net / tick_every — each tick draws `samples` points by
  `sample_steps` passes of the network;
- `near`: (samples + grid_size² while watched) × train_points / tick_every — each tick compares
  every sample, and for the picture every grid point, with every training point.

Memory: the process (`base_mb`) plus the step's activations (batch × width × depth, kept for
the backward), the tick's distances (samples × train_points, and grid_size² × train_points for
the picture) and its sampling activations (samples × width).

Coefficients: `python bench/costs.py --family diffusion --write` (costs.json beside this file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from collapse_lab.trainer import cost
from collapse_lab.trainer.families.diffusion.config import KNOBS
from collapse_lab.trainer.families.diffusion.model import EMBED

TABLE = Path(__file__).resolve().with_name("costs.json")
FEATURES = ("const", "tick", "train", "sample", "near")
TICKED = ("tick", "sample", "near")  # the terms that are a tick's work over tick_every
# where costs.json is missing: its fit (bench/costs.py on the machine of docs/performance.md,
# "Costs"), rounded
DEFAULT = ('{"seconds": {"const": 0.0022, "tick": 0.02, "train": 2.7e-10, '
           '"sample": 1.5e-10, "near": 1.2e-08}, "memory": {"base_mb": 171.0, '
           '"floor_mb": 243.0}}')
WHY = {
    "const": "a step's fixed cost",
    "tick": "every tick measures and draws the run, every tick_every steps",
    "train": "a step's work grows with batch × width² × depth",
    "sample": "each tick draws samples × sample_steps passes of the network (width² × depth), "
              "every tick_every steps",
    "near": "each tick compares every sample (and every grid point of the picture) with every "
            "training point, every tick_every steps",
    "activations": "a step keeps batch × width × depth activations for its backward",
    "distances": "a tick holds samples × train_points distances",
    "zones": "the picture holds grid_size² × train_points distances",
    "sampling": "sampling holds samples × width activations",
}


def coefficients() -> dict[str, Any]:
    return cost.coefficients(TABLE, DEFAULT)


def knobs() -> dict[str, Any]:
    return KNOBS


def drivers(cfg: Any) -> dict[str, tuple[str, ...]]:
    return {"const": ("batch",), "tick": ("-tick_every",),
            "train": ("batch", "width", "depth"),
            "sample": ("sample_steps", "samples", "-tick_every", "width", "depth"),
            "near": ("samples", "train_points", "grid_size", "-tick_every"),
            "activations": ("batch", "width", "depth"),
            "distances": ("samples", "train_points"),
            "zones": ("grid_size", "train_points"),
            "sampling": ("samples", "width")}


def net(cfg: Any) -> int:
    """Multiply-adds of the noise predictor for one point."""
    return (2 + EMBED) * cfg.width + (cfg.depth - 1) * cfg.width ** 2 + 2 * cfg.width


def work(cfg: Any, watched: bool = True) -> dict[str, float]:
    """The work counts of one training step of `cfg` (see the module's text)."""
    every = max(cfg.tick_every, 1)
    grid = cfg.grid_size ** 2 if watched else 0
    return dict(const=1.0, tick=1.0 / every, train=float(cfg.batch * net(cfg)),
                sample=cfg.sample_steps * cfg.samples * net(cfg) / every,
                near=(cfg.samples + grid) * cfg.train_points / every)


def memory_parts(cfg: Any, watched: bool = True) -> dict[str, float]:
    """MB of the largest tensors a step or a tick holds, over the process's own."""
    f = cost.FLOAT / cost.MB
    return dict(activations=cfg.batch * cfg.width * cfg.depth * 6 * f,  # pre-activation,
                # SiLU, dropout's mask and their gradients
                distances=cfg.samples * cfg.train_points * 2 * f,  # cdist, masked
                zones=(cfg.grid_size ** 2 * cfg.train_points * f if watched else 0.0),
                sampling=cfg.samples * cfg.width * 4 * f)


def estimate(cfg: Any, watched: bool = True) -> dict[str, Any]:
    """Memory (MB) and seconds per step of a run of `cfg`, and which knob weighs most."""
    return cost.estimate(cfg, sys.modules[__name__], watched)
