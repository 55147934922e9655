"""A decoding run's configuration: the run's own knobs (data, schedule), the language model's
and the decoder's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.data import TEXT
from collapse_lab.trainer.families.decoding.knobs import DECODE, LM
from collapse_lab.trainer.knobs import ConfigError, Knob
from collapse_lab.trainer.run_knobs import DATA, RUN

_DATASET = dataclasses.replace(
    DATA["dataset"], default=TEXT[0], choices=TEXT,
    help="the language the model learns: sentence templates with set probabilities (its modes)")
_STEPS = dataclasses.replace(RUN["steps"], default=1000,
                             help="training steps of the language model; 0 = until stopped")
_TICK = dataclasses.replace(RUN["tick_every"], default=25,
                            help="training steps between ticks (each tick decodes a batch)")

KNOBS: dict[str, Knob] = {k.name: k for k in (
    _DATASET, *LM, *DECODE, _STEPS, RUN["speed"], RUN["seed"], _TICK, RUN["device"],
    RUN["threads"])}
LIVE = frozenset(n for n, k in KNOBS.items() if k.live)
# what fixes the shape of a stacked training step (everything else is a per-run value)
STACK = ("dataset", "embed", "hidden", "lm_batch", "device", "speed")

_PY = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}
FAMILY = "decoding"  # every decoding config's `family` (trainer/families/__init__.py)

DecodingConfig: Any = dataclasses.make_dataclass(
    "DecodingConfig",
    [(k.name, _PY[k.type] | None if k.nullable else _PY[k.type],
      dataclasses.field(default=k.default)) for k in KNOBS.values()],
    namespace=dict(to_dict=lambda self: dict(family=FAMILY, **dataclasses.asdict(self)),
                   replace=lambda self, **kw: dataclasses.replace(self, **kw),
                   family=FAMILY,
                   __doc__="Every knob of a decoding run, with its default."),
)
DecodingConfig.__module__ = __name__


def coerce(name: str, value: Any) -> Any:
    if name not in KNOBS:
        raise ConfigError(name, f"unknown knob for the decoding family; expected one of "
                          f"{', '.join(KNOBS)}")
    return KNOBS[name].coerce(value)


def check(cfg: Any) -> None:
    if cfg.strategy == "diverse_beam" and cfg.groups > cfg.beam_width:
        raise ConfigError("groups", f"diverse beam search splits beam_width {cfg.beam_width} "
                          f"into groups: at most {cfg.beam_width} groups, got {cfg.groups}")


def _own(values: Any) -> dict[str, Any]:
    """The values without `family`, which must be this family's when present."""
    values = dict(values or {})
    fam = values.pop("family", FAMILY)
    if fam != FAMILY:
        raise ConfigError("family", f"expected {FAMILY!r} for a decoding config, got "
                          f"{str(fam)[:40]!r}")
    return values


def make_config(values: Any = None) -> Any:
    cfg = DecodingConfig(**{k: coerce(k, v) for k, v in _own(values).items()})
    check(cfg)
    return cfg


def validate_changes(cfg: Any, changes: Any, *, live: bool) -> dict[str, Any]:
    """Check a partial config against `cfg` (with live=True only live knobs may change);
    returns the coerced changes, raises ConfigError naming the first bad knob."""
    out = {}
    for name, value in _own(changes).items():
        v = coerce(name, value)
        if live and name not in LIVE and v != getattr(cfg, name):
            raise ConfigError(name, "cannot change while a run is in progress; live knobs are "
                              + ", ".join(sorted(LIVE)))
        out[name] = v
    check(cfg.replace(**out))
    return out


def stack_key(cfg: Any) -> tuple:
    return tuple((n, getattr(cfg, n)) for n in STACK)


def structure_diff(old: Any, new: Any) -> list[str]:
    """The knobs whose change moves a run out of its stack."""
    return [n for n in STACK if getattr(old, n) != getattr(new, n)]
