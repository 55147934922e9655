"""Controls of a run: a live change of its knobs, pause / resume / single step / stop, and the
resume of an interrupted run from its checkpoint.

A change is validated once, here, against the trainer's registry (`families.parse_command`); the
server's copy of the run's config changes when the change is accepted, so the next control is
checked against it, and the typed command goes to the run's worker. A tracked run's controls go
to the tracker (server/api_track.py). The supervisor (server/supervisor.py) composes this.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapse_lab.server import messages, pipe
from collapse_lab.server.budget import check_budget
from collapse_lab.server.runs import FINAL, Conflict, Run, RunState
from collapse_lab.server.workers import kill_later
from collapse_lab.trainer import commands
from collapse_lab.trainer.families import make_config, parse_command

if TYPE_CHECKING:
    from collapse_lab.server.supervisor import Supervisor


class Controls:
    def __init__(self, sup: Supervisor):
        self.sup = sup

    async def apply(self, run: Run, cmd: dict[str, Any]) -> dict[str, Any]:
        """Apply a control body; returns what was accepted. Raises ConfigError or Conflict."""
        sup = self.sup
        if sup.tracker is not None and run.config.get("family") == "tracked":
            return await sup.tracker.control(run, cmd)
        st = run.status
        if "set" in cmd:
            if st in FINAL or st == RunState.stopping:
                raise Conflict(f"run {run.id} is {st.value}; only an active run takes changes")
            cfg = make_config(run.config)
            # the one place a change is validated: the worker and the engine trust the value
            change = parse_command(cmd, cfg, live=st != RunState.queued)
            assert isinstance(change, commands.Set)
            accepted = dict(change.changes)
            check_budget(sup.settings.run_memory_mb, cfg.replace(**accepted),
                         step_seconds=sup.settings.run_step_seconds)
            run.config = cfg.replace(**accepted).to_dict()  # the next control sees this
            sup.forget_key(run)
            if st == RunState.queued:  # nothing started: any knob may still change
                sup.store.save_run(run.record())
                return dict(accepted=accepted, applied=True)
            sup.send(run, pipe.Control(run.id, change))
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
        sup.send(run, pipe.Control(run.id, typed))
        return dict(accepted=commands.body(typed), applied=False)

    def _stop(self, run: Run) -> dict[str, Any]:
        sup = self.sup
        st = run.status
        if st == RunState.queued:
            sup.set_status(run, RunState.done, "stopped before it started")
            return dict(accepted={"action": "stop"}, applied=True)
        if st in FINAL or st == RunState.stopping:
            raise Conflict(f"run {run.id} is already {st.value}")
        sup.set_status(run, RunState.stopping, "stop requested")
        sup.send(run, pipe.Control(run.id, commands.Stop()))
        w = run.worker
        if w is not None and sup.loop is not None and len(w.live()) == 1:
            # a worker of its own that does not stop in time is ended; a shared one is not
            # (the other runs would fail with it)
            kill_later(sup.loop, w, sup.settings.stop_timeout,
                       lambda: run.worker is w and run.status == RunState.stopping)
        return dict(accepted={"action": "stop"}, applied=False)

    # ------------------------------------------------------------------ resume
    def _pick_checkpoint(self, run: Run) -> tuple[int, Path | None]:
        """The checkpoint a resume continues from, against the stored series (flushed first)."""
        self.sup.store.flush()
        return self.sup.checkpoints.pick(run.id, self.sup.store.last_tick_step(run.id))

    async def resume(self, run: Run) -> dict[str, Any]:
        """Continue an interrupted run from its newest usable checkpoint: the step the reply
        names is the step training goes on from, and the series has no gap or duplicate."""
        sup = self.sup
        step, path = await asyncio.to_thread(self._pick_checkpoint, run)
        sup.checkpoints.remove_after(run.id, step)  # past the stored series: trained again
        # ticks after the checkpoint are trained again; a config event after it is replayed
        # by nobody, so the stored config is the checkpoint's
        sup.store.truncate_after(run.id, step if path else -1, 1 << 30 if path else -1)
        run.resume_from = str(path) if path else None
        run.step = step
        run.transition(RunState.queued, "resuming")
        run.ended = None
        sup.store.save_run(run.record())
        run.hub.publish(messages.Status(status="queued", reason="resuming"))
        sup.schedule()
        return dict(accepted={"action": "resume"}, applied=True, from_step=step)
