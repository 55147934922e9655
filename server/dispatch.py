"""What the workers say: each message from a worker process (server/pipe.py) lands in the run's
record, the store and the run's viewers, and a worker's exit ends the runs it held.

Two halves, on two threads: `on_bulk` runs on the worker's reader thread and writes the bulk
(ticks, snapshots) to the store, so the event loop never waits on SQLite for them; `on_message`
and `on_exit` run on the loop and change the run's record and state through the supervisor
(server/supervisor.py), which composes this.
"""

from __future__ import annotations

import platform
import sys
import time
from typing import TYPE_CHECKING, Any

from collapse_lab.server import messages, pipe
from collapse_lab.server.runs import FINAL, Run, RunState
from collapse_lab.server.workers import WorkerHandle

if TYPE_CHECKING:
    from collapse_lab.server.supervisor import Supervisor


def project_version() -> str:
    try:
        from importlib.metadata import version

        return version("collapse-lab")
    except Exception:  # noqa: BLE001 - not installed (source checkout)
        return "source"


class Dispatch:
    def __init__(self, sup: Supervisor):
        self.sup = sup

    def on_bulk(self, msg: Any) -> Any:
        """On a worker's reader thread: store writes; returns what the loop still needs."""
        runs, store = self.sup.runs, self.sup.store
        match msg:
            case pipe.Tick(run_id=rid, scalars=t) if rid in runs:
                store.add_tick(rid, t)
            case pipe.Snapshot(run_id=rid, step=step, data=data) if rid in runs:
                store.add_snapshot(rid, step, data)
                if runs[rid].watched:
                    return None  # frames keep the hub's latest picture fresh
        return msg

    def on_message(self, w: WorkerHandle, msg: Any) -> None:
        run = self.sup.runs.get(getattr(msg, "run_id", ""))
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
                store = self.sup.store
                store.save_run(run.record())
                # the ticks up to `step` were queued before this (on the reader thread): once
                # they are committed, older checkpoints are no longer what a resume needs
                store.after_commit(lambda: self.sup.checkpoints.remove_before(run.id, step))
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
                              backend=self.sup.settings.backend)
        run.hello = dict(dataset=dataset, value_kind=msg.value_kind)
        run.real, run.step, run.config_version = msg.real, msg.step, msg.version
        run.resume_from = None
        self.sup.store.save_run(run.record())
        self.sup.store.save_real(run.id, msg.real)
        run.ready.set()

    def _on_event(self, run: Run, ev: dict[str, Any]) -> None:
        sup = self.sup
        sup.store.add_event(run.id, ev)
        run.hub.publish(messages.Event(event=ev))
        kind = ev.get("type")
        if kind == "config":
            run.config, run.config_version = ev["config"], ev["version"]
            sup.forget_key(run)
            sup.store.save_run(run.record())
        elif kind == "rejected" and ev.get("config"):
            run.config = ev["config"]  # what the run really has (the copy ran ahead)
            sup.forget_key(run)
        elif kind == "state" and run.status in (RunState.running, RunState.paused):
            run.step = ev["step"]  # exact: steps since the last tick are not in any tick
            sup.set_status(run, RunState(ev["state"]), ev.get("reason"))

    def on_exit(self, w: WorkerHandle, code: int | None) -> None:
        sup = self.sup
        if w in sup.handles:
            sup.handles.remove(w)
        for rid in w.run_ids:
            run = sup.runs.get(rid)
            if run is None or run.worker is not w or rid in w.ended:
                continue
            if w.shutdown:
                self._finish(run, w, RunState.interrupted, "the server shut down during the run")
            elif run.status == RunState.stopping:
                self._finish(run, w, RunState.done,
                             f"stopped (worker killed after {sup.settings.stop_timeout:g} s)")
            elif rid not in w.hello and code == 0 and run.status == RunState.running:
                # it joined a worker whose last run was ending: the worker finished cleanly
                # without taking it up, so it waits again for a place instead of failing
                run.worker = None
                sup.set_status(run, RunState.queued, "waiting for a free worker")
            else:
                why = w.exit_reason or f"exit code {code}"
                self._finish(run, w, RunState.failed,
                             f"worker died ({why})" if rid in w.hello
                             else f"worker exited before starting the run ({why})")
        if sup.loop and not sup.loop.is_closed():
            sup.schedule()

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
        if run.id in self.sup.runs:
            self.sup.set_status(run, status, reason)
