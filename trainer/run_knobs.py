"""The knobs every family's run has: its data and its schedule (trainer/family.py).

A family takes these as they are or with its own default and help (`dataclasses.replace`, e.g. a
GA's `steps` counts generations), and adds its own knobs. The driver (trainer/loop.py) reads only
these from a config: `seed`, `steps`, `tick_every`, `speed`, `device`, `threads` and the data
knobs of trainer/data.py (`DATA_KNOBS`). `fill_data` and `check_data` are the data knobs' rules,
which every family's `KnobSet` (trainer/knobs.py) applies.
"""

from __future__ import annotations

from typing import Any

from collapse_lab.trainer.data import POINTS_OR_IMAGES, SCALABLE
from collapse_lab.trainer.knobs import ConfigError, Knob

DATASETS = POINTS_OR_IMAGES  # the data knob's choices; a family of text data has its own
DEVICES = ("auto", "cpu", "cuda")

DATA: dict[str, Knob] = {k.name: k for k in (
    Knob("dataset", "choice", "ring8", "toy distribution to learn", group="data",
         choices=DATASETS, label="Dataset", main=True),
    Knob("data", "str", None, "path of a CSV of 2-D points (dataset=csv)", group="data",
         nullable=True, label="Data file"),
    Knob("clusters", "int", 0, "modes of user CSV data (k-means k); 0 = choose by silhouette",
         group="data", lo=0, hi=25, label="Clusters"),
    Knob("data_scale", "float", 1.0, "multiplies the mixture's centres and stds (ring8, grid25): "
         "0.5 gives PacGAN's ring, radius 1, std 0.01", group="data", lo=0.05, hi=20.0,
         label="Data scale"),
)}

RUN: dict[str, Knob] = {k.name: k for k in (
    Knob("steps", "int", 3000, "steps to train; 0 = until stopped", group="run",
         live=True, lo=0, hi=1_000_000, label="Steps"),
    Knob("speed", "float", 0.0, "at most this many steps a second (slow motion); 0 = as fast "
         "as the machine goes", group="run", live=True, lo=0.0, hi=10_000.0, structural=True,
         label="Speed"),
    Knob("seed", "int", 0, "seed of weights, noise and data", group="run", lo=0, hi=2**31 - 1,
         label="Seed"),
    Knob("tick_every", "int", 20, "steps between metric ticks", group="run", live=True, lo=1,
         hi=10_000, label="Steps between ticks", short="steps/tick"),
    Knob("grid_size", "int", 64, "side of the landscape grid", group="run", lo=8, hi=256,
         label="Landscape grid", short="grid"),
    Knob("device", "choice", "auto", "auto = CUDA when present, else CPU", group="run",
         choices=DEVICES, label="Device"),
    # a process-wide setting (trainer/loop.py: the last run added to a worker decides), so it
    # does not split a stack
    Knob("threads", "int", 0, "CPU threads for this run; 0 = torch's default", group="run",
         lo=0, hi=256, label="CPU threads", short="threads", outside_step=True),
)}


def fill_data(values: dict[str, Any]) -> dict[str, Any]:
    """`--data points.csv` alone means: learn these points."""
    if values.get("data") and "dataset" not in values:
        values = {**values, "dataset": "csv"}
    return values


def check_data(cfg: Any) -> None:
    """Refuse data knobs that contradict each other, saying why."""
    if cfg.dataset == "csv" and not cfg.data:
        raise ConfigError("data", "dataset csv needs a file: --data points.csv")
    if cfg.dataset != "csv" and cfg.data:
        raise ConfigError("dataset", "a data file was given; use dataset csv with it")
    if cfg.data_scale != 1.0 and cfg.dataset not in SCALABLE:
        raise ConfigError("data_scale", "scales the Gaussian mixtures only ("
                          + ", ".join(SCALABLE) + f"); dataset {cfg.dataset} needs 1")
