"""The run registry and its worker processes.

Every run is a `Run` record kept in memory (and written through to the store); an active run
owns one spawned worker process (server/worker.py). A reader thread per worker receives its
messages, writes the bulky ones (ticks, snapshots) to the store directly and hands the rest to
the event loop with `call_soon_threadsafe`; the event loop only updates records and forwards
already-encoded bytes to the run's Hub.

States: queued → running ⇄ paused → stopping → done | failed | interrupted. At most
`max_workers` runs train at once; the others wait as `queued`, oldest first.

The runs of a compare group that can share one batched step (trainer/batched.py, `group_key`)
train in one worker process (server/batch_worker.py) when `batch_groups` is on: one worker slot,
one handle shared by the runs, each run still with its own messages, store rows, hub and state.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import platform
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collapse_lab.server import batch_worker
from collapse_lab.server import worker as worker_mod
from collapse_lab.server.fanout import Hub
from collapse_lab.server.scheduling import fair_order
from collapse_lab.server.settings import Settings
from collapse_lab.server.store import Store
from collapse_lab.trainer.batched import group_key
from collapse_lab.trainer.config import ConfigError, RunConfig, make_config, validate_changes

log = logging.getLogger(__name__)


class RunState(str, Enum):
    queued = "queued"
    running = "running"
    paused = "paused"
    stopping = "stopping"
    done = "done"
    failed = "failed"
    interrupted = "interrupted"


FINAL = {RunState.done, RunState.failed, RunState.interrupted}
LIVE = {RunState.running, RunState.paused, RunState.stopping}


class Conflict(Exception):
    """A control that the run's state does not allow (HTTP 409)."""


def project_version() -> str:
    try:
        from importlib.metadata import version

        return version("collapse-lab")
    except Exception:  # noqa: BLE001 - not installed (source checkout)
        return "source"


@dataclass(eq=False)
class WorkerHandle:
    """One worker process: one run, or (`batched`) the runs of a batched group, in order."""

    process: Any  # multiprocessing.Process (spawn context)
    control: Connection
    runs: list[Run]
    batched: bool = False
    thread: threading.Thread | None = None
    ends: dict[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (status, reason)
    shutdown: bool = False  # stopped because the server is shutting down


@dataclass
class Run:
    id: str
    created: float
    status: RunState
    config: dict[str, Any]
    reason: str | None = None
    group_id: str | None = None
    label: str | None = None
    owner: str | None = None  # "teacher", "student:ID" or None (scripts, older runs)
    config_version: int = 0
    step: int = 0
    provenance: dict[str, Any] | None = None
    hello: dict[str, Any] | None = None  # dataset description and value_kind, from the worker
    started: float | None = None
    ended: float | None = None
    checkpoint_step: int | None = None
    last: dict[str, Any] | None = None  # the latest tick's scalars
    # not stored
    hub: Hub = field(default_factory=Hub)
    worker: WorkerHandle | None = None
    real: bytes | None = None
    resume: bool = False
    batch: bool = False  # may train batched with the other queued runs of its group
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    watched: bool = False  # what its worker was last told: has the run a viewer?

    def record(self) -> dict[str, Any]:
        return dict(id=self.id, created=self.created, status=self.status.value,
                    reason=self.reason, config=self.config, group_id=self.group_id,
                    label=self.label, owner=self.owner, config_version=self.config_version,
                    step=self.step,
                    provenance=self.provenance, hello=self.hello, started=self.started,
                    ended=self.ended, checkpoint_step=self.checkpoint_step, last=self.last)


class Supervisor:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.runs: dict[str, Run] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.handles: list[WorkerHandle] = []  # live worker processes
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ctx = mp.get_context("spawn")
        Path(settings.checkpoint_dir).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        n = await asyncio.to_thread(self.store.mark_interrupted)
        if n:
            log.warning("%d run(s) were active when the server stopped: marked interrupted", n)
        for d in await asyncio.to_thread(self.store.load_runs):
            run = Run(**{**d, "status": RunState(d["status"])})
            run.ready.set()
            self.runs[run.id] = run
        for g in await asyncio.to_thread(self.store.load_groups):
            self.groups[g["id"]] = g

    async def shutdown(self) -> None:
        """Stop every worker: a stop command, then terminate, then kill, each after a timeout."""
        live = [r for r in self.runs.values() if r.worker is not None]
        for r in live:
            assert r.worker is not None
            r.worker.shutdown = True
            self._send(r, {"action": "stop"})
        await self._wait_exit(live, self.settings.stop_timeout)
        for r in live:
            if r.worker and r.worker.process.is_alive():
                r.worker.process.terminate()
        await self._wait_exit(live, 3.0)
        for r in live:
            if r.worker and r.worker.process.is_alive():
                r.worker.process.kill()
        await self._wait_exit(live, 3.0)
        for r in self.runs.values():
            if r.status == RunState.queued:
                self._set_status(r, RunState.interrupted, "the server shut down before it started")
        await asyncio.to_thread(self.store.flush)

    async def _wait_exit(self, runs: list[Run], timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(r.worker is not None for r in runs):
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ creating runs
    def new_id(self) -> str:
        while True:
            rid = secrets.token_hex(5)
            if rid not in self.runs:
                return rid

    def create(self, config: dict[str, Any], *, group_id: str | None = None,
               label: str | None = None, schedule: bool = True,
               owner: str | None = None) -> Run:
        """A new queued run; `schedule=False` leaves starting it to a later schedule() (a
        compare group creates all its runs first, so they can start batched together)."""
        run = Run(id=self.new_id(), created=time.time(), status=RunState.queued, config=config,
                  group_id=group_id, label=label, owner=owner,
                  batch=group_id is not None and self.settings.batch_groups)
        self.runs[run.id] = run
        self.store.save_run(run.record())
        self._prune()
        if schedule:
            self.schedule()
        return run

    def _prune(self) -> None:
        """Keep at most max_runs: the oldest finished runs go first."""
        extra = len(self.runs) - self.settings.max_runs
        if extra <= 0:
            return
        for r in sorted(self.runs.values(), key=lambda r: r.created):
            if extra <= 0:
                break
            if r.status in FINAL:
                self.delete(r)
                extra -= 1

    def active_workers(self) -> int:
        return len(self.handles)

    def schedule(self) -> None:
        queued = fair_order([r for r in self.runs.values() if r.status == RunState.queued],
                            [r for r in self.runs.values() if r.worker is not None])
        for run in queued:
            if run.status != RunState.queued:
                continue  # started just now with a batch of its group
            if self.active_workers() >= self.settings.max_workers:
                break
            mates = self._batch_mates(run, queued)
            if len(mates) > 1:
                self._spawn_batch(mates)
            else:
                self._spawn(run)

    def _batch_mates(self, run: Run, queued: list[Run]) -> list[Run]:
        """The queued runs of run's group that can train batched with it (run first)."""
        if not (run.batch and run.group_id and not run.resume):
            return [run]
        try:
            key = group_key(make_config(run.config))
        except ConfigError:
            return [run]
        mates = [run]
        for r in queued:
            if (r is not run and r.status == RunState.queued and r.batch and not r.resume
                    and r.group_id == run.group_id):
                try:
                    if group_key(make_config(r.config)) == key:
                        mates.append(r)
                except ConfigError:
                    pass
        return mates

    def _checkpoint(self, run: Run) -> Path:
        return Path(self.settings.checkpoint_dir) / f"{run.id}.pt"

    def _spawn(self, run: Run) -> None:
        s = self.settings
        spec = worker_mod.WorkerSpec(
            run_id=run.id, config=run.config, data_dir=str(s.data_dir),
            checkpoint=str(self._checkpoint(run)), resume=run.resume, frame_rate=s.frame_rate,
            snapshot_every=s.snapshot_every, checkpoint_every=s.checkpoint_every,
            threads=s.worker_threads, watched=self._watched(run))
        w = self._start_process(worker_mod.main, spec, [run], False, f"run-{run.id}")
        self._started(run, w, batched=False)
        assert w.thread is not None
        w.thread.start()

    def _spawn_batch(self, runs: list[Run]) -> None:
        """Start the runs of one batched group in one worker (server/batch_worker.py)."""
        s = self.settings
        spec = batch_worker.BatchSpec(
            run_ids=[r.id for r in runs], configs=[r.config for r in runs],
            data_dir=str(s.data_dir), frame_rate=s.frame_rate, snapshot_every=s.snapshot_every,
            threads=s.worker_threads, watched=[self._watched(r) for r in runs])
        w = self._start_process(batch_worker.main, spec, runs, True,
                                f"group-{runs[0].group_id}")
        for i, run in enumerate(runs):
            self._started(run, w, batched=True, batched_index=i, runs=len(runs),
                          batched_runs=[r.id for r in runs])
        assert w.thread is not None
        w.thread.start()

    def _start_process(self, target: Any, spec: Any, runs: list[Run], batched: bool,
                       name: str) -> WorkerHandle:
        ctrl_r, ctrl_w = self.ctx.Pipe(duplex=False)
        out_r, out_w = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=target, args=(spec, ctrl_r, out_w),
                                name=f"collapse-lab-{name}", daemon=True)
        proc.start()
        ctrl_r.close()
        out_w.close()
        w = WorkerHandle(process=proc, control=ctrl_w, runs=runs, batched=batched)
        w.thread = threading.Thread(target=self._read, args=(w, out_r), daemon=True,
                                    name=f"reader-{name}")
        self.handles.append(w)
        return w

    def _started(self, run: Run, w: WorkerHandle, **facts: Any) -> None:
        run.worker = w
        run.ready.clear()
        now = time.time()
        if run.started is None:
            run.started = now
        run.ended = None
        run.provenance = dict(run.provenance or {}, seed=run.config.get("seed"),
                              config_at_start=run.config, collapse_lab=project_version(),
                              python=sys.version.split()[0], platform=platform.platform(),
                              pid=w.process.pid, worker_started=now, **facts)
        self._set_status(run, RunState.running, "resumed from its checkpoint" if run.resume
                         else None)

    # ------------------------------------------------------------------ worker messages
    def _read(self, w: WorkerHandle, conn: Connection) -> None:
        """Reader thread: one per worker, until its pipe closes. A batched worker wraps each
        run's message as ("run", index, message)."""
        assert self.loop is not None
        run = w.runs[0]
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if w.batched:
                if msg[0] != "run":
                    continue
                run, msg = w.runs[msg[1]], msg[2]
            if run.id not in self.runs:
                continue  # deleted while its worker winds down
            kind = msg[0]
            if kind == "tick":
                self.store.add_tick(run.id, msg[1])
            elif kind == "snapshot":
                self.store.add_snapshot(run.id, msg[1], msg[2])
                if run.watched:
                    continue  # frames keep the hub's latest picture fresh
                msg = ("latest", msg[2])  # an unwatched run sends no frames: a late viewer
                # starts from its newest snapshot
            self.loop.call_soon_threadsafe(self._on_message, run, msg)
        conn.close()
        w.process.join(10)
        code = w.process.exitcode
        try:
            self.loop.call_soon_threadsafe(self._on_exit, w, code)
        except RuntimeError:
            pass  # the loop is closed: the server is gone

    def _on_message(self, run: Run, msg: tuple) -> None:
        kind = msg[0]
        if kind == "frame":
            run.hub.publish_frame(msg[1])
        elif kind == "latest":
            if not run.hub.viewers:
                run.hub.latest = msg[1]
        elif kind == "tick":
            t = msg[1]
            run.step, run.config_version, run.last = t["step"], t["config_version"], t
        elif kind == "event":
            self._on_event(run, msg[1])
        elif kind == "hello":
            _, info, dataset, value_kind, real, step, version = msg
            run.config = info.pop("config", run.config)
            run.provenance = dict(run.provenance or {}, **{k: v for k, v in info.items()
                                                          if k not in ("dataset", "objectives")})
            run.hello = dict(dataset=dataset, value_kind=value_kind)
            run.real, run.step, run.config_version = real, step, version
            self.store.save_run(run.record())
            self.store.save_real(run.id, real)
            run.ready.set()
        elif kind == "checkpoint":
            run.checkpoint_step = msg[1]
            self.store.save_run(run.record())
        elif kind == "end":
            w = run.worker
            if w is not None:
                w.ends[run.id] = (msg[1], msg[2])
                if w.batched:  # this run is over; the rest of its group trains on
                    self._finish(run, w, None)

    def _on_event(self, run: Run, ev: dict[str, Any]) -> None:
        self.store.add_event(run.id, ev)
        run.hub.publish({"type": "event", "event": ev})
        if ev.get("type") == "config":
            run.config, run.config_version = ev["config"], ev["version"]
            self.store.save_run(run.record())
        elif ev.get("type") == "state" and run.status in (RunState.running, RunState.paused):
            run.step = ev["step"]  # exact: steps since the last tick are not in any tick
            self._set_status(run, RunState(ev["state"]), None)

    def _on_exit(self, w: WorkerHandle, code: int | None) -> None:
        if w in self.handles:
            self.handles.remove(w)
        for run in w.runs:
            if run.worker is w:
                self._finish(run, w, code)
        if self.loop and not self.loop.is_closed():
            self.schedule()

    def _finish(self, run: Run, w: WorkerHandle, code: int | None) -> None:
        """Run's part of worker w is over: its final state from its end message, if any."""
        run.worker = None
        end = w.ends.get(run.id)
        if w.shutdown:
            status, reason = RunState.interrupted, "the server shut down during the run"
        elif end is not None:
            status, reason = RunState(end[0]), end[1]
        else:
            status, reason = RunState.failed, f"worker died (exit code {code})"
        run.ended = time.time()
        run.ready.set()
        run.resume = False
        if run.status == RunState.stopping and status == RunState.failed and end is None:
            reason = f"stopped (worker killed after {self.settings.stop_timeout:g} s)"
            status = RunState.done
        if run.id in self.runs:
            self._set_status(run, status, reason)

    def _set_status(self, run: Run, status: RunState, reason: str | None) -> None:
        changed = status != run.status or reason != run.reason
        run.status, run.reason = status, reason
        if status in FINAL and run.ended is None:
            run.ended = time.time()
        if run.id in self.runs:
            self.store.save_run(run.record())
        if changed:
            run.hub.publish({"type": "status", "status": status.value, "reason": reason})

    @staticmethod
    def _watched(run: Run) -> bool:
        run.watched = bool(run.hub.viewers)
        return run.watched

    def viewers_changed(self, run: Run) -> None:
        """A viewer joined or left: tell the worker when the run gains its first or loses its
        last, so an unwatched run spends nothing on frames (server/worker.py)."""
        if bool(run.hub.viewers) != run.watched:
            self._send(run, {"watched": self._watched(run)})

    def _send(self, run: Run, cmd: dict[str, Any]) -> None:
        w = run.worker
        if w is None:
            return
        if w.batched:
            cmd = dict(cmd, run=w.runs.index(run))
        try:
            w.control.send(cmd)
        except (BrokenPipeError, OSError):
            pass  # it is exiting; its reader thread reports how

    # ------------------------------------------------------------------ control
    def control(self, run: Run, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply a control body; returns what was accepted. Raises ConfigError or Conflict."""
        st = run.status
        if "set" in cmd:
            changes = cmd["set"]
            if st in FINAL or st == RunState.stopping:
                raise Conflict(f"run {run.id} is {st.value}; only an active run takes changes")
            cfg = make_config(run.config)
            if st == RunState.queued:  # nothing has started: every knob may still change
                accepted = validate_changes(cfg, changes, live=False)
                run.config = cfg.replace(**accepted).to_dict()
                self.store.save_run(run.record())
                return dict(accepted=accepted, applied=True)
            accepted = validate_changes(cfg, changes, live=True)
            if run.worker is not None and run.worker.batched:
                self._check_batched(run, cfg, accepted)
            self._send(run, {"set": accepted})
            return dict(accepted=accepted, applied=False)
        action = cmd["action"]
        if action == "resume" and st == RunState.interrupted:
            return self.resume(run)
        if action == "stop":
            if st == RunState.queued:
                self._set_status(run, RunState.done, "stopped before it started")
                return dict(accepted={"action": "stop"}, applied=True)
            if st in FINAL or st == RunState.stopping:
                raise Conflict(f"run {run.id} is already {st.value}")
            self._set_status(run, RunState.stopping, "stop requested")
            self._send(run, {"action": "stop"})
            self._kill_later(run)
            return dict(accepted={"action": "stop"}, applied=False)
        if st not in (RunState.running, RunState.paused):
            raise Conflict(f"run {run.id} is {st.value}; '{action}' needs a running or paused "
                           "run" + ("" if st != RunState.done else
                                    " (resume works on interrupted runs only)"))
        body = {"action": action} if action != "step" else {"action": "step",
                                                           "n": int(cmd.get("n", 1))}
        self._send(run, body)
        return dict(accepted=body, applied=False)

    def _check_batched(self, run: Run, cfg: RunConfig, changes: dict[str, Any]) -> None:
        """A run training batched keeps its group's step shape: refuse a knob that alters it."""
        key = group_key(cfg)
        for k, v in changes.items():
            if group_key(cfg.replace(**{k: v})) != key:
                assert run.worker is not None
                raise ConfigError(k, f"this run trains batched with its group "
                                  f"({len(run.worker.runs)} runs in one step); {k} shapes that "
                                  "step and cannot change mid-run (values such as learning "
                                  "rates, betas, penalty weights and the objective can)")

    def resume(self, run: Run) -> dict[str, Any]:
        """Continue an interrupted run from its last checkpoint, the same series."""
        ck = self._checkpoint(run)
        if ck.exists() and run.checkpoint_step is not None:
            self.store.truncate_after(run.id, run.checkpoint_step, 1 << 30)
            run.resume = True
            from_step = run.checkpoint_step
        else:
            self.store.truncate_after(run.id, -1, -1)
            run.resume = False
            from_step = 0
        run.status, run.reason, run.ended = RunState.queued, "resuming", None
        self.store.save_run(run.record())
        run.hub.publish({"type": "status", "status": "queued", "reason": "resuming"})
        self.schedule()
        return dict(accepted={"action": "resume"}, applied=True, from_step=from_step)

    def _kill_later(self, run: Run) -> None:
        w = run.worker
        if w is None or self.loop is None:
            return

        def check() -> None:
            if run.worker is w and w.process.is_alive():
                log.warning("run %s did not stop in time: terminating its worker", run.id)
                w.process.terminate()
                assert self.loop is not None
                self.loop.call_later(3.0, lambda: w.process.is_alive() and w.process.kill())

        self.loop.call_later(self.settings.stop_timeout, check)

    def delete(self, run: Run) -> None:
        if run.worker is not None and run.worker.batched:
            self._send(run, {"action": "stop"})  # the rest of its group trains on
        elif run.worker is not None:
            run.worker.process.terminate()
        self.runs.pop(run.id, None)
        self.store.delete_run(run.id)
        self._checkpoint(run).unlink(missing_ok=True)
        run.hub.publish({"type": "status", "status": "deleted", "reason": "run deleted"})

    # ------------------------------------------------------------------ groups
    def new_group(self, base: dict[str, Any], varied: list[dict[str, Any]],
                  label: str | None) -> dict[str, Any]:
        gid = "g" + secrets.token_hex(4)
        g = dict(id=gid, created=time.time(), label=label, base=base, varied=varied)
        self.groups[gid] = g
        self.store.save_group(g)
        return g

    def group_runs(self, gid: str) -> list[Run]:
        return sorted((r for r in self.runs.values() if r.group_id == gid),
                      key=lambda r: r.created)
