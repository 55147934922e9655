"""Pydantic models of every HTTP and websocket message (the OpenAPI docs at /docs come from here).

Run configs are checked by the trainer's registry (each family's `KnobSet`, trainer/knobs.py), so
the API, the CLI and the UI share one set of rules and messages; the request model only describes
the knobs (type, range, help) for the docs and refuses unknown keys and oversized values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from collapse_lab.server.runs import RunState
from collapse_lab.trainer.registry import PRESETS, knobs

Id = Annotated[str, Field(pattern=r"^[a-z0-9]{1,32}$", description="a run or group id")]
Label = Annotated[str | None, Field(None, max_length=200, description="a name shown in the UI")]

_JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string",
               "choice": "string"}
# knobs a compare variant may not set: the runs of a group share them (server/api_compare.py)
SHARED = ("dataset", "data", "seed")


def _whole(v: Any) -> Any:
    return int(v) if isinstance(v, float) and v.is_integer() and abs(v) < 2**53 else v


def _knob_type(k: dict[str, Any]) -> Any:
    """The JSON type of one knob, strict: the API takes numbers as numbers and booleans as
    booleans (the CLI's strings go through `KnobSet.coerce`, trainer/knobs.py, instead)."""
    t = k["type"]
    rng: dict[str, Any] = dict(ge=k["min"], le=k["max"]) if "min" in k else {}
    typ: Any
    if t == "choice":
        typ = Literal[tuple(k["choices"])]
    elif t == "bool":
        typ = StrictBool
    elif t == "int":  # JSON Schema counts 3.0 as an integer, and so does the API
        typ = Annotated[StrictInt, BeforeValidator(_whole), Field(**rng)]
    elif t == "float":
        typ = Annotated[float, Field(strict=True, allow_inf_nan=False, **rng)]
    else:
        typ = Annotated[str, Field(min_length=1, max_length=4096)]
    return typ | None if k["nullable"] else typ


def _knob_fields(exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in knobs():
        if k["name"] in exclude:
            continue
        desc = k["help"] + (" (live: may change mid-run)" if k["live"] else "")
        out[k["name"]] = (_knob_type(k), Field(None, description=desc))
    return out


_STRICT = ConfigDict(extra="forbid")


class StrictIn(BaseModel):
    """A request body: unknown keys refused (the first one named), values bounded."""

    model_config = _STRICT

    @model_validator(mode="before")
    @classmethod
    def _one_unknown(cls, data: Any) -> Any:
        """Keep at most one unknown key for pydantic to report: 6,000 unknown keys would cost
        6,000 error objects, tens of milliseconds on the event loop, to say the same thing."""
        if isinstance(data, dict) and len(data) > 1:
            names = cls.model_fields.keys()
            unknown = [k for k in data if k not in names]
            if len(unknown) > 1:
                data = {k: v for k, v in data.items() if k in names or k == unknown[0]}
        return data


RunCreate = create_model(
    "RunCreate",
    __base__=StrictIn,
    preset=(Literal[tuple(PRESETS)] | None,  # type: ignore[misc,arg-type]
            Field(None, description="a named starting configuration; other fields override "
                  "it")),
    label=(str | None, Field(None, max_length=200, description="a name shown in the UI")),
    **_knob_fields(),
)
KnobsIn = create_model("KnobsIn", __base__=StrictIn, **_knob_fields())
VariantIn = create_model("VariantIn", __base__=StrictIn, **_knob_fields(SHARED))


def given(body: BaseModel) -> dict[str, Any]:
    """The fields a request actually gave, as plain values (an explicit null counts)."""
    return body.model_dump(exclude_unset=True)


def knob_values(body: BaseModel) -> dict[str, Any]:
    """The knobs a request actually gave (an explicit null counts: it unsets `gp`)."""
    return {k: getattr(body, k) for k in body.model_fields_set if k not in ("preset", "label")}


# ---------------------------------------------------------------------- control
class ActionIn(StrictIn):
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


class SetIn(StrictIn):
    set: KnobsIn = Field(..., json_schema_extra={"minProperties": 1},  # type: ignore[valid-type]
                         description="knobs to change: live knobs at the next step boundary "
                         "(any knob while the run is queued)")

    @field_validator("set")
    @classmethod
    def _not_empty(cls, v: BaseModel) -> BaseModel:
        if not v.model_fields_set:
            raise ValueError("expected at least one knob")
        return v


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
    owner: Literal["teacher", "student"] | None = Field(
        None, description="who started it: the teacher, a student, or none (a script, a compare "
        "group, or a run older than owners); a student's id is never shown")
    owner_name: str | None = Field(None, description="the student's display name, if given")
    mine: bool = Field(False, description="this browser started it (and may steer it)")
    queue_position: int | None = Field(None, ge=1, description="a queued run: its place in the "
                                       "queue (1: it starts next)")
    wait_s: float | None = Field(None, ge=0, description="a queued run: about how many seconds "
                                 "until a worker is free for it, from the steps the runs ahead "
                                 "have left and their speed; null when a run ahead trains until "
                                 "stopped")


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
    next: int | None = Field(None, description="where `limit` cut the series: the `since` "
                             "that gets the following page; null at its end")


# ---------------------------------------------------------------------- compare groups
class CompareIn(StrictIn):
    base: RunCreate = Field(default_factory=RunCreate,  # type: ignore[valid-type]
                            description="shared config: {preset?, knobs...}")
    variants: list[VariantIn] = Field(..., min_length=2, max_length=8,  # type: ignore[valid-type]
                                      description="per run, the knobs that differ from base "
                                      "(not dataset, data or seed: the group shares them)")
    label: str | None = Field(None, max_length=200)


class ExtendIn(StrictIn):
    variant: VariantIn = Field(..., description="the knobs of the new run that differ "  # type: ignore[valid-type]
                               "from base")


class GroupControlIn(StrictIn):
    action: Literal["pause", "resume", "stop"]


class StopIn(StrictIn):
    """Which runs to stop: exactly one of `runs`, `group` or `all`."""

    runs: list[Id] | None = Field(None, min_length=1, max_length=64,
                                  description="these runs (a student: only their own)")
    group: str | None = Field(None, pattern=r"^g[a-z0-9]{1,31}$",
                              description="every run of this compare group (the teacher)")
    all: Literal[True] | None = Field(None, description="every active run on the server (the "
                                      "teacher)")

    @model_validator(mode="after")
    def _exactly_one(self) -> StopIn:
        given = [k for k in ("runs", "group", "all") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of runs, group or all"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class StopOut(BaseModel):
    stopped: list[str] = Field(description="runs told to stop (or stopped at once, if queued)")
    already: list[str] = Field(description="runs asked for that had ended or were stopping")


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
    disk_full: str | None = Field(None, description="while the data dir's disk is full: what "
                                  "waits (store writes are retried, runs pause), in words")


class OptionsOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    datasets: list[dict[str, Any]]
    objectives: list[dict[str, Any]]
    remedies: list[Any]
    presets: list[dict[str, Any]]
    knobs: list[dict[str, Any]]


class ErrorOut(BaseModel):
    detail: str = Field(description="what was wrong, naming the field and what is allowed")
    field: str | None = Field(None, description="the field at fault, when one is")


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorOut(ErrorOut):
    """422: a body, query or path value the server refuses (every 422 has this shape)."""

    errors: list[FieldError] = Field(default_factory=list, max_length=20,
                                     description="each refused value (at most 20)")
