"""Where runs go: the quotas a new run counts against, the order of the queue, and which place a
queued run may take — a free worker slot, or a live worker whose runs it can share a step with.

Decisions only: the supervisor (server/supervisor.py) acts on them (starts a worker, joins one).
`runs` and `handles` are the supervisor's own registry and list of live workers, read here.
"""

from __future__ import annotations

import math

from collapse_lab.server.runs import FINAL, LIVE, Run, RunState
from collapse_lab.server.scheduling import fair_order, is_student
from collapse_lab.server.settings import Settings
from collapse_lab.server.workers import WorkerHandle


class Placement:
    def __init__(self, settings: Settings, runs: dict[str, Run], handles: list[WorkerHandle]):
        self.settings = settings
        self.runs = runs  # run id -> run: every run the server knows
        self.handles = handles  # live worker processes

    # ------------------------------------------------------------------ quotas
    @staticmethod
    def side(owner: str | None) -> str:
        """Whose quota a run counts against: its student, or the teacher's side (the teacher,
        the local user, scripts and compare groups)."""
        return owner if owner and is_student(owner) else "teacher"

    def over_quota(self, owner: str | None, new: int = 1) -> int:
        """How many runs must go before `owner` may keep `new` more: past max_runs on the
        server, or past runs_per_student for a student."""
        extra = len(self.runs) + new - self.settings.max_runs
        side = self.side(owner)
        if side != "teacher":
            mine = sum(self.side(r.owner) == side for r in self.runs.values())
            extra = max(extra, mine + new - self.settings.runs_per_student)
        return max(0, extra)

    def prunable(self, owner: str | None) -> list[Run]:
        """`owner`'s own finished runs, oldest first: all that pruning on their behalf takes."""
        side = self.side(owner)
        return sorted((r for r in self.runs.values()
                       if r.status in FINAL and self.side(r.owner) == side),
                      key=lambda r: r.created)

    # ------------------------------------------------------------------ the queue
    def queued(self) -> list[Run]:
        """Runs waiting for a place, in the order they get one."""
        return fair_order([r for r in self.runs.values() if r.status == RunState.queued],
                          [r for r in self.runs.values() if r.status in LIVE])

    def _left_s(self, run: Run) -> float:
        """About how many seconds `run` trains before it ends by itself (inf: until stopped,
        paused, or no speed measured yet)."""
        if run.status == RunState.stopping:
            return 0.0
        steps = int(run.config.get("steps") or 0)
        rate = (run.last or {}).get("steps_per_sec")
        if run.status != RunState.running or steps <= 0 or not rate or rate <= 0:
            return math.inf
        return max(0.0, (steps - run.step) / float(rate))

    def queue_places(self) -> dict[str, tuple[int, float | None]]:
        """Each queued run's place (1: next) and about how long until a worker is free for it:
        a worker is free when the last of its runs ends, and the n-th run in the queue waits for
        the n-th worker to free up (None where that worker trains a run until it is stopped)."""
        queued = self.queued()
        if not queued:
            return {}
        free = sorted(max((self._left_s(self.runs[r]) for r in w.live() if r in self.runs),
                          default=0.0) for w in self.handles)
        out: dict[str, tuple[int, float | None]] = {}
        for i, run in enumerate(queued):
            t = free[i] if i < len(free) else math.inf
            out[run.id] = (i + 1, None if math.isinf(t) else round(t, 1))
        return out

    # ------------------------------------------------------------------ a place
    def slot_for(self, run: Run) -> bool:
        """May `run` take a free worker slot? Students' runs leave one slot (of two or more) to
        the teacher, whose runs then never wait behind the class; they still pack onto live
        workers."""
        if not is_student(run.owner) or self.settings.max_workers < 2:
            return True
        theirs = sum(1 for w in self.handles
                     if w.live() and all(is_student(self.runs[r].owner)
                                         for r in w.live() if r in self.runs))
        return theirs < self.settings.max_workers - 1

    def _may_share(self, run: Run, w: WorkerHandle) -> bool:
        if self.settings.pack:
            return True
        if not (self.settings.batch_groups and run.group_id):
            return False
        return all(self.runs[r].group_id == run.group_id for r in w.live() if r in self.runs)

    def host_for(self, run: Run, key: tuple) -> WorkerHandle | None:
        """The least loaded live worker this run may join."""
        hosts = [w for w in self.handles
                 if not w.shutdown and w.key == key and 0 < len(w.live()) < self.settings.pack_limit
                 and self._may_share(run, w)]
        return min(hosts, key=lambda w: len(w.live()), default=None)
