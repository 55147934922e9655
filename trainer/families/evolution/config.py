"""An evolution run's configuration: the run's own knobs (data, schedule) and the GA's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.data import DATA_KNOBS
from collapse_lab.trainer.families.evolution.knobs import GA
from collapse_lab.trainer.knobs import Knob, KnobSet
from collapse_lab.trainer.run_knobs import DATA, RUN, check_data, fill_data

_RUN_KNOBS = {**DATA, **RUN}  # the knobs every family's run has (trainer/run_knobs.py)

# the run's knobs every family has, as the GAN declares them; a generation is a step
_RUN = ("speed", "seed")
_REST = ("grid_size", "device", "threads")
_STEPS = dataclasses.replace(_RUN_KNOBS["steps"], default=300,
                             help="generations to evolve; 0 = until stopped")
_TICK = dataclasses.replace(_RUN_KNOBS["tick_every"], default=2,
                            help="generations between metric ticks")
_DATASET = dataclasses.replace(
    _RUN_KNOBS["dataset"],
    choices=tuple(c for c in (_RUN_KNOBS["dataset"].choices or ()) if c != "digits"),
    help="2-D distribution whose density, broadened, is the fitness landscape")
FAMILY = "evolution"  # every evolution config's `family` (trainer/families/__init__.py)

SPACE = KnobSet(
    FAMILY, (_DATASET, *(_RUN_KNOBS[n] for n in DATA_KNOBS[1:]), *GA, _STEPS,
             *(_RUN_KNOBS[n] for n in _RUN), _TICK, *(_RUN_KNOBS[n] for n in _REST)),
    module=__name__, name="EvoConfig", doc="Every knob of an evolution run, with its default.",
    checks=(check_data,), fill=fill_data)

KNOBS: dict[str, Knob] = SPACE.knobs
LIVE = SPACE.live
# what fixes the shape of a stacked generation: the data, the population's size, the landscape's
# grid, the device and the speed; every other knob is a per-run value
STACK = SPACE.stack
EvoConfig: Any = SPACE.config
coerce = SPACE.coerce
check = SPACE.check
make_config = SPACE.make_config
validate_changes = SPACE.validate_changes
stack_key = SPACE.stack_key
structure_diff = SPACE.structure_diff
