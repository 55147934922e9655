"""Lessons: narrated sequences of steps, one JSON file each under server/lesson_files/.

A step has text in the project's words with the source of each claim, an action the teacher's
page performs when the class reaches the step (start a preset, change knobs on the running run,
open a comparison, open the replay at a step), what to look at (charts to highlight) and, where
it states an outcome, the statistic the page measures on the run shown beside it. The schema is
the pydantic model below; `check_lesson` walks a lesson the way the page does and runs every
config through the trainer's registry, so a lesson can only ship configs the trainer takes.

Measured figures do not live in the texts: a text names them, `{{live_switch.wgan-gp-ring8.met}}`,
and they are filled in from one data file, `lesson_facts.json`, when the lessons load (a name the
file lacks refuses the lesson). tests/test_lessons.py checks that file against the calibration
table (docs/presets.csv).

- `GET /api/lessons` — every lesson: name, title, summary, minutes, steps.
- `GET /api/lessons/{name}` — one lesson, whole.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path as FsPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collapse_lab.server.models import ErrorOut
from collapse_lab.trainer.families import validate_changes
from collapse_lab.trainer.knobs import ConfigError
from collapse_lab.trainer.registry import SCALAR_NAMES, from_preset

router = APIRouter(prefix="/api/lessons", tags=["lessons"])
Knobs = Annotated[dict[str, Any], Field(max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Look = Literal["samples", "occupancy", "occupancy-time", "losses", "modes", "cards", "compare",
               "panels"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartAction(_Strict):
    """Start a run (it becomes the lesson's run) and show it live."""

    type: Literal["start"]
    preset: str | None = Field(None, max_length=64)
    set: Knobs = Field(default_factory=dict, description="knobs over the preset")


class ChangeAction(_Strict):
    """Change live knobs of the lesson's run, as one change (a marker on the charts)."""

    type: Literal["change"]
    set: Knobs = Field(..., min_length=1)


class CompareAction(_Strict):
    """Start a compare group (same data, same seed) and show it."""

    type: Literal["compare"]
    base: Knobs = Field(default_factory=dict, description="shared config: {preset?, knobs…}")
    variants: list[Knobs] = Field(..., min_length=2, max_length=8)
    label: str | None = Field(None, max_length=200)


class ReplayAction(_Strict):
    """Stop the lesson's run and open its replay at the recorded frame nearest `step`."""

    type: Literal["replay"]
    step: int = Field(..., ge=0, le=1_000_000)


class NoAction(_Strict):
    type: Literal["none"] = "none"


Action = Annotated[StartAction | ChangeAction | CompareAction | ReplayAction | NoAction,
                   Field(discriminator="type")]


class Outcome(_Strict):
    """An outcome the step states: the page shows the run's own value of `stat` beside `claim`
    (for a comparison, each run's)."""

    stat: str = Field(..., pattern=r"^[a-z_]{1,40}$", description="a tick statistic "
                      "(GET /api/options, stats), e.g. modes_covered")
    claim: str = Field(..., min_length=1, max_length=300,
                       description="what was measured over seeds, to read beside this run's value")
    since: Literal["start", "change"] = Field("start", description="count steps from the run's "
                                              "start or from its latest live change")


class Step(_Strict):
    title: str = Field(..., min_length=1, max_length=80)
    text: str = Field(..., min_length=1, max_length=1500,
                      description="what to say, in plain text; a blank line starts a paragraph")
    sources: list[Text] = Field(..., min_length=1, max_length=6,
                                description="where each claim comes from")
    action: Action = Field(default_factory=NoAction)
    look: list[Look] = Field(default_factory=list, max_length=3,
                             description="the charts to highlight")
    outcome: Outcome | None = None


class Lesson(_Strict):
    name: str = Field(..., pattern=r"^[a-z0-9-]{1,64}$")
    title: str = Field(..., min_length=1, max_length=80)
    summary: str = Field(..., min_length=1, max_length=400)
    order: int = Field(..., ge=1, le=99, description="its place in the lesson list")
    minutes: int = Field(..., ge=1, le=90, description="about how long it takes in class")
    steps: list[Step] = Field(..., min_length=2, max_length=30)


class LessonError(ValueError):
    """A lesson file that does not validate, or whose configs the trainer refuses."""


MAX_LESSON_STEPS = 50_000  # a lesson's run is as long as its steps need, never endless
FACTS_FILE = "lesson_facts.json"
# the real folder of this file, never a strict editable install's link tree, which holds only the
# files present at install (docs/architecture.md, "Type checking and editors")
HERE = FsPath(__file__).resolve().parent
_FACT = re.compile(r"\{\{([A-Za-z0-9_.-]{1,120})\}\}")


@lru_cache(maxsize=1)
def load_facts() -> dict[str, Any]:
    """The measured figures the lesson texts name (server/lesson_facts.json)."""
    data: dict[str, Any] = json.loads(
        (HERE / FACTS_FILE).read_text(encoding="utf-8"))
    return data


def fact(name: str, facts: dict[str, Any] | None = None) -> Any:
    """The figure `a.b.c` of the facts file; LessonError when there is none."""
    node: Any = load_facts() if facts is None else facts
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise LessonError(f"no figure {name!r} in {FACTS_FILE}")
        node = node[part]
    if isinstance(node, dict | list):
        raise LessonError(f"{name!r} in {FACTS_FILE} is a table, not a figure")
    return node


def fact_text(v: Any) -> str:
    """A figure as a text says it: 6000 → "6,000", 2.5 → "2.5", 3.0 → "3"."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,}"
    return f"{int(v):,}"


def fill_facts(text: str, facts: dict[str, Any] | None = None) -> str:
    """`text` with every `{{name}}` replaced by its figure."""
    out = _FACT.sub(lambda m: fact_text(fact(m.group(1), facts)), text)
    if "{{" in out:
        bad = out[out.index("{{"):][:60]
        raise LessonError(f"{bad!r} names no figure: {{{{name}}}} of letters, digits, '.', "
                          f"'-' and '_'")
    return out


def _fill(raw: Any, facts: dict[str, Any] | None = None) -> Any:
    """Every string of a lesson's JSON with its figures filled in."""
    if isinstance(raw, str):
        return fill_facts(raw, facts)
    if isinstance(raw, list):
        return [_fill(x, facts) for x in raw]
    if isinstance(raw, dict):
        return {k: _fill(v, facts) for k, v in raw.items()}
    return raw


def check_lesson(lesson: Lesson) -> None:
    """Walk the steps as the page does; every config must pass the trainer's registry."""
    from collapse_lab.server.api_compare import build_config

    cfg: Any = None
    for i, step in enumerate(lesson.steps, 1):
        a = step.action
        where = f"lesson {lesson.name}, step {i} ({step.title})"
        if step.outcome is not None and step.outcome.stat not in SCALAR_NAMES:
            raise LessonError(f"{where}: outcome.stat: no statistic {step.outcome.stat!r}; "
                              f"one of {', '.join(SCALAR_NAMES)}")
        try:
            if isinstance(a, StartAction):
                cfg = from_preset(a.preset, a.set)
            elif isinstance(a, ChangeAction):
                if cfg is None:
                    raise LessonError(f"{where}: a change needs a run started by an earlier step")
                cfg = cfg.replace(**validate_changes(cfg, a.set, live=True))
            elif isinstance(a, CompareAction):
                for j, v in enumerate(a.variants):
                    build_config(a.base, v, f"variants[{j}]")
                cfg = None  # a comparison has no single run to change
            elif isinstance(a, ReplayAction) and cfg is None:
                raise LessonError(f"{where}: a replay needs a run started by an earlier step")
        except ConfigError as e:
            raise LessonError(f"{where}: {e}") from None
        if isinstance(a, StartAction | CompareAction):
            steps = (a.set if isinstance(a, StartAction) else a.base).get("steps")
            if not isinstance(steps, int) or not 1 <= steps <= MAX_LESSON_STEPS:
                raise LessonError(f"{where}: steps: a lesson's run trains as long as its steps "
                                  f"need and then ends: an integer in [1, "
                                  f"{MAX_LESSON_STEPS:,}], got {steps!r}")


def lesson_dir() -> FsPath:
    return HERE / "lesson_files"


def parse_lesson(text: str, name: str, facts: dict[str, Any] | None = None) -> Lesson:
    """A lesson file, its figures filled in from the facts file (or `facts`), validated."""
    try:
        lesson = Lesson.model_validate(_fill(json.loads(text), facts))
    except (ValueError, ValidationError) as e:  # a LessonError too: a figure it lacks
        raise LessonError(f"{name}: {e}") from None
    if f"{lesson.name}.json" != name:
        raise LessonError(f"{name}: its name is {lesson.name!r}; the file must be "
                          f"{lesson.name}.json")
    check_lesson(lesson)
    return lesson


@lru_cache(maxsize=1)
def load_lessons() -> dict[str, Lesson]:
    """Every shipped lesson, validated, by name, in their `order`."""
    found = [parse_lesson(e.read_text(encoding="utf-8"), e.name)
             for e in lesson_dir().iterdir() if e.name.endswith(".json")]
    return {x.name: x for x in sorted(found, key=lambda x: (x.order, x.name))}


class LessonSummary(BaseModel):
    name: str
    title: str
    summary: str
    minutes: int
    steps: int


@router.get("", response_model=list[LessonSummary])
async def list_lessons() -> list[LessonSummary]:
    return [LessonSummary(name=x.name, title=x.title, summary=x.summary, minutes=x.minutes,
                          steps=len(x.steps)) for x in load_lessons().values()]


@router.get("/{name}", response_model=Lesson, responses={404: {"model": ErrorOut}})
async def read_lesson(name: str = Path(pattern=r"^[a-z0-9-]{1,64}$")) -> Lesson:
    lesson = load_lessons().get(name)
    if lesson is None:
        raise HTTPException(404, f"no lesson {name!r}; GET /api/lessons lists them")
    return lesson
