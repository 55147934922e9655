"""Pydantic models of every HTTP and websocket message (the OpenAPI docs at /docs come from here).

Run configs are checked by the trainer's registry (`trainer.config.coerce`), so the API, the CLI
and the UI share one set of rules and messages; the request model only describes the knobs (type,
range, help) for the docs and refuses unknown keys and oversized values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
)

from collapse_lab.server.runs import RunState
from collapse_lab.trainer.config import knobs

Id = Annotated[str, Field(pattern=r"^[a-z0-9]{1,32}$", description="a run or group id")]
Label = Annotated[str | None, Field(None, max_length=200, description="a name shown in the UI")]
Small = Annotated[dict[str, Any], Field(max_length=64)]

_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string",
               "choice": "string"}


def _knob_fields() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in knobs():
        schema: dict[str, Any] = {"type": _JSON_TYPES[k["type"]]}
        if "min" in k:
            schema.update(minimum=k["min"], maximum=k["max"])
        if "choices" in k:
            schema["enum"] = k["choices"]
        desc = k["help"] + (" (live: may change mid-run)" if k["live"] else "")
        out[k["name"]] = (Any, Field(None, description=desc, json_schema_extra=schema))
    return out


RunCreate = create_model(
    "RunCreate",
    __config__=ConfigDict(extra="forbid"),
    preset=(str | None, Field(None, max_length=64, description="a named starting configuration; "
                              "other fields override it")),
    label=(str | None, Field(None, max_length=200, description="a name shown in the UI")),
    **_knob_fields(),
)


def knob_values(body: BaseModel) -> dict[str, Any]:
    """The knobs a request actually gave (an explicit null counts: it unsets `gp`)."""
    return {k: getattr(body, k) for k in body.model_fields_set if k not in ("preset", "label")}


# ---------------------------------------------------------------------- control
class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["pause", "resume", "stop", "step"]
    n: int = Field(1, ge=1, le=10_000, description="steps to take (action step)")
    part: Literal["d", "g", "both"] = Field(
        "both", description="action step: which network the step updates — d: one "
        "discriminator update only, g: one generator update only, both: a whole step")

    @field_validator("part")
    @classmethod
    def _part_with_step_only(cls, part: str, info: ValidationInfo) -> str:
        action = info.data.get("action")
        if part != "both" and action != "step":
            raise ValueError(f"part {part!r} goes with action step only, not {action!r}")
        return part


class SetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    set: dict[str, Any] = Field(..., min_length=1, max_length=64,
                                description="live knobs to change at the next step boundary")


def _control_kind(v: Any) -> str:
    if isinstance(v, dict):
        return "set" if "set" in v else "action"
    return "set" if isinstance(v, SetIn) else "action"


ControlIn = Annotated[Annotated[ActionIn, Tag("action")] | Annotated[SetIn, Tag("set")],
                      Discriminator(_control_kind)]


# ---------------------------------------------------------------------- viewer layers
LAYERS = ("manifold",)  # frame parts a viewer may ask for; the worker adds them while anyone does


class LayersIn(BaseModel):
    """Websocket only, from any viewer (watching needs no token): which optional frame parts
    this viewer draws. Layers left out keep their setting; every layer starts off."""

    model_config = ConfigDict(extra="forbid")

    class Layers(BaseModel):
        model_config = ConfigDict(extra="forbid")
        manifold: StrictBool | None = Field(None, description="G's image of a latent grid (frame "
                                      "flag 4, docs/protocol.md)")

    layers: Layers


class ControlOut(BaseModel):
    run_id: str
    status: RunState
    accepted: dict[str, Any] = Field(description="the coerced command sent to the run")
    applied: bool = Field(description="true when already in force; otherwise the worker applies "
                          "it at its next step boundary and an event reports it")
    from_step: int | None = Field(None, description="resume: the checkpoint step it goes on from")


# ---------------------------------------------------------------------- runs
class RunOut(BaseModel):
    id: str
    status: RunState
    reason: str | None = None
    config: dict[str, Any]
    config_version: int = Field(ge=0)
    step: int = Field(ge=0)
    group_id: str | None = None
    label: str | None = None
    created: float
    started: float | None = None
    ended: float | None = None
    checkpoint_step: int | None = None
    provenance: dict[str, Any] | None = Field(None, description="seed, device, versions, times")
    dataset: dict[str, Any] | None = None
    value_kind: str | None = None
    last: dict[str, Any] | None = Field(None, description="the latest tick's scalar metrics")
    viewers: int = 0


class RunList(BaseModel):
    runs: list[RunOut]


class Deleted(BaseModel):
    id: str
    deleted: bool = True


class HistoryOut(BaseModel):
    run_id: str
    columns: list[str] = Field(description="the CSV columns, in order")
    ticks: list[dict[str, Any]] = Field(description="one object per tick, oldest first")
    events: list[dict[str, Any]] = Field(description="config, state and rejected events")


# ---------------------------------------------------------------------- compare groups
class CompareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: Small = Field(default_factory=dict, description="shared config: {preset?, knobs...}")
    variants: list[Small] = Field(..., min_length=2, max_length=8,
                                  description="per run, the knobs that differ from base")
    label: str | None = Field(None, max_length=200)


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant: Small = Field(..., description="the knobs of the new run that differ from base")


class GroupControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["pause", "resume", "stop"]


class GroupOut(BaseModel):
    id: str
    label: str | None = None
    created: float
    base: dict[str, Any]
    varied: list[dict[str, Any]]
    runs: list[RunOut]


class GroupList(BaseModel):
    groups: list[GroupOut]


class GroupControlOut(BaseModel):
    id: str
    results: list[dict[str, Any]] = Field(description="per run: id and accepted or error")


# ---------------------------------------------------------------------- meta
class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    protocol: int
    uptime_s: float
    runs: int
    active_workers: int
    max_workers: int
    token_required: bool


class OptionsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    datasets: list[dict[str, Any]]
    objectives: list[dict[str, Any]]
    remedies: list[Any]
    presets: list[dict[str, Any]]
    knobs: list[dict[str, Any]]


class ErrorOut(BaseModel):
    detail: str = Field(description="what was wrong, naming the field and what is allowed")
    field: str | None = None
