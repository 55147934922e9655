"""The live path's values: commands to a run and the events it answers with, typed.

A command is made once, where it enters (the HTTP/websocket door through the server's
supervisor, the CLI, a lesson, a test): `families.parse_command(body, cfg)` checks a control
body against the run's config — a `set` through its family's `validate_changes`, an action's
fields against their ranges — and returns a value the worker, the driver and the engine trust as
it is. Nothing behind the door validates a change again.

Events go the other way (engine → driver → worker → server → viewers) as typed values too;
`Event.to_dict()` is the wire form (docs/protocol.md: `config`, `state`, `rejected`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from collapse_lab.trainer.knobs import ConfigError

PARTS = ("both", "d", "g")  # every family's single-step parts are among these
MAX_STEPS = 10_000  # single steps one `step` command may ask for


@dataclass(frozen=True)
class Pause:
    reason: str = ""  # why, when the worker pauses a run itself (e.g. "disk full: ...")
    action: Literal["pause"] = "pause"


@dataclass(frozen=True)
class Resume:
    action: Literal["resume"] = "resume"


@dataclass(frozen=True)
class Stop:
    action: Literal["stop"] = "stop"


@dataclass(frozen=True)
class Step:
    """Single steps of a paused run: `n` of them, each a whole step or one part of it."""

    n: int = 1
    part: str = "both"
    action: Literal["step"] = "step"


@dataclass(frozen=True)
class Set:
    """A live change, already validated against the run's config (`parse`): knob -> value."""

    changes: Mapping[str, Any] = field(default_factory=dict)


Command = Pause | Resume | Stop | Step | Set
ACTIONS: dict[str, type] = {"pause": Pause, "resume": Resume, "stop": Stop, "step": Step}


def body(cmd: Command) -> dict[str, Any]:
    """The control body a command was parsed from (the HTTP shape, for replies and logs)."""
    if isinstance(cmd, Set):
        return {"set": dict(cmd.changes)}
    return {k: v for k, v in asdict(cmd).items() if not (k == "reason" and not v)}


def action(name: str, n: Any = 1, part: Any = "both",
           parts: tuple[str, ...] = PARTS) -> Command:
    """An action command; ConfigError naming the field when a value is out of range."""
    kind = ACTIONS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ConfigError("action", f"expected one of {', '.join(ACTIONS)}, got {name!r}"[:200])
    if kind is not Step:
        if part != "both":
            raise ConfigError("part", f"part {part!r} goes with action step only, not "
                              f"{name!r}"[:200])
        return kind()
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS:
        raise ConfigError("n", f"expected an integer in [1, {MAX_STEPS}], got {n!r}"[:200])
    if part not in parts:
        raise ConfigError("part", f"expected one of {', '.join(parts)}, got {part!r}"[:200])
    return Step(n=n, part=part)


# ---------------------------------------------------------------------- events
@dataclass(frozen=True)
class ConfigChanged:
    """A live change took effect before `step`: the run's config version is now `version`."""

    step: int
    version: int
    changes: dict[str, Any]
    config: dict[str, Any]
    type: Literal["config"] = "config"


@dataclass(frozen=True)
class StateChanged:
    """The run paused or went on at `step`."""

    state: str  # "paused" | "running"
    step: int
    reason: str = ""  # why the worker paused it, when it did
    type: Literal["state"] = "state"


@dataclass(frozen=True)
class Rejected:
    """A command the run could not take at `step` (nothing was applied)."""

    field: str
    message: str
    step: int
    config: dict[str, Any] | None = None
    type: Literal["rejected"] = "rejected"


Event = ConfigChanged | StateChanged | Rejected


def to_dict(event: Event) -> dict[str, Any]:
    """The wire form of an event (docs/protocol.md), `type` first."""
    d = asdict(event)
    out = {"type": d.pop("type")}
    out.update((k, v) for k, v in d.items()
               if not (k == "config" and v is None) and not (k == "reason" and not v))
    return out
