"""A run as the server keeps it: its record (written through to the store), its state and the
transitions that state may take.

States: queued ⇄ running ⇄ paused → stopping → done | failed | interrupted. Every change goes
through `Run.transition`, which refuses a move the table does not allow; the reason travels with
the state to the store and to every viewer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from collapse_lab.server.fanout import Hub

if TYPE_CHECKING:
    from collapse_lab.server.workers import WorkerHandle


class RunState(str, Enum):
    queued = "queued"
    running = "running"
    paused = "paused"
    stopping = "stopping"
    done = "done"
    failed = "failed"
    interrupted = "interrupted"


FINAL = frozenset({RunState.done, RunState.failed, RunState.interrupted})
LIVE = frozenset({RunState.running, RunState.paused, RunState.stopping})

# from -> the states it may move to
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.queued: frozenset({RunState.running, RunState.done, RunState.failed,
                                RunState.interrupted}),
    # running -> queued: placed on a worker that was ending and never started it: it waits
    # again for a place (server/dispatch.py, `on_exit`)
    RunState.running: frozenset({RunState.queued, RunState.paused, RunState.stopping, *FINAL}),
    RunState.paused: frozenset({RunState.running, RunState.stopping, *FINAL}),
    RunState.stopping: FINAL,
    RunState.done: frozenset(),
    RunState.failed: frozenset(),
    RunState.interrupted: frozenset({RunState.queued}),  # resume
}


class Conflict(Exception):
    """A control that the run's state does not allow (HTTP 409)."""


@dataclass(eq=False)
class Run:
    id: str
    created: float
    status: RunState
    config: dict[str, Any]
    reason: str | None = None
    group_id: str | None = None
    label: str | None = None
    owner: str | None = None  # who started it (a student's browser in classroom mode)
    config_version: int = 0
    step: int = 0
    provenance: dict[str, Any] | None = None
    hello: dict[str, Any] | None = None  # dataset description and value kind, from the worker
    started: float | None = None
    ended: float | None = None
    checkpoint_step: int | None = None
    last: dict[str, Any] | None = None  # the latest tick's scalars
    # not stored
    hub: Hub = field(default_factory=Hub)
    worker: WorkerHandle | None = None
    real: bytes | None = None
    resume_from: str | None = None  # the checkpoint a resumed run continues from
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    watched: bool = False  # what its worker was last told: has the run a viewer?
    manifold: bool = False  # ... and does a viewer want the manifold layer?

    def record(self) -> dict[str, Any]:
        return dict(id=self.id, created=self.created, status=self.status.value,
                    reason=self.reason, config=self.config, group_id=self.group_id,
                    label=self.label, owner=self.owner, config_version=self.config_version,
                    step=self.step, provenance=self.provenance, hello=self.hello,
                    started=self.started, ended=self.ended,
                    checkpoint_step=self.checkpoint_step, last=self.last)

    def transition(self, status: RunState, reason: str | None) -> bool:
        """Move to `status` (with its reason); returns whether anything changed. Raises
        Conflict for a move the table does not allow."""
        if status != self.status and status not in TRANSITIONS[self.status]:
            raise Conflict(f"run {self.id} is {self.status.value}; it cannot become "
                           f"{status.value}")
        changed = status != self.status or reason != self.reason
        self.status, self.reason = status, reason
        if status in FINAL and self.ended is None:
            self.ended = time.time()
        return changed
