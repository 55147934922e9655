"""SQLite (WAL) store: runs, config events, the metric series, replay snapshots, compare groups.

Writes go through one writer thread that batches whatever is queued into a single transaction,
so neither the event loop nor a worker's reader thread ever waits on the disk. Reads use one
connection per thread (WAL lets them run beside the writer) and are called through
`asyncio.to_thread` by the app. `flush()` waits until everything queued so far is committed.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

class AfterCommit:
    """A store queue item: an action for once the writes before it are on disk."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]):
        self.fn = fn


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, created REAL NOT NULL, status TEXT NOT NULL, reason TEXT,
    config TEXT NOT NULL, group_id TEXT, label TEXT, owner TEXT, config_version INTEGER DEFAULT 0,
    step INTEGER DEFAULT 0, provenance TEXT, hello TEXT, real BLOB, started REAL, ended REAL,
    checkpoint_step INTEGER, last TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, step INTEGER NOT NULL,
    version INTEGER, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id, seq);
CREATE TABLE IF NOT EXISTS ticks (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, time REAL, config_version INTEGER,
    data TEXT NOT NULL, PRIMARY KEY (run_id, step)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    run_id TEXT NOT NULL, step INTEGER NOT NULL, frame BLOB NOT NULL,
    PRIMARY KEY (run_id, step));
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY, created REAL NOT NULL, label TEXT, base TEXT NOT NULL,
    varied TEXT NOT NULL);
"""

RUN_COLUMNS = ("id", "created", "status", "reason", "config", "group_id", "label", "owner",
               "config_version", "step", "provenance", "hello", "started", "ended",
               "checkpoint_step", "last")
JSON_COLUMNS = ("config", "provenance", "hello", "last")
ACTIVE = ("queued", "running", "paused", "stopping")
# the reasons of runs found active at start-up: the server before this one stopped without
# shutting down (killed, crashed, power lost); docs/operations.md lists every reason
CRASHED = "the server stopped unexpectedly during the run"
CRASHED_QUEUED = "the server stopped unexpectedly before the run started"

Job = Callable[[sqlite3.Connection], object]  # return value ignored
RETRY_EVERY = 1.0  # seconds between tries of a transaction the full disk refused
RETRY_FOR = 600.0  # seconds of tries before its writes are given up (and logged)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Store:
    def __init__(self, path: Path, max_snapshots: int = 400, max_ticks: int = 20_000):
        self.path = Path(path)
        self.max_ticks = max_ticks
        self._tick_counts: dict[str, int] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_snapshots = max_snapshots
        conn = _connect(self.path)
        conn.executescript(SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        if "owner" not in have:  # a data dir from a version without run owners
            conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
        conn.commit()
        conn.close()
        self._q: queue.Queue[Job | threading.Event | AfterCommit | None] = queue.Queue(
            maxsize=100_000)
        self._local = threading.local()
        self._snap_counts: dict[str, int] = {}
        self.disk_full: str | None = None  # why writes wait, while the disk is full
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ writer
    def _writer(self) -> None:
        conn = _connect(self.path)
        while True:
            item = self._q.get()
            batch = [item]
            while len(batch) < 1000:  # one transaction for whatever piled up
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            waiters = [b for b in batch if isinstance(b, threading.Event)]
            after: list[AfterCommit] = [b for b in batch if isinstance(b, AfterCommit)]
            jobs = [b for b in batch if callable(b)
                    and not isinstance(b, (threading.Event, AfterCommit))]
            if not self._commit(conn, jobs, closing=any(b is None for b in batch)):
                after = []  # what waited on these writes must not act as if they were kept
            for a in after:
                try:
                    a.fn()
                except Exception:
                    log.exception("after-commit action failed")
            for w in waiters:
                w.set()
            if any(b is None for b in batch):
                conn.close()
                return

    def _commit(self, conn: sqlite3.Connection, jobs: list[Job], closing: bool) -> bool:
        """Run `jobs` in one transaction. On a full disk the same transaction is tried again,
        every RETRY_EVERY seconds for up to RETRY_FOR (a few while closing), so freeing space
        loses nothing; `disk_full` says so meanwhile. False: the writes are lost (logged)."""
        from collapse_lab.server.diskspace import disk_full_message, is_disk_full

        end = time.monotonic() + (RETRY_EVERY * 3 if closing else RETRY_FOR)
        while True:
            try:
                with conn:
                    for job in jobs:
                        job(conn)
                if self.disk_full:
                    log.warning("store writes go through again (%d waited)", len(jobs))
                    self.disk_full = None
                return True
            except sqlite3.Error as e:
                if not is_disk_full(e, self.path.parent) or time.monotonic() > end:
                    log.error("store write failed (%s); %d writes lost", e, len(jobs))
                    self.disk_full = None
                    return False
                if not self.disk_full:
                    self.disk_full = disk_full_message(self.path.parent,
                                                       "the store cannot be written")
                    log.warning("%s; retrying every %g s", self.disk_full, RETRY_EVERY)
                time.sleep(RETRY_EVERY)

    def submit(self, job: Job) -> None:
        self._q.put(job)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call `fn` on the writer thread once everything queued before it is committed."""
        self._q.put(AfterCommit(fn))

    def flush(self, timeout: float = 30.0) -> None:
        ev = threading.Event()
        self._q.put(ev)
        ev.wait(timeout)

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(30)

    # ------------------------------------------------------------------ writes
    def save_run(self, run: dict[str, Any]) -> None:
        row = {k: run.get(k) for k in RUN_COLUMNS}
        for k in JSON_COLUMNS:
            row[k] = None if row[k] is None else json.dumps(row[k], allow_nan=False,
                                                            default=str)
        cols = ",".join(RUN_COLUMNS)
        marks = ",".join("?" * len(RUN_COLUMNS))
        upd = ",".join(f"{c}=excluded.{c}" for c in RUN_COLUMNS if c != "id")
        values = tuple(row[k] for k in RUN_COLUMNS)
        self.submit(lambda c: c.execute(
            f"INSERT INTO runs ({cols}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {upd}",
            values))

    def save_real(self, run_id: str, real: bytes) -> None:
        self.submit(lambda c: c.execute("UPDATE runs SET real=? WHERE id=?", (real, run_id)))

    def add_tick(self, run_id: str, scalars: dict[str, Any]) -> None:
        """Store a tick. Past `max_ticks` of a run, its older half is thinned (every other tick
        dropped) while the newest `max_ticks // 2` stay at full resolution: a long run's curve
        keeps its recent detail and its whole shape in a bounded size, older stretches sparser
        the older they are."""
        data = json.dumps(scalars, default=_nan_none)
        row = (run_id, scalars["step"], scalars.get("time"), scalars.get("config_version"), data)
        if run_id not in self._tick_counts:  # a run from before a restart: count what it has
            have = self._reader().execute("SELECT COUNT(*) FROM ticks WHERE run_id=?",
                                          (run_id,)).fetchone()
            self._tick_counts[run_id] = int(have[0]) if have else 0
        n = self._tick_counts[run_id] + 1
        self._tick_counts[run_id] = n
        thin = n > self.max_ticks
        keep = self.max_ticks // 2

        def job(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO ticks VALUES (?,?,?,?,?)", row)
            if thin:
                c.execute("""DELETE FROM ticks WHERE run_id=? AND step IN (
                    SELECT step FROM (SELECT step, row_number() OVER (ORDER BY step) AS rn
                                      FROM ticks WHERE run_id=? AND step < (
                                          SELECT MIN(step) FROM (SELECT step FROM ticks
                                          WHERE run_id=? ORDER BY step DESC LIMIT ?)))
                    WHERE rn % 2 = 0)""", (run_id, run_id, run_id, keep))

        if thin:  # what stays: the recent half, and half of the rest
            self._tick_counts[run_id] = keep + (n - keep) // 2 + 1
        self.submit(job)

    def add_event(self, run_id: str, event: dict[str, Any]) -> None:
        data = json.dumps(event, default=_nan_none)
        self.submit(lambda c: c.execute(
            "INSERT INTO events (run_id, step, version, event) VALUES (?,?,?,?)",
            (run_id, event.get("step", 0), event.get("version"), data)))

    def add_snapshot(self, run_id: str, step: int, frame: bytes) -> None:
        n = self._snap_counts.get(run_id, 0) + 1
        self._snap_counts[run_id] = n
        thin = n > self.max_snapshots

        def job(c: sqlite3.Connection) -> None:
            c.execute("INSERT OR REPLACE INTO snapshots VALUES (?,?,?)", (run_id, step, frame))
            if thin:  # keep every other snapshot: replay stays even in time, storage bounded
                c.execute("""DELETE FROM snapshots WHERE run_id=? AND step IN (
                    SELECT step FROM (SELECT step, row_number() OVER (ORDER BY step) AS rn
                                      FROM snapshots WHERE run_id=?) WHERE rn % 2 = 0)""",
                          (run_id, run_id))

        if thin:
            self._snap_counts[run_id] = self.max_snapshots // 2 + 1
        self.submit(job)

    def truncate_after(self, run_id: str, step: int, version: int) -> None:
        """Before resuming from a checkpoint at `step`: drop what came after it."""
        self._tick_counts.pop(run_id, None)  # counted again at the next tick
        def job(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM ticks WHERE run_id=? AND step>?", (run_id, step))
            c.execute("DELETE FROM snapshots WHERE run_id=? AND step>?", (run_id, step))
            c.execute("DELETE FROM events WHERE run_id=? AND (step>? OR version>?)",
                      (run_id, step, version))
        self.submit(job)

    def delete_run(self, run_id: str) -> None:
        def job(c: sqlite3.Connection) -> None:
            for t, col in (("ticks", "run_id"), ("snapshots", "run_id"), ("events", "run_id"),
                           ("runs", "id")):
                c.execute(f"DELETE FROM {t} WHERE {col}=?", (run_id,))
        self._snap_counts.pop(run_id, None)
        self._tick_counts.pop(run_id, None)
        self.submit(job)

    def save_group(self, group: dict[str, Any]) -> None:
        vals = (group["id"], group["created"], group.get("label"), json.dumps(group["base"]),
                json.dumps(group["varied"]))
        self.submit(lambda c: c.execute("INSERT OR REPLACE INTO groups VALUES (?,?,?,?,?)",
                                        vals))

    # ------------------------------------------------------------------ reads (any thread)
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            self._local.conn = conn
        return conn

    def mark_interrupted(self) -> int:
        """At start-up: runs that were active when the server died become `interrupted`."""
        conn = _connect(self.path)
        with conn:
            cur = conn.execute(
                "UPDATE runs SET status='interrupted', ended=?, reason=CASE status WHEN 'queued' "
                "THEN ? ELSE ? END WHERE status IN "
                f"({','.join('?' * len(ACTIVE))})",
                (time.time(), CRASHED_QUEUED, CRASHED, *ACTIVE))
        conn.close()
        return cur.rowcount

    def load_runs(self) -> list[dict[str, Any]]:
        cur = self._reader().execute(f"SELECT {','.join(RUN_COLUMNS)} FROM runs ORDER BY created")
        out = []
        for row in cur.fetchall():
            d = dict(zip(RUN_COLUMNS, row, strict=False))
            for k in JSON_COLUMNS:
                d[k] = None if d[k] is None else json.loads(d[k])
            out.append(d)
        return out

    def load_groups(self) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT id, created, label, base, varied FROM groups ORDER BY created").fetchall()
        return [dict(id=r[0], created=r[1], label=r[2], base=json.loads(r[3]),
                     varied=json.loads(r[4])) for r in rows]

    def real(self, run_id: str) -> bytes | None:
        row = self._reader().execute("SELECT real FROM runs WHERE id=?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def ticks(self, run_id: str, since: int = -1, limit: int = 1_000_000) -> list[dict]:
        rows = self._reader().execute(
            "SELECT data FROM ticks WHERE run_id=? AND step>? ORDER BY step LIMIT ?",
            (run_id, since, limit)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def tick_rows(self, run_id: str, since: int, limit: int) -> list[tuple[int, str]]:
        """(step, stored JSON text) of up to `limit` ticks after step `since`, oldest first:
        the history streams these without parsing them (server/api_runs.py)."""
        return self._reader().execute(
            "SELECT step, data FROM ticks WHERE run_id=? AND step>? ORDER BY step LIMIT ?",
            (run_id, since, limit)).fetchall()

    def last_tick_step(self, run_id: str) -> int | None:
        """The step of the run's newest stored tick (None: no tick)."""
        row = self._reader().execute("SELECT MAX(step) FROM ticks WHERE run_id=?",
                                     (run_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT event FROM events WHERE run_id=? ORDER BY seq", (run_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def snapshots(self, run_id: str, limit: int = 100_000) -> list[bytes]:
        rows = self._reader().execute(
            "SELECT frame FROM snapshots WHERE run_id=? ORDER BY step LIMIT ?",
            (run_id, limit)).fetchall()
        return [bytes(r[0]) for r in rows]


def _nan_none(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
