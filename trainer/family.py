"""The family contract: what a kind of model that can collapse declares, and what the rest of
Collapse Lab knows of it (docs/families.md).

A *family* (the GAN, a genetic algorithm, ...) lives in its own folder under trainer/families/ and
is registered there with one line (trainer/families/__init__.py). It declares

- its **knobs** (trainer/knobs.py: label, help, type, range or choices, live or not, structural
  or not), from which its run config, the CLI flags, `/api/options`, the API's request model and
  the dashboard's controls are generated;
- its **datasets** (names of trainer/data.py's registry it can learn);
- its **stats**: what its step reports per run, by name, each with its label, unit, format and
  where it is shown (card, chart, CSV) — beside the tick's common stats and the mode metrics
  every 2-D family reports (trainer/stats.py);
- its **frame**: which layers a tick carries (samples always; optionally a landscape grid, arrows,
  a manifold, per-mode occupancy, family panels);
- its **presets**: named partial configs with machine-readable claims;
- how it **steps R runs at once**: an `Engine` over R run states that agree on `stack_key`, with
  `apply` (a live change at a step boundary), `step`, `tick` and `export` (one run's whole state).

The driver (trainer/loop.py), the server, the CLI, sweeps and the page use only what is here.
Nothing in this module imports a family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.knobs import ConfigError, Knob

__all__ = ["ConfigError", "Claim", "Engine", "Family", "Frame", "Knob", "PANEL_KINDS", "Panel",
           "Preset", "RunConfig", "RunState", "Stat", "SHOW", "save_atomic"]

SHOW = ("card", "chart", "csv")  # where a stat may be shown
# what a family panel may draw; each kind's value format is in docs/families.md ("Panels")
PANEL_KINDS = ("bars", "line", "heatmap", "images", "text")
CLAIM_OPS = ("at_most", "at_least")


def save_atomic(d: dict[str, Any], path: Any) -> None:
    """A run state's dict to `path` atomically: a reader sees the old file or the new one, never
    half of one (every family's `RunState.save`)."""
    from pathlib import Path

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(d, tmp)
    tmp.replace(path)


@dataclass(frozen=True)
class Stat:
    """One scalar a tick reports, by name, with everything a display needs to show it."""

    name: str
    label: str
    kind: str  # "tick" | "loss" | "term" | "norm" | "metric" | a family's own
    help: str
    # how a tick reads a step stat: the mean over the family's inner updates ("d"), its outer
    # steps ("g") since the previous tick, or the last update's value ("last")
    stage: str = ""
    integer: bool = False
    unit: str = ""  # shown after the value: "s", "%", "steps/s"; "" = a pure number
    # a Python format spec for the value ("d", ".3f", ".3g"); the page mirrors it (format.js)
    fmt: str = ".3g"
    show: tuple[str, ...] = ("chart", "csv")  # where it is shown: card, chart, csv
    color: str = ""  # the chart's line colour ("" = the page picks one)
    # a short line in plain words for a person, under the metric's card on the dashboard
    hint: str = ""
    # shown on another stat's card, under its value, rather than on a card of its own (modes
    # captured under modes covered, steps/s under step)
    under: str = ""

    def __post_init__(self) -> None:
        bad = [s for s in self.show if s not in SHOW]
        if bad:
            raise ValueError(f"stat {self.name}: show {bad} not in {SHOW}")

    def describe(self) -> dict[str, Any]:
        return dict(name=self.name, label=self.label, kind=self.kind, help=self.help,
                    integer=self.integer, unit=self.unit, format=self.fmt,
                    show=list(self.show), color=self.color, hint=self.hint, under=self.under)

    def format(self, value: float) -> str:
        """The value as the cards, the PNG labels and the tables show it: `fmt` (a `%` format
        multiplies by 100 and appends " %"), then the unit."""
        v = int(value) if self.integer else float(value)
        if self.fmt.endswith("%"):  # ".1%": 0.123 -> "12.3 %"
            return format(v * 100, self.fmt[:-1] + "f") + " %"
        text = format(v, self.fmt)
        return f"{text} {self.unit}" if self.unit else text


@dataclass(frozen=True)
class Panel:
    """A family's own picture in the frame, beside the shared ones (e.g. the GA's fitness
    histogram). `key` names the value a picture tick carries under `tick["panels"]`, in the
    format of its `kind` (docs/families.md, "Panels"); the page draws it below the samples."""

    key: str
    label: str
    kind: str  # one of PANEL_KINDS
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in PANEL_KINDS:
            raise ValueError(f"panel {self.key}: kind {self.kind!r} not in {PANEL_KINDS}")

    def describe(self) -> dict[str, Any]:
        return dict(key=self.key, label=self.label, kind=self.kind, help=self.help)


@dataclass(frozen=True)
class Frame:
    """What a family's tick carries for the picture. Samples are always there (points for 2-D
    data, images for image data); the rest is optional."""

    landscape: str = ""  # label of the grid drawn under the samples ("" = none): "D(x)", "fitness"
    arrows: str = ""  # label of the arrows field over the samples ("" = none)
    manifold: str = ""  # label of the latent manifold layer ("" = none)
    occupancy: bool = True  # per-mode occupancy bars (2-D data with modes)
    samples: str = "samples"  # what the points are: "G's samples", "population"; "" = no
    # 2-D points to draw (the page hides the samples panel; the family's panels carry the picture)
    panels: tuple[Panel, ...] = ()

    def describe(self) -> dict[str, Any]:
        return dict(samples=self.samples, landscape=self.landscape or None,
                    arrows=self.arrows or None, manifold=self.manifold or None,
                    occupancy=self.occupancy, panels=[p.describe() for p in self.panels])


@dataclass(frozen=True)
class Remedy:
    """A remedy set by the values of its family's knobs (the page's remedy panel, the client's
    summary, the tests' list): which knobs it owns (`knob_names`, looked up in `table`, the
    family's knobs by name), the values that switch it on (`typical`) and off (`off`), and its
    source. On when a run's config differs from `off` in any knob."""

    name: str
    label: str
    help: str
    source: str
    knob_names: tuple[str, ...]
    typical: dict[str, Any] = field(default_factory=dict)
    off: dict[str, Any] = field(default_factory=dict)
    structural: bool = False
    table: Mapping[str, Knob] = field(default_factory=dict, repr=False, compare=False)

    @property
    def knobs(self) -> tuple[Knob, ...]:
        return tuple(self.table[n] for n in self.knob_names)

    def is_on(self, cfg: Any) -> bool:
        return any(getattr(cfg, k) != v for k, v in self.off.items())

    def describe(self) -> dict[str, Any]:
        return dict(name=self.name, label=self.label, help=self.help, source=self.source,
                    knobs=list(self.knob_names), typical=self.typical, off=self.off,
                    structural=self.structural, kind="value", stat=None)


@dataclass(frozen=True)
class Claim:
    """A preset's calibrated claim about its final tick: `metric op value`, where `metric` is a
    key of `collapse-lab train --json`'s final metrics."""

    metric: str
    op: str  # "at_most" | "at_least"
    value: float

    def __post_init__(self) -> None:
        if self.op not in CLAIM_OPS:
            raise ValueError(f"claim op {self.op!r} not in {CLAIM_OPS}")

    def holds(self, final: Mapping[str, Any]) -> bool:
        v = float(final[self.metric])
        return v <= self.value if self.op == "at_most" else v >= self.value

    def describe(self) -> dict[str, Any]:
        return dict(metric=self.metric, op=self.op, value=self.value)


@dataclass(frozen=True)
class Preset:
    """A named partial config of one family, on top of its defaults (and optionally of another
    preset of the same family)."""

    name: str
    help: str  # what a person should see, in a sentence or two
    values: dict[str, Any] = field(default_factory=dict)
    base: str | None = None
    # the calibrated claim on the final tick: a Claim, or (metric, op, value)
    expect: Claim | tuple[str, str, float] | None = None
    # a remedy twin's control: the overrides that switch its remedy off and keep every other knob
    control: dict[str, Any] | None = None
    family: str = "gan"


class RunConfig(Protocol):
    """A family's run config: one attribute per knob, plus these. Families build theirs from
    their knobs (e.g. trainer/families/gan/config.py); every config has the common run knobs
    (seed, steps, tick_every, speed, device, threads, dataset and its data knobs)."""

    family: str
    seed: int
    steps: int
    tick_every: int
    speed: float
    device: str
    threads: int
    dataset: str

    def to_dict(self) -> dict[str, Any]: ...
    def replace(self, **changes: Any) -> Any: ...


class RunState(Protocol):
    """One run's whole state apart from any stack: what a checkpoint holds and what moves
    between engines."""

    cfg: Any
    step: int
    version: int

    def to_dict(self) -> dict[str, Any]: ...
    def save(self, path: Any) -> None: ...


class Engine(Protocol):
    """R ≥ 1 runs of one family stepped as one (the runs agree on the family's `stack_key`)."""

    runs: int
    cfgs: list[Any]
    steps: Any  # (R,) int array: each run's steps taken
    versions: list[int]
    data: Dataset
    device: torch.device

    def apply(self, i: int, changes: dict[str, Any]) -> Any:
        """A live change to run i at this step boundary, validated where it entered
        (trainer/commands.py) and applied as it is; returns a `commands.ConfigChanged`. Raises
        `Restack` when the change alters the step's shape and other runs share the engine."""
        ...

    def step(self, norms: bool = False, part: str = "both") -> None:
        """One step of every run; `norms`: a tick follows, read the last-step stats; `part`:
        one of the family's `parts` (a single step of a paused run)."""
        ...

    def tick(self, rows: Sequence[int] | None = None, pictures: Sequence[int] = (),
             manifolds: Sequence[int] = ()) -> dict[int, dict[str, Any]]:
        """One flat dict per run in `rows` (docs/metrics.md): the stats by name, `occupancy`,
        `samples`, `nearest`, `hq` and the frame's optional layers; `failed` when it diverged."""
        ...

    def export(self, i: int) -> Any:
        """Run i's whole state (a RunState), as copies."""
        ...


class Restack(Exception):
    """A change that alters the shape of the step for one run of a stack of several: the run
    must move to an engine of its own (the driver does)."""

    def __init__(self, run: int, changes: dict[str, Any]):
        super().__init__(f"run {run} changes the step's shape")
        self.run, self.changes = run, changes


@dataclass(frozen=True)
class Welcome:
    """A first visit's way in on the family's page (frontend/js/welcome.js): the headline, the
    preset to try first (one of the family's own) and what to watch when it runs."""

    headline: str
    preset: str
    hint: str

    def describe(self) -> dict[str, Any]:
        return dict(headline=self.headline, preset=self.preset, hint=self.hint)


@dataclass(frozen=True)
class Family:
    """Everything the rest of Collapse Lab knows about a family (docs/families.md)."""

    name: str  # the `family` value of a run config: "gan", "evolution"
    label: str
    help: str
    knobs: Mapping[str, Knob]
    datasets: tuple[str, ...]
    stats: tuple[Stat, ...]  # what its step reports (trainer/stats.py adds the common ones)
    frame: Frame
    presets: Callable[[], Mapping[str, Preset]]
    make_config: Callable[..., Any]  # a mapping of values (maybe strings) -> a valid config
    # (cfg, changes, live) -> the coerced changes; ConfigError naming the knob on a bad one
    validate_changes: Callable[..., dict[str, Any]]
    stack_key: Callable[[Any], tuple]  # runs with equal keys can share one engine
    structure_diff: Callable[[Any, Any], list[str]]  # knobs whose change moves a run
    fresh: Callable[[Any, Dataset], Any]  # (cfg, dataset) -> the RunState of an untrained run
    load: Callable[[dict[str, Any]], Any]  # a checkpoint's dict -> its RunState
    engine: Callable[[Sequence[Any], Dataset, torch.device], Engine]
    # a run's cost before it starts, from its knobs (memory_mb, step_ms, steps_per_sec, tick_ms,
    # heaviest, heaviest_memory, heaviest_tick, parts_ms, why, why_memory, why_tick:
    # trainer/cost.py; every family's cost.py); None = no cost model, nothing is refused
    estimate: Callable[[Any], dict[str, Any]] | None = None
    # what a frame of a run says of the picture beside the stats, for the page (the GAN: how to
    # draw D's value, `value_kind`, and the objective)
    frame_info: Callable[[Any], dict[str, Any]] = lambda cfg: {}
    parts: tuple[str, ...] = ("both",)  # what one single step of a paused run may be
    # the knob groups in the order the page shows them
    groups: tuple[str, ...] = ("data", "model", "objective", "remedy", "optim", "run")
    # the family's remedies (the page's remedy panel, the client's summary, the tests' list):
    # objects with `name`, `label`, `knobs`, `typical` (the values that switch it on), `off`,
    # `is_on(cfg)` and `describe()` (`Remedy` above; the GAN's own:
    # trainer/families/gan/remedies.py)
    remedies: tuple[Any, ...] = ()
    # the step from which the page judges a run's modes covered (green / amber / red): before
    # it a run has had no time to cover anything (a GAN's generator is a blob between the modes
    # for its first few hundred steps), so a red "0 / 8" would judge it too early
    judge_from: int = 0
    # the page's welcome on a first visit to this family
    welcome: Welcome | None = None

    def __repr__(self) -> str:
        return f"Family({self.name!r})"

    def describe(self) -> dict[str, Any]:
        """JSON-able, for `/api/options` and `collapse-lab options --json`."""
        return dict(name=self.name, label=self.label, help=self.help,
                    knobs=[k.describe() for k in self.knobs.values()],
                    datasets=list(self.datasets), stats=[s.describe() for s in self.stats],
                    frame=self.frame.describe(), parts=list(self.parts),
                    groups=list(self.groups), remedies=[r.describe() for r in self.remedies],
                    presets=sorted(self.presets()), judge_from=self.judge_from,
                    welcome=self.welcome.describe() if self.welcome else None)

    @property
    def live_knobs(self) -> frozenset[str]:
        return frozenset(n for n, k in self.knobs.items() if k.live)
