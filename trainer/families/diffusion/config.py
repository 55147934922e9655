"""A diffusion run's configuration: the run's own knobs (data, schedule) and the model's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.data import DATA_KNOBS
from collapse_lab.trainer.families.diffusion.knobs import DIFF
from collapse_lab.trainer.knobs import ConfigError, Knob, KnobSet
from collapse_lab.trainer.run_knobs import DATA, RUN, check_data, fill_data

_RUN_KNOBS = {**DATA, **RUN}  # the knobs every family's run has (trainer/run_knobs.py)

_RUN = ("speed", "seed")
_REST = ("grid_size", "device", "threads")
_STEPS = dataclasses.replace(_RUN_KNOBS["steps"], default=4000,
                             help="training steps; 0 = until stopped")
_TICK = dataclasses.replace(_RUN_KNOBS["tick_every"], default=100,
                            help="training steps between ticks (each tick samples)")
_DATASET = dataclasses.replace(
    _RUN_KNOBS["dataset"], default="circle",
    choices=tuple(c for c in (_RUN_KNOBS["dataset"].choices or ()) if c != "digits"),
    help="2-D distribution the training points are drawn from (memorisation shows on spread "
         "data: circle, spiral, lines)")

FAMILY = "diffusion"  # every diffusion config's `family` (trainer/families/__init__.py)


def check_sampling(cfg: Any) -> None:
    if cfg.sample_steps > cfg.noise_levels:
        raise ConfigError("sample_steps", f"at most noise_levels ({cfg.noise_levels}), got "
                          f"{cfg.sample_steps}")


SPACE = KnobSet(
    FAMILY, (_DATASET, *(_RUN_KNOBS[n] for n in DATA_KNOBS[1:]), *DIFF, _STEPS,
             *(_RUN_KNOBS[n] for n in _RUN), _TICK, *(_RUN_KNOBS[n] for n in _REST)),
    module=__name__, name="DiffConfig", doc="Every knob of a diffusion run, with its default.",
    checks=(check_data, check_sampling), fill=fill_data)

KNOBS: dict[str, Knob] = SPACE.knobs
LIVE = SPACE.live
# what fixes the shape of a stacked step: the data, the network, the noise levels, the batch,
# the samples, the grid, the device and the speed; every other knob is per run
STACK = SPACE.stack
DiffConfig: Any = SPACE.config
coerce = SPACE.coerce
check = SPACE.check
make_config = SPACE.make_config
validate_changes = SPACE.validate_changes
stack_key = SPACE.stack_key
structure_diff = SPACE.structure_diff
