"""What an evolution run will cost before it starts: memory and time per generation (a step).

The shared shape is trainer/cost.py's. With K the landscape's centres (a mixture's modes: 8 for
ring8, 25 for grid25; else the KDE_POINTS of its kernel density estimate, landscape.py), the
work counts of one generation:

- `const`: 1, a generation's fixed cost; `tick`: 1 / tick_every, a tick's (mode metrics, the
  fitness histogram, the frame);
- `pop`: population × (K + 2·K_MAX) — every individual's fitness against the K centres and its
  parents' tournaments (K_MAX candidates each, ga.py);
- `pairs`: population², with fitness sharing (sharing_radius > 0) — every pair's distance;
- `grid`: grid_size² × K / tick_every while watched — the landscape picture;
- `field`: grid_size² × population / tick_every while watched with sharing — the niche count a
  newcomer would have at every grid point.

Memory: the process (`base_mb`) plus the generation's fitness (population × K) and draws
(population × 2·K_MAX), and with sharing its distances (population²) and the picture's
(grid_size² × population), each with the temporaries of the sharing function (three).

Coefficients: `python bench/costs.py --family evolution --write` (costs.json beside this file).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from collapse_lab.trainer import cost
from collapse_lab.trainer.data import DATASETS
from collapse_lab.trainer.families.evolution.config import KNOBS
from collapse_lab.trainer.families.evolution.ga import K_MAX
from collapse_lab.trainer.families.evolution.landscape import KDE_POINTS

TABLE = Path(__file__).resolve().with_name("costs.json")
FEATURES = ("const", "tick", "pop", "pairs", "grid", "field")
TICKED = ("tick", "grid", "field")  # the terms that are a tick's work over tick_every
MIXTURES = ("ring8", "grid25")  # the Gaussian mixtures: an exact landscape of one peak a mode
# where costs.json is missing: its fit (bench/costs.py on the machine of docs/performance.md,
# "Costs"), rounded
DEFAULT = ('{"seconds": {"const": 0.0014, "tick": 0.002, "pop": 4.5e-08, "pairs": 2.9e-08, '
           '"grid": 6.7e-08, "field": 3e-08}, "memory": {"base_mb": 191.0, '
           '"floor_mb": 238.0}}')
WHY = {
    "const": "a generation's fixed cost",
    "tick": "every tick measures and draws the run, every tick_every generations",
    "pop": "a generation's work grows with the population (fitness and tournaments)",
    "pairs": "fitness sharing compares every pair of the population (population²) each "
             "generation",
    "grid": "the landscape picture evaluates grid_size² points each tick",
    "field": "with fitness sharing the picture compares every grid point with every "
             "individual (grid_size² × population) each tick",
    "fitness": "a generation holds population × the landscape's centres",
    "draws": "a generation holds population × 2 × 16 tournament draws",
    "distances": "fitness sharing holds population² distances",
    "picture": "with fitness sharing the picture holds grid_size² × population distances",
    "landscape": "the picture holds grid_size² × the landscape's centres",
}


def coefficients() -> dict[str, Any]:
    return cost.coefficients(TABLE, DEFAULT)


def knobs() -> dict[str, Any]:
    return KNOBS


def drivers(cfg: Any) -> dict[str, tuple[str, ...]]:
    return {"const": ("population",), "tick": ("-tick_every",), "pop": ("population",),
            "pairs": ("population",), "grid": ("grid_size", "-tick_every"),
            "field": ("grid_size", "population", "-tick_every"), "fitness": ("population",),
            "draws": ("population",), "distances": ("population",),
            "picture": ("grid_size", "population"), "landscape": ("grid_size",)}


def centres(cfg: Any) -> int:
    """K: the points every fitness is computed against (landscape.py)."""
    return int(DATASETS[cfg.dataset].modes or 0) if cfg.dataset in MIXTURES else KDE_POINTS


def work(cfg: Any, watched: bool = True) -> dict[str, float]:
    """The work counts of one generation of `cfg` (see the module's text)."""
    n, k, every = cfg.population, centres(cfg), max(cfg.tick_every, 1)
    sharing = cfg.sharing_radius > 0
    grid = cfg.grid_size ** 2 if watched else 0
    return dict(const=1.0, tick=1.0 / every, pop=float(n * (k + 2 * K_MAX)),
                pairs=float(n * n if sharing else 0), grid=grid * k / every,
                field=(grid * n / every if sharing else 0.0))


def memory_parts(cfg: Any, watched: bool = True) -> dict[str, float]:
    """MB of the largest tensors a generation or a tick holds, over the process's own."""
    f = cost.FLOAT / cost.MB
    n, k = cfg.population, centres(cfg)
    sharing = cfg.sharing_radius > 0
    grid = cfg.grid_size ** 2 if watched else 0
    return dict(fitness=n * k * 3 * f, draws=n * 2 * K_MAX * 2 * f,
                distances=(n * n * 3 * f if sharing else 0.0),
                picture=(grid * n * 3 * f if sharing else 0.0),
                landscape=grid * k * 3 * f)


def estimate(cfg: Any, watched: bool = True) -> dict[str, Any]:
    """Memory (MB) and seconds per generation of a run of `cfg`, and which knob weighs most."""
    return cost.estimate(cfg, sys.modules[__name__], watched)
