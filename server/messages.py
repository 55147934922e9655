"""The text messages a run's websocket sends (docs/protocol.md), as pydantic models.

Binary messages (frames, real samples) are server/protocol.py's; what a client sends is the
control body of server/models.py (`ControlIn`). Every message is encoded once, whatever the
number of viewers (server/fanout.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from collapse_lab.server.models import RunOut


class Hello(BaseModel):
    """Sent once, first: the run, its dataset and every config change so far."""

    type: Literal["hello"] = "hello"
    protocol: int
    run: RunOut
    dataset: dict[str, Any] | None = Field(None, description="name, kind, dim, num_modes, "
                                           "mode_names; centres and extent for 2-D data")
    value_kind: str | None = Field(None, description="how to read the value grid: probability "
                                   "(σ(D) in [0, 1]) or critic (the raw value)")
    events: list[dict[str, Any]] = Field(description="every config event so far, oldest first")


class Event(BaseModel):
    """A config change (with the step and the version it starts), a state change, or a change
    the run itself refused."""

    type: Literal["event"] = "event"
    event: dict[str, Any]


class Status(BaseModel):
    """The run's state changed (with the reason, where there is one)."""

    type: Literal["status"] = "status"
    status: str
    reason: str | None = None


class Error(BaseModel):
    """A control message this socket sent was refused; `field` names the knob at fault."""

    type: Literal["error"] = "error"
    message: str = Field(max_length=2000)
    field: str | None = None


ServerMessage = Annotated[Hello | Event | Status | Error, Field(discriminator="type")]
