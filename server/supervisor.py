"""The run registry: creating, scheduling, controlling, resuming and deleting runs.

Every run is a `Run` record (server/runs.py) kept in memory and written through to the store. A
run trains in a worker process (server/workers.py, server/worker.py); one worker may train many
runs, and runs that agree on the shape of the step share one stacked engine inside it:

- the runs of a compare group start together in one worker (`batch_groups`), and
- with `pack` on, a queued run that finds no free worker slot joins the least loaded live worker
  whose runs it can share a step with, up to `pack_limit` runs a worker, instead of waiting.

At most `max_workers` worker processes run at once; runs that find no place wait as `queued`.
Which place a run may take, the queue's order and the quotas are decided in server/placement.py;
a run's checkpoint files are server/checkpoints.py's.

A control is validated once, here, against the trainer's registry; the server's copy of the
run's config changes when the control is accepted, so the next control is checked against it.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from collapse_lab.server import messages, pipe
from collapse_lab.server.budget import check_budget, worker_memory_mb
from collapse_lab.server.checkpoints import Checkpoints
from collapse_lab.server.placement import Placement
from collapse_lab.server.runs import FINAL, LIVE, Conflict, Run, RunState
from collapse_lab.server.settings import Settings
from collapse_lab.server.store import Store
from collapse_lab.server.workers import WorkerHandle, kill_later, spawn
from collapse_lab.trainer import commands
from collapse_lab.trainer.families import make_config, parse_command, stack_key
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)

__all__ = ["FINAL", "LIVE", "Conflict", "Run", "RunState", "Supervisor", "project_version"]


def project_version() -> str:
    try:
        from importlib.metadata import version

        return version("collapse-lab")
    except Exception:  # noqa: BLE001 - not installed (source checkout)
        return "source"


def _may_use_cuda(config: dict[str, Any]) -> bool:
    """CUDA reserves far more address space than it uses: no address-space limit there."""
    if config.get("device") == "cpu":
        return False
    from collapse_lab.server.devices import cuda_available

    return cuda_available()


class Supervisor:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.runs: dict[str, Run] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.handles: list[WorkerHandle] = []  # live worker processes
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self._keys: dict[str, tuple] = {}  # run id -> stack key of its config
        self.ray_resources: dict[str, float] = {}
        self.tracker: Any = None  # server/api_track.py: runs whose steps come from outside
        self.checkpoints = Checkpoints(settings.checkpoint_dir)
        self.placement = Placement(settings, self.runs, self.handles)

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.settings.backend == "ray":
            from collapse_lab.server import ray_backend

            self.ray_resources = await asyncio.to_thread(
                ray_backend.init, self.settings.ray_address)
            log.warning("workers run as Ray actors: %s", {k: v for k, v in
                                                          self.ray_resources.items()
                                                          if k in ("CPU", "GPU")})
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
        """Stop every worker: a stop for each run, then terminate, then kill, each after a
        timeout. Queued runs become interrupted at once (no worker starts from here on)."""
        self.closing = True
        if self.tracker is not None:
            self.tracker.interrupt_all()
        for r in self.runs.values():
            if r.status == RunState.queued:
                self._set_status(r, RunState.interrupted,
                                 "the server shut down before it started")
        workers = list(self.handles)
        for w in workers:
            w.shutdown = True
            for rid in w.live():
                w.send(pipe.Control(rid, commands.Stop()))
        await self._wait_exit(workers, self.settings.stop_timeout)
        for w in workers:
            if w.process.is_alive():
                w.process.terminate()
        await self._wait_exit(workers, 3.0)
        for w in workers:
            if w.process.is_alive():
                w.process.kill()
        await self._wait_exit(workers, 3.0)
        await asyncio.to_thread(self.store.flush)

    async def _wait_exit(self, workers: list[WorkerHandle], timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(w in self.handles for w in workers):
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ creating runs
    def new_id(self) -> str:
        while True:
            rid = secrets.token_hex(5)
            if rid not in self.runs:
                return rid

    def create(self, config: dict[str, Any], *, group_id: str | None = None,
               label: str | None = None, owner: str | None = None,
               schedule: bool = True) -> Run:
        """A new queued run; `schedule=False` leaves starting it to a later schedule() (a
        compare group creates all its runs first, so they start in one worker)."""
        run = Run(id=self.new_id(), created=time.time(), status=RunState.queued, config=config,
                  group_id=group_id, label=label, owner=owner)
        self.runs[run.id] = run
        self.store.save_run(run.record())
        self._prune(owner)
        if schedule:
            self.schedule()
        return run

    def over_quota(self, owner: str | None, new: int = 1) -> int:
        """How many runs must go before `owner` may keep `new` more (placement.py)."""
        return self.placement.over_quota(owner, new)

    def prunable(self, owner: str | None) -> list[Run]:
        """`owner`'s own finished runs, oldest first (placement.py)."""
        return self.placement.prunable(owner)

    def _prune(self, owner: str | None) -> None:
        """Make room for `owner`'s new run from their own oldest finished runs, never anyone
        else's (the routes refuse a run there is no such room for: `over_quota`)."""
        extra = self.over_quota(owner, 0)
        for r in self.prunable(owner)[:extra]:
            self.delete(r)

    def active_workers(self) -> int:
        return len(self.handles)

    def queued(self) -> list[Run]:
        """Runs waiting for a place, in the order they get one (placement.py)."""
        return self.placement.queued()

    def queue_places(self) -> dict[str, tuple[int, float | None]]:
        """Each queued run's place and about how long until a worker is free for it."""
        return self.placement.queue_places()

    def _key(self, run: Run) -> tuple:
        if run.id not in self._keys:
            self._keys[run.id] = stack_key(make_config(run.config))
        return self._keys[run.id]

    def schedule(self) -> None:
        if self.closing or self.loop is None:
            return
        for run in self.queued():
            if run.status != RunState.queued:
                continue  # placed just now with the runs it starts with
            try:
                key = self._key(run)
            except ConfigError as e:  # a stored config this version no longer accepts
                self._set_status(run, RunState.failed, f"config: {e}")
                continue
            # a free worker slot first (runs spread over the cores); else a live worker whose
            # runs it can share a step with
            if len(self.handles) < self.settings.max_workers and self.placement.slot_for(run):
                self._spawn(run, key)
            elif (host := self.placement.host_for(run, key)) is not None:
                self._join(host, run)

    def _run_spec(self, run: Run) -> pipe.RunSpec:
        run.watched = bool(run.hub.viewers)
        run.manifold = self._wants_manifold(run)
        return pipe.RunSpec(run_id=run.id, config=run.config,
                            checkpoint=str(self.checkpoints.prefix(run.id)),
                            resume_from=run.resume_from, watched=run.watched,
                            manifold=run.manifold)

    def _spawn(self, run: Run, key: tuple) -> None:
        """A new worker for `run` and the queued runs that may share its step."""
        assert self.loop is not None
        s = self.settings
        mates = [run]
        for r in self.queued():
            if len(mates) >= s.pack_limit:
                break
            if r is run or r.status != RunState.queued:
                continue
            try:
                same = self._key(r) == key
            except ConfigError:
                continue
            # the rest of its compare group starts with it (other runs spread over free slots
            # first, and join a worker when none is left)
            if same and s.batch_groups and run.group_id and r.group_id == run.group_id:
                mates.append(r)
        spec = pipe.WorkerSpec(runs=[self._run_spec(r) for r in mates], data_dir=str(s.data_dir),
                               frame_rate=s.frame_rate, snapshot_every=s.snapshot_every,
                               checkpoint_every=s.checkpoint_every, threads=s.worker_threads,
                               pack=s.pack or s.batch_groups,
                               memory_mb=0 if _may_use_cuda(run.config)
                               else worker_memory_mb(s.worker_memory_mb))
        name = f"worker-{run.id}"
        if s.backend == "ray":
            from collapse_lab.server import ray_backend

            cuda = run.config.get("device") != "cpu" and self.ray_resources.get("GPU", 0) > 0
            w = ray_backend.spawn(spec, key, name, self.loop, self._on_message, self._on_exit,
                                  self._on_bulk, gpus=s.ray_gpus_per_worker if cuda else 0.0,
                                  cpus=s.ray_cpus_per_worker)
        else:
            w = spawn(spec, key, name, self.loop, self._on_message, self._on_exit,
                      self._on_bulk)
        self.handles.append(w)
        for r in mates:
            self._placed(r, w)

    def _join(self, w: WorkerHandle, run: Run) -> None:
        w.run_ids.append(run.id)
        self._placed(run, w)
        if not w.send(pipe.Join(self._run_spec(run))):  # it is gone: wait for another place
            w.run_ids.remove(run.id)
            run.worker = None
            self._set_status(run, RunState.queued, "waiting for a free worker")
            if self.loop is not None:
                self.loop.call_soon(self.schedule)

    def _placed(self, run: Run, w: WorkerHandle) -> None:
        """The run has a place: it is running from now (its worker says hello when it has
        built it; the websocket waits for that)."""
        run.worker = w
        run.ready.clear()
        self._set_status(run, RunState.running,
                         "resumed from its checkpoint" if run.resume_from else None)

    # ------------------------------------------------------------------ worker messages
    def _on_bulk(self, msg: Any) -> Any:
        """On a worker's reader thread: store writes; returns what the loop still needs."""
        match msg:
            case pipe.Tick(run_id=rid, scalars=t) if rid in self.runs:
                self.store.add_tick(rid, t)
            case pipe.Snapshot(run_id=rid, step=step, data=data) if rid in self.runs:
                self.store.add_snapshot(rid, step, data)
                if self.runs[rid].watched:
                    return None  # frames keep the hub's latest picture fresh
        return msg

    def _on_message(self, w: WorkerHandle, msg: Any) -> None:
        run = self.runs.get(getattr(msg, "run_id", ""))
        if run is None:
            return  # deleted while its worker winds down (or a pong)
        match msg:
            case pipe.Frame(data=data):
                run.hub.publish_frame(data)
            case pipe.Snapshot(data=data):  # an unwatched run: a late viewer starts here
                if not run.hub.viewers:
                    run.hub.latest = data
            case pipe.Tick(scalars=t):
                run.step, run.config_version, run.last = t["step"], t["config_version"], t
            case pipe.Event(event=ev):
                self._on_event(run, ev)
            case pipe.Hello():
                self._on_hello(w, run, msg)
            case pipe.Checkpoint(step=step):
                run.checkpoint_step = step
                self.store.save_run(run.record())
                # the ticks up to `step` were queued before this (on the reader thread): once
                # they are committed, older checkpoints are no longer what a resume needs
                self.store.after_commit(
                    lambda: self.checkpoints.remove_before(run.id, step))
            case pipe.End(status=status, reason=reason):
                w.ended.add(run.id)
                steps = run.config["steps"]
                if w.shutdown and status == "done" and (steps == 0 or run.step < steps):
                    # stopped by the shutdown, not finished (steps 0: trains until stopped)
                    status, reason = "interrupted", "the server shut down during the run"
                self._finish(run, w, RunState(status), reason)

    def _on_hello(self, w: WorkerHandle, run: Run, msg: pipe.Hello) -> None:
        w.hello.add(run.id)
        info = dict(msg.info)
        run.config = info.pop("config", run.config)
        dataset = info.pop("dataset", None)
        now = time.time()
        run.started = run.started or now
        run.ended = None
        run.provenance = dict(run.provenance or {}, **info, seed=run.config.get("seed"),
                              config_at_start=run.config, collapse_lab=project_version(),
                              python=sys.version.split()[0], platform=platform.platform(),
                              worker_started=now, worker_runs=len(w.run_ids),
                              backend=self.settings.backend)
        run.hello = dict(dataset=dataset, value_kind=msg.value_kind)
        run.real, run.step, run.config_version = msg.real, msg.step, msg.version
        run.resume_from = None
        self.store.save_run(run.record())
        self.store.save_real(run.id, msg.real)
        run.ready.set()

    def _on_event(self, run: Run, ev: dict[str, Any]) -> None:
        self.store.add_event(run.id, ev)
        run.hub.publish(messages.Event(event=ev))
        kind = ev.get("type")
        if kind == "config":
            run.config, run.config_version = ev["config"], ev["version"]
            self._keys.pop(run.id, None)
            self.store.save_run(run.record())
        elif kind == "rejected" and ev.get("config"):
            run.config = ev["config"]  # what the run really has (the copy ran ahead)
            self._keys.pop(run.id, None)
        elif kind == "state" and run.status in (RunState.running, RunState.paused):
            run.step = ev["step"]  # exact: steps since the last tick are not in any tick
            self._set_status(run, RunState(ev["state"]), ev.get("reason"))

    def _on_exit(self, w: WorkerHandle, code: int | None) -> None:
        if w in self.handles:
            self.handles.remove(w)
        for rid in w.run_ids:
            run = self.runs.get(rid)
            if run is None or run.worker is not w or rid in w.ended:
                continue
            if w.shutdown:
                self._finish(run, w, RunState.interrupted, "the server shut down during the run")
            elif run.status == RunState.stopping:
                self._finish(run, w, RunState.done,
                             f"stopped (worker killed after {self.settings.stop_timeout:g} s)")
            elif rid not in w.hello and code == 0 and run.status == RunState.running:
                # it joined a worker whose last run was ending: the worker finished cleanly
                # without taking it up, so it waits again for a place instead of failing
                run.worker = None
                self._set_status(run, RunState.queued, "waiting for a free worker")
            else:
                why = w.exit_reason or f"exit code {code}"
                self._finish(run, w, RunState.failed,
                             f"worker died ({why})" if rid in w.hello
                             else f"worker exited before starting the run ({why})")
        if self.loop and not self.loop.is_closed():
            self.schedule()

    def _finish(self, run: Run, w: WorkerHandle, status: RunState, reason: str) -> None:
        """Run's part of worker w is over."""
        if run.worker is not w:
            return
        run.worker = None
        run.resume_from = None
        run.ready.set()
        if run.status in FINAL:
            return
        run.ended = time.time()
        if run.id in self.runs:
            self._set_status(run, status, reason)

    def _set_status(self, run: Run, status: RunState, reason: str | None) -> None:
        changed = run.transition(status, reason)
        if run.id in self.runs:
            self.store.save_run(run.record())
        if changed:
            run.hub.publish(messages.Status(status=status.value, reason=reason))

    # ------------------------------------------------------------------ viewers
    @staticmethod
    def _wants_manifold(run: Run) -> bool:
        wants = getattr(run.hub, "wants", None)
        return bool(wants("manifold")) if wants is not None else False

    def viewers_changed(self, run: Run) -> None:
        """A viewer joined, left or changed its layers: tell the worker when the run gains its
        first viewer or loses its last (an unwatched run draws no frames), or when the
        manifold layer is wanted or no longer."""
        watched, manifold = bool(run.hub.viewers), self._wants_manifold(run)
        if (watched, manifold) != (run.watched, run.manifold):
            run.watched, run.manifold = watched, manifold
            self._send(run, pipe.Watch(run.id, watched, manifold))

    def _send(self, run: Run, msg: Any) -> None:
        if run.worker is not None:
            run.worker.send(msg)

    # ------------------------------------------------------------------ control
    async def control(self, run: Run, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply a control body; returns what was accepted. Raises ConfigError or Conflict."""
        if self.tracker is not None and run.config.get("family") == "tracked":
            return await self.tracker.control(run, cmd)
        st = run.status
        if "set" in cmd:
            if st in FINAL or st == RunState.stopping:
                raise Conflict(f"run {run.id} is {st.value}; only an active run takes changes")
            cfg = make_config(run.config)
            # the one place a change is validated: the worker and the engine trust the value
            change = parse_command(cmd, cfg, live=st != RunState.queued)
            assert isinstance(change, commands.Set)
            accepted = dict(change.changes)
            check_budget(self.settings.run_memory_mb, cfg.replace(**accepted),
                         step_seconds=self.settings.run_step_seconds)
            run.config = cfg.replace(**accepted).to_dict()  # the next control sees this
            self._keys.pop(run.id, None)
            if st == RunState.queued:  # nothing started: any knob may still change
                self.store.save_run(run.record())
                return dict(accepted=accepted, applied=True)
            self._send(run, pipe.Control(run.id, change))
            return dict(accepted=accepted, applied=False)
        action = cmd["action"]
        if action == "resume" and st == RunState.interrupted:
            return await self.resume(run)
        if action == "stop":
            return self._stop(run)
        if st not in (RunState.running, RunState.paused):
            raise Conflict(f"run {run.id} is {st.value}; '{action}' needs a running or paused "
                           "run" + ("" if st != RunState.done else
                                    " (resume works on interrupted runs only)"))
        typed = parse_command(cmd, make_config(run.config))
        self._send(run, pipe.Control(run.id, typed))
        return dict(accepted=commands.body(typed), applied=False)

    def _stop(self, run: Run) -> dict[str, Any]:
        st = run.status
        if st == RunState.queued:
            self._set_status(run, RunState.done, "stopped before it started")
            return dict(accepted={"action": "stop"}, applied=True)
        if st in FINAL or st == RunState.stopping:
            raise Conflict(f"run {run.id} is already {st.value}")
        self._set_status(run, RunState.stopping, "stop requested")
        self._send(run, pipe.Control(run.id, commands.Stop()))
        w = run.worker
        if w is not None and self.loop is not None and len(w.live()) == 1:
            # a worker of its own that does not stop in time is ended; a shared one is not
            # (the other runs would fail with it)
            kill_later(self.loop, w, self.settings.stop_timeout,
                       lambda: run.worker is w and run.status == RunState.stopping)
        return dict(accepted={"action": "stop"}, applied=False)

    # ------------------------------------------------------------------ resume
    def _pick_checkpoint(self, run: Run) -> tuple[int, Path | None]:
        """The checkpoint a resume continues from, against the stored series (flushed first)."""
        self.store.flush()
        return self.checkpoints.pick(run.id, self.store.last_tick_step(run.id))

    async def resume(self, run: Run) -> dict[str, Any]:
        """Continue an interrupted run from its newest usable checkpoint: the step the reply
        names is the step training goes on from, and the series has no gap or duplicate."""
        step, path = await asyncio.to_thread(self._pick_checkpoint, run)
        self.checkpoints.remove_after(run.id, step)  # past the stored series: trained again
        # ticks after the checkpoint are trained again; a config event after it is replayed
        # by nobody, so the stored config is the checkpoint's
        self.store.truncate_after(run.id, step if path else -1, 1 << 30 if path else -1)
        run.resume_from = str(path) if path else None
        run.step = step
        run.transition(RunState.queued, "resuming")
        run.ended = None
        self.store.save_run(run.record())
        run.hub.publish(messages.Status(status="queued", reason="resuming"))
        self.schedule()
        return dict(accepted={"action": "resume"}, applied=True, from_step=step)

    # ------------------------------------------------------------------ delete
    def delete(self, run: Run) -> None:
        if self.tracker is not None:
            self.tracker.forget(run)
        w = run.worker
        if w is not None:
            if len(w.live()) > 1:
                w.send(pipe.Control(run.id, commands.Stop()))  # the others train on
            else:
                w.process.terminate()
        self.runs.pop(run.id, None)
        self._keys.pop(run.id, None)
        self.store.delete_run(run.id)
        self.checkpoints.remove_all(run.id)
        run.hub.publish(messages.Status(status="deleted", reason="run deleted"))

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
