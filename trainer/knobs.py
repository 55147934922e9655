"""A knob: one thing a user can set, with its type, default, range and help — and the checks.

Knobs are declared where they belong (the run's data, networks, optimizer and schedule in
trainer/families/gan/config.py; a remedy's in its class in trainer/families/gan/remedies.py; an
objective's in its class in
trainer/families/gan/objectives.py) and assembled into one `RunConfig` by
trainer/families/gan/config.py. The CLI flags,
`/api/options`, the API's request models and the dashboard's controls are generated from them.

This module depends on nothing else in the project, so every module may import it.
"""

from __future__ import annotations

import math
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
    # how people see it: `label` names its control ("G learning rate"); `short` names it in a
    # legend, a chart marker or a title ("lr_g 2e-4, β1 0.5"). Unset: derived from the name.
    label: str = ""
    short: str = ""

    @property
    def words(self) -> str:
        """The control's label: `label`, or the name in words ("tick every")."""
        return self.label or self.name.replace("_", " ")

    def describe(self) -> dict[str, Any]:
        """JSON-able: name, label, short, type, default, help, group, live, nullable, and range
        or choices."""
        d: dict[str, Any] = dict(name=self.name, label=self.words, short=self.short or self.name,
                                 type=self.type, default=self.default,
                                 help=self.help, group=self.group, live=self.live,
                                 nullable=self.nullable)
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


_BOOL_WORDS = {"1": True, "true": True, "on": True, "yes": True,
               "0": False, "false": False, "off": False, "no": False}


def _show(value: Any) -> str:
    """A value in an error message: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
