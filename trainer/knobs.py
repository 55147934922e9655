"""A knob: one thing a user can set, with its type, default, range and help — and the checks;
and `KnobSet`, everything a family's config is that follows from its knobs alone.

Knobs are declared where they belong (the run's data, networks, optimizer and schedule in
trainer/families/gan/config.py; a remedy's in its class in trainer/families/gan/remedies.py; an
objective's in its class in
trainer/families/gan/objectives.py) and assembled into one `RunConfig` by
trainer/families/gan/config.py. The CLI flags,
`/api/options`, the API's request models and the dashboard's controls are generated from them.

This module depends on nothing else in the project, so every module may import it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A bad knob value. `field` names the knob; the message says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Knob:
    name: str
    type: str  # "int" | "float" | "bool" | "str" | "choice"
    default: Any
    help: str
    group: str  # data | model | objective | remedy | optim | run: how the UI groups controls
    live: bool = False  # may change while the run trains (applied at the next step boundary)
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    log: bool = False  # a slider over decades
    nullable: bool = False
    # the step's shape depends on it: runs that differ in it cannot share one stacked step
    structural: bool = False
    # the stacked step never reads it (a process-wide setting such as `threads`, or a knob the
    # family ignores): runs that differ in it may still share one stack, live or not
    outside_step: bool = False
    # a main control: the panel shows it in its group's main section (data, optimisation), not
    # under "More settings" (frontend/js/controls.js)
    main: bool = False
    # how people see it: `label` names its control ("G learning rate"); `short` names it in a
    # legend, a chart marker or a title ("lr_g 2e-4, β1 0.5"). Unset: derived from the name.
    label: str = ""
    short: str = ""

    @property
    def words(self) -> str:
        """The control's label: `label`, or the name in words ("tick every")."""
        return self.label or self.name.replace("_", " ")

    def describe(self) -> dict[str, Any]:
        """JSON-able: name, label, short, type, default, help, group, live, main, nullable, and
        range or choices."""
        d: dict[str, Any] = dict(name=self.name, label=self.words, short=self.short or self.name,
                                 type=self.type, default=self.default,
                                 help=self.help, group=self.group, live=self.live,
                                 main=self.main, nullable=self.nullable)
        if self.choices:
            d["choices"] = list(self.choices)
        if self.lo is not None:
            d["min"], d["max"], d["log"] = self.lo, self.hi, self.log
        return d

    def allowed(self) -> str:
        """Human text of what the knob accepts, for error messages."""
        if self.choices:
            s = "one of " + ", ".join(self.choices)
        elif self.type == "bool":
            s = "true or false"
        elif self.lo is not None:
            kind = "an integer" if self.type == "int" else "a number"
            s = f"{kind} in [{self.lo:g}, {self.hi:g}]"
        else:
            s = "a string"
        return s + (" or null" if self.nullable else "")

    def coerce(self, value: Any) -> Any:
        """Check and convert one value; raise ConfigError naming the knob and the range."""
        if value is None:
            if self.nullable:
                return None
            raise ConfigError(self.name, f"expected {self.allowed()}, got null")
        bad = ConfigError(self.name, f"expected {self.allowed()}, got {_show(value)}")
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            if isinstance(value, str) and value.lower() in _BOOL_WORDS:
                return _BOOL_WORDS[value.lower()]
            raise bad
        if self.type in ("choice", "str"):
            if not isinstance(value, str) or len(value) > 4096:
                raise bad
            if self.choices and value not in self.choices:
                raise bad
            return value
        # numbers: accept numeric strings (CLI, CSV sweeps) but never bools
        if isinstance(value, bool):
            raise bad
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        if self.type == "int":
            if float(value) != int(value):
                raise bad
            value = int(value)
        else:
            value = float(value)
        assert self.lo is not None and self.hi is not None
        if not (self.lo <= value <= self.hi):
            raise bad
        return value


class KnobSet:
    """A family's knobs as one set, and what follows from them alone: the config class (one field
    per knob, with its default), checking a whole config or a change to one (live or not), and
    which runs may share one stacked step. A family adds only what is truly its own: `checks`
    of combinations (each raises ConfigError naming the field) and `fill`, values completed
    before they are checked (e.g. trainer/run_knobs.py: `fill_data`).

    A stack is the runs one engine steps together: they may differ in their seed, in every live
    knob that is a value, not a shape (`structural`), and in every knob the step never reads
    (`outside_step`); every other knob is the stack's.
    """

    def __init__(self, family: str, knobs: Iterable[Knob], *, module: str, name: str, doc: str,
                 checks: Iterable[Callable[[Any], None]] = (),
                 fill: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 namespace: Mapping[str, Any] | None = None):
        self.family = family
        self.knobs: dict[str, Knob] = {k.name: k for k in knobs}
        self.live = frozenset(n for n, k in self.knobs.items() if k.live)
        per_run = ({"seed"} | {n for n in self.live if not self.knobs[n].structural}
                   | {n for n, k in self.knobs.items() if k.outside_step})
        self.stack = tuple(n for n in self.knobs if n not in per_run)
        self.checks = tuple(checks)
        self.fill = fill
        fam = family

        def to_dict(cfg: Any) -> dict[str, Any]:
            return dict(family=fam, **dataclasses.asdict(cfg))

        def replace(cfg: Any, **changes: Any) -> Any:
            return dataclasses.replace(cfg, **changes)

        self.config: Any = dataclasses.make_dataclass(
            name,
            [(k.name, _PY_TYPES[k.type] | None if k.nullable else _PY_TYPES[k.type],
              dataclasses.field(default=k.default)) for k in self.knobs.values()],
            namespace=dict(to_dict=to_dict, replace=replace, family=family, __doc__=doc,
                           **(namespace or {})),
        )
        self.config.__module__ = module  # where pickle finds it: the family's config module

    def describe(self) -> list[dict[str, Any]]:
        """Every knob as a plain dict (`Knob.describe`)."""
        return [k.describe() for k in self.knobs.values()]

    def coerce(self, name: str, value: Any) -> Any:
        """Check and convert one knob value; raise ConfigError naming the knob and the range."""
        if name not in self.knobs:
            raise ConfigError(name, f"unknown knob of the {self.family} family; expected one "
                              f"of {', '.join(self.knobs)}")
        return self.knobs[name].coerce(value)

    def own(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """The values without `family`, which must be this family's when present."""
        out = dict(values or {})
        fam = out.pop("family", self.family)
        if fam != self.family:
            raise ConfigError("family", f"expected {self.family!r} for a {self.family} config, "
                              f"got {str(fam)[:40]!r}")
        return out

    def check(self, cfg: Any) -> None:
        """Refuse combinations that make no sense, saying why (the family's `checks`)."""
        for check in self.checks:
            check(cfg)

    def make_config(self, values: Mapping[str, Any] | None = None) -> Any:
        """A validated config from a dict of (possibly string) values."""
        own = self.own(values)
        if self.fill is not None:
            own = self.fill(own)
        cfg = self.config(**{k: self.coerce(k, v) for k, v in own.items()})
        self.check(cfg)
        return cfg

    def validate_changes(self, cfg: Any, changes: Mapping[str, Any], *,
                         live: bool) -> dict[str, Any]:
        """Check a partial config against `cfg`. With live=True only live knobs may change.

        Returns the coerced changes; raises ConfigError on the first bad one. Combinations are
        checked on the merged config, so nothing is applied unless all of it is valid.
        """
        out = {}
        for name, value in self.own(changes).items():
            v = self.coerce(name, value)
            if live and name not in self.live and v != getattr(cfg, name):
                raise ConfigError(name, "cannot change while a run is in progress; live knobs "
                                  "are " + ", ".join(sorted(self.live)))
            out[name] = v
        self.check(cfg.replace(**out))
        return out

    def stack_key(self, cfg: Any) -> tuple:
        """Runs with equal keys can train in one stacked step: the same data and step shape."""
        return tuple((n, getattr(cfg, n)) for n in self.stack)

    def structure_diff(self, old: Any, new: Any) -> list[str]:
        """The knobs whose change moves a run out of its stack."""
        return [n for n in self.stack if getattr(old, n) != getattr(new, n)]


_PY_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}
_BOOL_WORDS = {"1": True, "true": True, "on": True, "yes": True,
               "0": False, "false": False, "off": False, "no": False}


def _show(value: Any) -> str:
    """A value in an error message: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
