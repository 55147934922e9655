"""Worker processes: spawn, send, read, kill.

A `WorkerHandle` is one spawned process (server/worker.py) training one run or several. A reader
thread per worker receives its messages (server/pipe.py): it writes the bulky ones (ticks,
snapshots) to the store directly and hands the rest to the event loop with
`call_soon_threadsafe`, so the event loop only updates records and forwards already-encoded bytes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from collapse_lab.server import pipe
from collapse_lab.server import worker as worker_mod

log = logging.getLogger(__name__)


@dataclass(eq=False)
class WorkerHandle:
    process: Any  # multiprocessing.Process (spawn context)
    control: Connection
    key: tuple  # the stack key its runs were started with (runs that may join it share it)
    run_ids: list[str] = field(default_factory=list)  # runs it was given, in order
    ended: set[str] = field(default_factory=set)  # runs it reported ended
    hello: set[str] = field(default_factory=set)  # runs it started
    thread: threading.Thread | None = None
    shutdown: bool = False  # stopped because the server is shutting down

    def live(self) -> list[str]:
        return [r for r in self.run_ids if r not in self.ended]

    def send(self, msg: Any) -> bool:
        try:
            self.control.send(msg)
            return True
        except (BrokenPipeError, OSError):
            return False  # it is exiting; its reader thread reports how


Sink = Callable[[WorkerHandle, Any], None]  # called on the event loop with each message


def spawn(spec: pipe.WorkerSpec, key: tuple, name: str, loop: asyncio.AbstractEventLoop,
          on_message: Sink, on_exit: Callable[[WorkerHandle, int | None], None],
          on_bulk: Callable[[Any], None]) -> WorkerHandle:
    """Start a worker process and its reader thread.

    `on_bulk(msg)` runs on the reader thread for ticks and snapshots (store writes) and returns
    the message to forward to the loop (or None); `on_message` and `on_exit` run on the loop.
    """
    ctx = mp.get_context("spawn")
    ctrl_r, ctrl_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=worker_mod.main, args=(spec, ctrl_r, out_w),
                       name=f"collapse-lab-{name}", daemon=True)
    proc.start()
    ctrl_r.close()
    out_w.close()
    w = WorkerHandle(process=proc, control=ctrl_w, key=key,
                     run_ids=[r.run_id for r in spec.runs])
    w.thread = threading.Thread(target=_read, args=(w, out_r, loop, on_message, on_exit,
                                                     on_bulk), daemon=True, name=f"reader-{name}")
    w.thread.start()
    return w


def _read(w: WorkerHandle, conn: Connection, loop: asyncio.AbstractEventLoop, on_message: Sink,
          on_exit: Callable[[WorkerHandle, int | None], None],
          on_bulk: Callable[[Any], Any]) -> None:
    """Reader thread: one per worker, until its pipe closes."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        msg = on_bulk(msg)
        if msg is not None:
            loop.call_soon_threadsafe(on_message, w, msg)
    conn.close()
    w.process.join(10)
    code = w.process.exitcode
    try:
        loop.call_soon_threadsafe(on_exit, w, code)
    except RuntimeError:
        pass  # the loop is closed: the server is gone


def kill_later(loop: asyncio.AbstractEventLoop, w: WorkerHandle, after: float,
               still_needed: Callable[[], bool]) -> None:
    """Terminate the worker after `after` seconds if `still_needed()`; kill it 3 s later."""

    def check() -> None:
        if still_needed() and w.process.is_alive():
            log.warning("worker %s did not stop in time: terminating it", w.process.name)
            w.process.terminate()
            loop.call_later(3.0, lambda: w.process.is_alive() and w.process.kill())

    loop.call_later(after, check)
