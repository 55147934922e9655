"""A vae run's configuration: the run's own knobs (data, schedule) and the VAE's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.families.vae.knobs import VAE
from collapse_lab.trainer.knobs import Knob, KnobSet
from collapse_lab.trainer.run_knobs import DATA, RUN

_RUN_KNOBS = {**DATA, **RUN}  # the knobs every family's run has (trainer/run_knobs.py)

_RUN = ("speed", "seed")
# grid_size is a knob of every run (sweeps set it); a VAE draws no landscape and ignores it, so
# runs that differ in it still share a stack
_REST = ("device", "threads")
_GRID = dataclasses.replace(_RUN_KNOBS["grid_size"], outside_step=True)
_DATASET = dataclasses.replace(_RUN_KNOBS["dataset"], default="digits", choices=("digits",),
                               help="images to learn: scikit-learn's 8×8 handwritten digits")
_STEPS = dataclasses.replace(_RUN_KNOBS["steps"], default=3000,
                             help="steps (minibatch updates) to train; 0 = until stopped")
_TICK = dataclasses.replace(_RUN_KNOBS["tick_every"], default=10)

FAMILY = "vae"  # every vae config's `family` (trainer/families/__init__.py)

# digits only: no data file, no scale, so none of the data knobs' rules; no combination to refuse
SPACE = KnobSet(
    FAMILY, (_DATASET, *VAE, _STEPS, *(_RUN_KNOBS[n] for n in _RUN), _TICK, _GRID,
             *(_RUN_KNOBS[n] for n in _REST)),
    module=__name__, name="VaeConfig", doc="Every knob of a vae run, with its default.")

KNOBS: dict[str, Knob] = SPACE.knobs
LIVE = SPACE.live
# what fixes the shape of a stacked step: the networks, the batch, the device, the speed (and
# the knobs no run changes live, but threads and grid_size); every other knob is a per-run value
STACK = SPACE.stack
VaeConfig: Any = SPACE.config
coerce = SPACE.coerce
make_config = SPACE.make_config
validate_changes = SPACE.validate_changes
stack_key = SPACE.stack_key
structure_diff = SPACE.structure_diff
