"""A decoding run's configuration: the run's own knobs (data, schedule), the language model's
and the decoder's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.data import TEXT
from collapse_lab.trainer.families.decoding.knobs import DECODE, LM
from collapse_lab.trainer.knobs import ConfigError, Knob, KnobSet
from collapse_lab.trainer.run_knobs import DATA, RUN

_DATASET = dataclasses.replace(
    DATA["dataset"], default=TEXT[0], choices=TEXT,
    help="the language the model learns: sentence templates with set probabilities (its modes)")
_STEPS = dataclasses.replace(RUN["steps"], default=1000,
                             help="training steps of the language model; 0 = until stopped")
_TICK = dataclasses.replace(RUN["tick_every"], default=25,
                            help="training steps between ticks (each tick decodes a batch)")

FAMILY = "decoding"  # every decoding config's `family` (trainer/families/__init__.py)


def check_groups(cfg: Any) -> None:
    if cfg.strategy == "diverse_beam" and cfg.groups > cfg.beam_width:
        raise ConfigError("groups", f"diverse beam search splits beam_width {cfg.beam_width} "
                          f"into groups: at most {cfg.beam_width} groups, got {cfg.groups}")


# text data: no data file or scale, so none of the data knobs' rules
SPACE = KnobSet(
    FAMILY, (_DATASET, *LM, *DECODE, _STEPS, RUN["speed"], RUN["seed"], _TICK, RUN["device"],
             RUN["threads"]),
    module=__name__, name="DecodingConfig", doc="Every knob of a decoding run, with its default.",
    checks=(check_groups,))

KNOBS: dict[str, Knob] = SPACE.knobs
LIVE = SPACE.live
# what fixes the shape of a stacked training step: the text, the model's sizes, its batch, the
# device and the speed; every other knob is a per-run value (threads among them)
STACK = SPACE.stack
DecodingConfig: Any = SPACE.config
coerce = SPACE.coerce
check = SPACE.check
make_config = SPACE.make_config
validate_changes = SPACE.validate_changes
stack_key = SPACE.stack_key
structure_diff = SPACE.structure_diff
