"""The training driver: any number of runs, each in an engine with the runs it can share a step
with, stepped, ticked, paused, changed and ended one by one.

`Trainer` knows nothing about who watches: the CLI (one run), the server's worker (one run, a
compare group, or the runs packed onto it), sweeps and the tests add runs with their callbacks
(`on_tick`, `on_event`, `on_end`) and send commands: typed values of trainer/commands.py,
validated where they were made (the server's door), and trusted here. A caller in this process
may send a control body instead (`{"action": "pause"}`, `{"set": {knob: value}}`): the driver is
then its door and parses it once (`families.parse_command`). Events come back typed
(`ConfigChanged`, `StateChanged`, `Rejected`).

Which runs share an engine (a family's `Engine`, docs/families.md): runs of one family that
agree on the step's shape (`families.stack_key`) and are training. A paused run trains in an
engine of its own (so its single steps move it alone); a live change that alters the step's
shape moves the run to another engine. Every move carries the run's whole state (the family's
`RunState`), so a run's series does not depend on the runs beside it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from collapse_lab.trainer import families
from collapse_lab.trainer.commands import (
    Command,
    ConfigChanged,
    Event,
    Pause,
    Rejected,
    Resume,
    Set,
    StateChanged,
    Step,
    Stop,
)
from collapse_lab.trainer.data import DATA_KNOBS, make_dataset
from collapse_lab.trainer.datasets import Dataset
from collapse_lab.trainer.families import make_config, stack_key
from collapse_lab.trainer.family import Engine, Restack, RunState
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)



class Diverged(RuntimeError):
    """A loss or metric became NaN/inf: the run cannot go on."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda requested but no CUDA device is available")
    return torch.device(name)


@dataclass
class Callbacks:
    on_tick: Callable[[dict[str, Any]], None] | None = None
    on_event: Callable[[Event], None] | None = None  # ConfigChanged, StateChanged, Rejected
    on_end: Callable[[str, str], None] | None = None  # (status done|failed, reason)
    want_picture: Callable[[], bool] | None = None  # D's landscape in this tick? None = always
    want_manifold: Callable[[], bool] | None = None  # G's latent grid in this tick? None = no


@dataclass(eq=False)
class Run:
    """A run as the driver holds it: where it trains and what it was told."""

    id: str
    cb: Callbacks
    engine: Engine | None = None
    row: int = 0
    paused: bool = False
    owed: deque[str] = field(default_factory=deque)  # single steps asked for while paused
    stop: bool = False
    ended: bool = False
    last: dict[str, Any] | None = None  # the latest tick
    final: RunState | None = None  # its state when it ended (a last checkpoint, --save)

    @property
    def cfg(self) -> Any:
        if self.engine is None:
            assert self.final is not None
            return self.final.cfg
        return self.engine.cfgs[self.row]

    @property
    def version(self) -> int:
        """Live changes applied so far."""
        if self.engine is None:
            assert self.final is not None
            return self.final.version
        return self.engine.versions[self.row]

    @property
    def step(self) -> int:
        if self.engine is None:
            assert self.final is not None
            return self.final.step
        return int(self.engine.steps[self.row])


class Trainer:
    """Trains runs; `advance()` takes one step of every training engine and ticks what is due."""

    def __init__(self, data_dir: Path | None = None, pack: bool = True):
        self.data_dir = data_dir
        self.pack = pack  # let runs that agree on the step's shape share an engine
        self.runs: dict[str, Run] = {}
        self.engines: list[Engine] = []
        self._members: dict[int, list[Run]] = {}  # id(engine) -> its runs by row
        self._due: dict[int, float] = {}  # id(engine) -> when a paced engine may step next
        self._data: dict[tuple, Dataset] = {}

    # ------------------------------------------------------------------ runs in
    def add(self, run_id: str, source: Any, cb: Callbacks | None = None,
            tick: bool = True) -> Run:
        """Add a run from a config (a fresh run) or a RunState (a resumed one)."""
        return self.add_many([(run_id, source, cb)], tick)[0]

    def add_many(self, items: Sequence[tuple[str, Any, Callbacks | None]],
                 tick: bool = True) -> list[Run]:
        """Add several runs at once: those that can share an engine are built into one.

        With `tick`, a fresh run ticks at once (its first picture); a resumed run's tick at its
        step was reported before its checkpoint."""
        added: list[Run] = []
        groups: dict[tuple, list[tuple[Run, Any]]] = {}
        for run_id, source, cb in items:
            if run_id in self.runs:
                raise ValueError(f"run {run_id} is already training here")
            state = self._fresh(source) if _is_config(source) else source
            if state.cfg.threads > 0:  # a process-wide setting: the last run added decides
                torch.set_num_threads(state.cfg.threads)
            run = Run(run_id, cb or Callbacks())
            self.runs[run_id] = run
            added.append(run)
            groups.setdefault(stack_key(state.cfg), []).append((run, state))
        for members in groups.values():
            self._place([r for r, _ in members], [s for _, s in members])
        if tick:
            self.tick([r.id for r in added if r.step == 0])
        return added

    def tick(self, run_ids: Iterable[str]) -> None:
        """Tick these runs now (their callbacks get the ticks)."""
        self._tick_runs([self.runs[i] for i in run_ids])

    def _fresh(self, cfg: Any) -> RunState:
        cfg = cfg if not isinstance(cfg, dict) else make_config(cfg)
        return families.of(cfg).fresh(cfg, self._dataset(cfg))

    def _dataset(self, cfg: Any) -> Dataset:
        dev = resolve_device(cfg.device)
        key = (*(getattr(cfg, k, None) for k in DATA_KNOBS), str(dev),
               torch.get_default_dtype())
        if key not in self._data:
            self._data[key] = make_dataset(cfg, self.data_dir).to(dev)
        return self._data[key]

    # ------------------------------------------------------------------ engines
    def _place(self, runs: list[Run], states: list[RunState]) -> None:
        """Put runs (with their states) into an engine: a training one they can join, or new."""
        host = None
        if self.pack and not any(r.paused for r in runs):
            key = stack_key(states[0].cfg)
            host = next((e for e in self.engines if stack_key(e.cfgs[0]) == key
                         and not self._paused(e)), None)
        if host is not None:
            old = self._members[id(host)]
            self._rebuild(host, old + runs, [host.export(r.row) for r in old] + states)
        else:
            self._new_engine(runs, states)

    def _new_engine(self, runs: list[Run], states: list[RunState]) -> Engine:
        cfg = states[0].cfg
        eng = families.of(cfg).engine(states, self._dataset(cfg), resolve_device(cfg.device))
        self.engines.append(eng)
        self._members[id(eng)] = list(runs)
        for row, r in enumerate(runs):
            r.engine, r.row = eng, row
        return eng

    def _rebuild(self, old: Engine | None, runs: list[Run], states: list[RunState]) -> None:
        if old is not None:
            self._drop(old)
        if runs:
            self._new_engine(runs, states)

    def _drop(self, eng: Engine) -> None:
        self.engines.remove(eng)
        self._members.pop(id(eng), None)
        self._due.pop(id(eng), None)

    def _detach(self, run: Run) -> RunState:
        """Take run out of its engine (which goes on with the others); returns its state."""
        eng = run.engine
        assert eng is not None
        state = eng.export(run.row)
        rest = [r for r in self._members[id(eng)] if r is not run]
        self._rebuild(eng, rest, [eng.export(r.row) for r in rest])
        run.engine = None
        return state

    def _paused(self, eng: Engine) -> bool:
        return any(r.paused for r in self._members[id(eng)])

    def members(self, eng: Engine) -> list[Run]:
        return list(self._members[id(eng)])

    # ------------------------------------------------------------------ commands
    def command(self, run_id: str, cmd: Command | Mapping[str, Any]) -> None:
        """A command to one run: a typed `Command` (trusted), or a control body parsed here."""
        run = self.runs.get(run_id)
        if run is None or run.ended:
            return
        emit = run.cb.on_event or (lambda e: None)
        if isinstance(cmd, Mapping):
            try:
                cmd = families.parse_command(cmd, run.cfg)
            except ConfigError as e:
                emit(Rejected(e.field, e.message, run.step, run.cfg.to_dict()))
                return
        match cmd:
            case Set(changes=changes):
                emit(self._apply(run, dict(changes)))
            case Stop():
                run.stop = True
            case Pause(reason=reason) if not run.paused:
                self._set_paused(run, True)
                # a pause the worker decided (e.g. a full disk) says why
                emit(StateChanged("paused", run.step, reason))
            case Resume() if run.paused:
                self._set_paused(run, False)
                emit(StateChanged("running", run.step))
            case Step(n=n, part=part) if run.paused:
                run.owed.extend([part] * n)

    def _apply(self, run: Run, changes: dict[str, Any]) -> ConfigChanged:
        eng = run.engine
        assert eng is not None
        try:
            return eng.apply(run.row, changes)
        except Restack:
            pass
        # the step's shape changes for this run alone: it moves to an engine of its own
        state = self._detach(run)
        solo = self._new_engine([run], [state])
        event = solo.apply(0, changes)
        if self.pack and not run.paused:
            self._place([run], [self._detach(run)])
        return event

    def _set_paused(self, run: Run, paused: bool) -> None:
        run.paused = paused
        run.owed.clear()
        eng = run.engine
        assert eng is not None
        if paused and eng.runs > 1:  # alone, so its single steps move it alone
            self._new_engine([run], [self._detach(run)])
        elif not paused and self.pack:
            key = stack_key(run.cfg)
            if any(stack_key(e.cfgs[0]) == key and e is not eng and not self._paused(e)
                   for e in self.engines):
                self._place([run], [self._detach(run)])

    # ------------------------------------------------------------------ training
    def active(self) -> bool:
        return any(not r.ended for r in self.runs.values())

    def wait_time(self) -> float:
        """How long a caller may block waiting for commands before the next `advance()`."""
        now, waits = time.monotonic(), []
        for eng in self.engines:
            runs = self._members[id(eng)]
            if any(r.stop for r in runs):
                return 0.0
            if self._paused(eng):
                if runs[0].owed:
                    return 0.0
                waits.append(0.1)
            else:
                waits.append(max(0.0, self._due.get(id(eng), 0.0) - now))
        return min(waits, default=0.1)

    def advance(self) -> None:
        """One step of every engine that may train now; ticks and ends what is due."""
        for eng in list(self.engines):
            if id(eng) not in self._members:
                continue  # rebuilt by an earlier run's end in this round
            runs = self._members[id(eng)]
            stopping = [r for r in runs if r.stop]
            if stopping:
                for r in stopping:
                    self._end(r, "done", f"stopped at step {r.step}")
                continue
            if self._paused(eng):
                if runs[0].owed:
                    eng.step(norms=True, part=runs[0].owed.popleft())
                    self._tick_runs(runs)
                continue
            speed = eng.cfgs[0].speed
            if speed > 0:
                now = time.monotonic()
                due = self._due.get(id(eng), now)
                if now < due:
                    continue
                self._due[id(eng)] = max(due + 1.0 / speed, now - 0.5 / speed)
            norms = any((eng.steps[r.row] + 1) % r.cfg.tick_every == 0 for r in runs)
            eng.step(norms=norms)
            due_runs = [r for r in runs if r.step % r.cfg.tick_every == 0 or finished(r)]
            self._tick_runs(due_runs)
            for r in runs:
                if not r.ended and finished(r):
                    self._end(r, "done", f"finished {r.step} steps")

    def _tick_runs(self, runs: Iterable[Run]) -> None:
        by_engine: dict[int, list[Run]] = {}
        for r in runs:
            if not r.ended and r.engine is not None:
                by_engine.setdefault(id(r.engine), []).append(r)
        for group in by_engine.values():
            eng = group[0].engine
            assert eng is not None
            pics = [r.row for r in group if r.cb.want_picture is None or r.cb.want_picture()]
            mans = [r.row for r in group if r.cb.want_manifold is not None
                    and r.cb.want_manifold()]
            ticks = eng.tick([r.row for r in group], pics, mans)
            for r in group:
                t = ticks[r.row]
                if "failed" in t:
                    self._end(r, "failed", t["failed"])
                    continue
                r.last = t
                if r.cb.on_tick:
                    r.cb.on_tick(t)

    def _end(self, run: Run, status: str, reason: str) -> None:
        """The run is over: a final tick if the last one is stale, its end, and out."""
        if run.ended:
            return
        if status == "done" and (run.last is None or run.last["step"] != run.step):
            self._tick_runs([run])
            if run.ended:  # the final tick found it diverged
                return
        run.ended = True
        if run.engine is not None:
            run.final = self._detach(run)
        if run.cb.on_end:
            run.cb.on_end(status, reason)

    def stop_all(self) -> None:
        for r in self.runs.values():
            r.stop = True

    def state(self, run_id: str) -> RunState:
        """A run's whole state now (for a checkpoint); the run trains on."""
        run = self.runs[run_id]
        assert run.engine is not None
        return run.engine.export(run.row)

    def info(self, run_id: str) -> dict[str, Any]:
        """Static facts of the run for the UI and the provenance record."""
        run = self.runs[run_id]
        eng = run.engine
        assert eng is not None
        return dict(device=str(eng.device), torch=torch.__version__,
                    threads=torch.get_num_threads(), dataset=eng.data.describe(),
                    runs_in_step=eng.runs, cuda_graph=False,
                    cuda_graph_reason=f"device is {eng.device.type}: CUDA graphs need a CUDA "
                    "device" if eng.device.type != "cuda" else "eager")

    def real_samples(self, run_id: str) -> tuple[Any, Any]:
        """Real samples for the picture (2,500 points, or 64 images) and, for 2-D data, each
        one's mode: the same for every run of a dataset and seed. Text has no points to draw:
        none (its family's panels show it)."""
        run = self.runs[run_id]
        assert run.engine is not None
        data = run.engine.data
        if data.kind == "text":
            return np.zeros((0, 2), np.float32), None
        g = torch.Generator().manual_seed(run.cfg.seed + 1)
        real = data.to_cpu_sample(2500 if data.kind == "2d" else 64, g)
        modes = None
        if data.kind == "2d":
            modes = data.assign(real.to(data.device))[0].cpu().numpy()
        return real.numpy().astype("float32"), modes


def _is_config(source: Any) -> bool:
    """A fresh run's config (or a dict of knobs), as opposed to a RunState to resume."""
    return isinstance(source, dict) or not hasattr(source, "cfg")


def finished(run: Run) -> bool:
    """Whether a run has trained its steps; steps 0 means no end (it trains until stopped)."""
    return run.cfg.steps > 0 and run.step >= run.cfg.steps


def run(trainer: Trainer, poll: Callable[[float], list[tuple[str, Command]]] | None = None,
        should_stop: Callable[[], bool] | None = None) -> None:
    """Drive `trainer` until every run has ended: commands from `poll(timeout)` (pairs of run id
    and command) between steps, `should_stop()` ends every run cleanly."""
    while trainer.active():
        if poll is not None:
            for run_id, cmd in poll(trainer.wait_time()):
                trainer.command(run_id, cmd)
        elif (w := trainer.wait_time()) > 0:
            time.sleep(min(w, 0.1))
        if should_stop is not None and should_stop():
            trainer.stop_all()
        trainer.advance()


def train(config: Any, data_dir: Path | None = None, cb: Callbacks | None = None,
          poll: Callable[[float], list[Command]] | None = None) -> dict[str, Any]:
    """Train one run from a config (or a dict of knobs) to its end; returns its last tick.
    Raises Diverged if it fails."""
    t = Trainer(data_dir)
    ended: list[tuple[str, str]] = []
    cb = cb or Callbacks()
    user_end = cb.on_end

    def on_end(status: str, reason: str) -> None:
        ended.append((status, reason))
        if user_end:
            user_end(status, reason)

    t.add("run", config, Callbacks(cb.on_tick, cb.on_event, on_end, cb.want_picture,
                                   cb.want_manifold))
    run(t, (lambda timeout: [("run", c) for c in poll(timeout)]) if poll else None)
    if ended and ended[0][0] == "failed":
        raise Diverged(ended[0][1])
    last = t.runs["run"].last
    assert last is not None
    return last
