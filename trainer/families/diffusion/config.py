"""A diffusion run's configuration: the run's own knobs (data, schedule) and the model's."""

from __future__ import annotations

import dataclasses
from typing import Any

from collapse_lab.trainer.data import DATA_KNOBS, SCALABLE
from collapse_lab.trainer.families.diffusion.knobs import DIFF
from collapse_lab.trainer.knobs import ConfigError, Knob
from collapse_lab.trainer.run_knobs import DATA, RUN

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

KNOBS: dict[str, Knob] = {k.name: k for k in (
    _DATASET, *(_RUN_KNOBS[n] for n in DATA_KNOBS[1:]), *DIFF, _STEPS,
    *(_RUN_KNOBS[n] for n in _RUN), _TICK, *(_RUN_KNOBS[n] for n in _REST))}
LIVE = frozenset(n for n, k in KNOBS.items() if k.live)
# what fixes the shape of a stacked step (everything else is a per-run value)
STACK = (*DATA_KNOBS, "width", "depth", "noise_levels", "batch", "samples", "grid_size",
         "device", "speed")

_PY = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}
FAMILY = "diffusion"  # every diffusion config's `family` (trainer/families/__init__.py)

DiffConfig: Any = dataclasses.make_dataclass(
    "DiffConfig",
    [(k.name, _PY[k.type] | None if k.nullable else _PY[k.type],
      dataclasses.field(default=k.default)) for k in KNOBS.values()],
    namespace=dict(to_dict=lambda self: dict(family=FAMILY, **dataclasses.asdict(self)),
                   replace=lambda self, **kw: dataclasses.replace(self, **kw),
                   family=FAMILY,
                   __doc__="Every knob of a diffusion run, with its default."),
)
DiffConfig.__module__ = __name__


def coerce(name: str, value: Any) -> Any:
    if name not in KNOBS:
        raise ConfigError(name, f"unknown knob; expected one of {', '.join(KNOBS)}")
    return KNOBS[name].coerce(value)


def check(cfg: Any) -> None:
    if cfg.dataset == "csv" and not cfg.data:
        raise ConfigError("data", "dataset csv needs a file: --data points.csv")
    if cfg.dataset != "csv" and cfg.data:
        raise ConfigError("dataset", "a data file was given; use dataset csv with it")
    if cfg.data_scale != 1.0 and cfg.dataset not in SCALABLE:
        raise ConfigError("data_scale", "scales the Gaussian mixtures only ("
                          + ", ".join(SCALABLE) + f"); dataset {cfg.dataset} needs 1")
    if cfg.sample_steps > cfg.noise_levels:
        raise ConfigError("sample_steps", f"at most noise_levels ({cfg.noise_levels}), got "
                          f"{cfg.sample_steps}")


def _own(values: Any) -> dict[str, Any]:
    """The values without `family`, which must be this family's when present."""
    values = dict(values or {})
    fam = values.pop("family", FAMILY)
    if fam != FAMILY:
        raise ConfigError("family", f"expected {FAMILY!r} for a diffusion config, got "
                          f"{str(fam)[:40]!r}")
    return values


def make_config(values: Any = None) -> Any:
    values = _own(values)
    if values.get("data") and "dataset" not in values:
        values["dataset"] = "csv"
    cfg = DiffConfig(**{k: coerce(k, v) for k, v in values.items()})
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
