"""The run registry: creating, starting (and packing), and deleting runs, and the workers they
train in.

Every run is a `Run` record (server/runs.py) kept in memory and written through to the store. A
run trains in a worker process (server/workers.py, server/worker.py); one worker may train many
runs, and runs that agree on the shape of the step share one stacked engine inside it:

- the runs of a compare group start together in one worker (`batch_groups`), and
- with `pack` on, a queued run that finds no free worker slot joins the least loaded live worker
  whose runs it can share a step with, up to `pack_limit` runs a worker, instead of waiting.

At most `max_workers` worker processes run at once; runs that find no place wait as `queued`.
The rest the supervisor composes, one job a module:

- server/placement.py: which place a run may take, the queue's order and the quotas;
- server/dispatch.py: what the workers say (ticks, events, hello, checkpoints, ends, exits);
- server/control.py: a run's controls (live changes, pause / step / stop) and resume;
- server/groups.py: compare groups;
- server/checkpoints.py: a run's checkpoint files.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from collapse_lab.server import messages, pipe
from collapse_lab.server.budget import worker_memory_mb
from collapse_lab.server.checkpoints import Checkpoints
from collapse_lab.server.control import Controls
from collapse_lab.server.dispatch import Dispatch
from collapse_lab.server.groups import Groups
from collapse_lab.server.placement import Placement
from collapse_lab.server.runs import FINAL, LIVE, Conflict, Run, RunState
from collapse_lab.server.settings import Settings
from collapse_lab.server.store import Store
from collapse_lab.server.workers import WorkerHandle, spawn
from collapse_lab.trainer import commands
from collapse_lab.trainer.families import make_config, stack_key
from collapse_lab.trainer.knobs import ConfigError

log = logging.getLogger(__name__)

__all__ = ["FINAL", "LIVE", "Conflict", "Run", "RunState", "Supervisor"]


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
        self.handles: list[WorkerHandle] = []  # live worker processes
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self._keys: dict[str, tuple] = {}  # run id -> stack key of its config
        self.ray_resources: dict[str, float] = {}
        self.tracker: Any = None  # server/api_track.py: runs whose steps come from outside
        self.checkpoints = Checkpoints(settings.checkpoint_dir)
        self.placement = Placement(settings, self.runs, self.handles)
        self.groups = Groups(store, self.runs)
        self.dispatch = Dispatch(self)
        self.controls = Controls(self)

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
        await self.groups.load()

    async def shutdown(self) -> None:
        """Stop every worker: a stop for each run, then terminate, then kill, each after a
        timeout. Queued runs become interrupted at once (no worker starts from here on)."""
        self.closing = True
        if self.tracker is not None:
            self.tracker.interrupt_all()
        for r in self.runs.values():
            if r.status == RunState.queued:
                self.set_status(r, RunState.interrupted,
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

    def forget_key(self, run: Run) -> None:
        """The run's config changed: its stack key is worked out again when next needed."""
        self._keys.pop(run.id, None)

    def schedule(self) -> None:
        if self.closing or self.loop is None:
            return
        for run in self.queued():
            if run.status != RunState.queued:
                continue  # placed just now with the runs it starts with
            try:
                key = self._key(run)
            except ConfigError as e:  # a stored config this version no longer accepts
                self.set_status(run, RunState.failed, f"config: {e}")
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
            w = ray_backend.spawn(spec, key, name, self.loop, self.dispatch.on_message,
                                  self.dispatch.on_exit, self.dispatch.on_bulk,
                                  gpus=s.ray_gpus_per_worker if cuda else 0.0,
                                  cpus=s.ray_cpus_per_worker)
        else:
            w = spawn(spec, key, name, self.loop, self.dispatch.on_message,
                      self.dispatch.on_exit, self.dispatch.on_bulk)
        self.handles.append(w)
        for r in mates:
            self._placed(r, w)

    def _join(self, w: WorkerHandle, run: Run) -> None:
        w.run_ids.append(run.id)
        self._placed(run, w)
        if not w.send(pipe.Join(self._run_spec(run))):  # it is gone: wait for another place
            w.run_ids.remove(run.id)
            run.worker = None
            self.set_status(run, RunState.queued, "waiting for a free worker")
            if self.loop is not None:
                self.loop.call_soon(self.schedule)

    def _placed(self, run: Run, w: WorkerHandle) -> None:
        """The run has a place: it is running from now (its worker says hello when it has
        built it; the websocket waits for that)."""
        run.worker = w
        run.ready.clear()
        self.set_status(run, RunState.running,
                        "resumed from its checkpoint" if run.resume_from else None)

    def set_status(self, run: Run, status: RunState, reason: str | None) -> None:
        """The one way a run changes state: recorded, and told to its viewers if it moved."""
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
            self.send(run, pipe.Watch(run.id, watched, manifold))

    def send(self, run: Run, msg: Any) -> None:
        """A message to the run's worker, if it has one."""
        if run.worker is not None:
            run.worker.send(msg)

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
        self.forget_key(run)
        self.store.delete_run(run.id)
        self.checkpoints.remove_all(run.id)
        run.hub.publish(messages.Status(status="deleted", reason="run deleted"))
