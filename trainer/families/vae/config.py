"""A vae run's configuration: the run's own knobs (data, schedule) and the VAE's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.families.vae.knobs import VAE
from collapse_lab.trainer.knobs import ConfigError, Knob
from collapse_lab.trainer.run_knobs import DATA, RUN

_RUN_KNOBS = {**DATA, **RUN}  # the knobs every family's run has (trainer/run_knobs.py)

_RUN = ("speed", "seed")
# grid_size is a knob of every run (sweeps set it); a VAE draws no landscape and ignores it
_REST = ("grid_size", "device", "threads")
_DATASET = dataclasses.replace(_RUN_KNOBS["dataset"], default="digits", choices=("digits",),
                               help="images to learn: scikit-learn's 8×8 handwritten digits")
_STEPS = dataclasses.replace(_RUN_KNOBS["steps"], default=3000,
                             help="steps (minibatch updates) to train; 0 = until stopped")
_TICK = dataclasses.replace(_RUN_KNOBS["tick_every"], default=10)

KNOBS: dict[str, Knob] = {k.name: k for k in (
    _DATASET, *VAE, _STEPS, *(_RUN_KNOBS[n] for n in _RUN), _TICK,
    *(_RUN_KNOBS[n] for n in _REST))}
LIVE = frozenset(n for n, k in KNOBS.items() if k.live)
# what fixes the shape of a stacked step (everything else is a per-run value)
STACK = ("dataset", "latent", "encoder_width", "decoder_width", "decoder_layers",
         "batch_size", "device", "speed")

_PY = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}
FAMILY = "vae"  # every vae config's `family` (trainer/families/__init__.py)


def _field(k: Knob) -> tuple[str, Any, Any]:
    return (k.name, _PY[k.type] | None if k.nullable else _PY[k.type],
            dataclasses.field(default=k.default))


VaeConfig: Any = dataclasses.make_dataclass(
    "VaeConfig",
    [_field(k) for k in KNOBS.values()],
    namespace=dict(to_dict=lambda self: dict(family=FAMILY, **dataclasses.asdict(self)),
                   replace=lambda self, **kw: dataclasses.replace(self, **kw),
                   family=FAMILY,
                   __doc__="Every knob of a vae run, with its default."),
)
VaeConfig.__module__ = __name__


def coerce(name: str, value: Any) -> Any:
    if name not in KNOBS:
        raise ConfigError(name, f"unknown knob; expected one of {', '.join(KNOBS)}")
    return KNOBS[name].coerce(value)


def _own(values: Any) -> dict[str, Any]:
    """The values without `family`, which must be this family's when present."""
    values = dict(values or {})
    fam = values.pop("family", FAMILY)
    if fam != FAMILY:
        raise ConfigError("family", f"expected {FAMILY!r} for a vae config, got "
                          f"{str(fam)[:40]!r}")
    return values


def make_config(values: Any = None) -> Any:
    return VaeConfig(**{k: coerce(k, v) for k, v in _own(values).items()})


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
    return out


def stack_key(cfg: Any) -> tuple:
    return tuple((n, getattr(cfg, n)) for n in STACK)


def structure_diff(old: Any, new: Any) -> list[str]:
    """The knobs whose change moves a run out of its stack."""
    return [n for n in STACK if getattr(old, n) != getattr(new, n)]
