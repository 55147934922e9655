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
from typing import Any, Protocol

from collapse_lab.server import pipe
from collapse_lab.server import worker as worker_mod

log = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, msg: Any) -> None: ...


@dataclass(eq=False)
class WorkerHandle:
    process: Any  # a multiprocessing.Process (spawn context), or what quacks like one
    control: Connection | Sender
    key: tuple  # the stack key its runs were started with (runs that may join it share it)
    run_ids: list[str] = field(default_factory=list)  # runs it was given, in order
    ended: set[str] = field(default_factory=set)  # runs it reported ended
    hello: set[str] = field(default_factory=set)  # runs it started
    thread: threading.Thread | None = None
    shutdown: bool = False  # stopped because the server is shutting down
    exit_reason: str | None = None  # why it is gone, when more is known than an exit code

    def live(self) -> list[str]:
        return [r for r in self.run_ids if r not in self.ended]

    def send(self, msg: Any) -> bool:
        try:
            self.control.send(msg)
            return True
        except Exception:  # noqa: BLE001 - it is exiting (or lost); its reader thread says how
            return False


Sink = Callable[[WorkerHandle, Any], None]  # called on the event loop with each message


def spawn(spec: pipe.WorkerSpec, key: tuple, name: str, loop: asyncio.AbstractEventLoop,
          on_message: Sink, on_exit: Callable[[WorkerHandle, int | None], None],
          on_bulk: Callable[[Any], Any]) -> WorkerHandle:
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

    def receive(timeout: float) -> tuple[list[Any], bool]:
        try:
            return [out_r.recv()], False
        except (EOFError, OSError):
            out_r.close()
            proc.join(10)
            return [], True

    w.thread = threading.Thread(target=reader_loop, args=(w, receive, None, loop, on_message,
                                                          on_exit, on_bulk),
                                daemon=True, name=f"reader-{name}")
    w.thread.start()
    return w


def reader_loop(w: WorkerHandle, receive: Callable[[float], tuple[list[Any], bool]],
                lost: Callable[[BaseException], str] | None, loop: asyncio.AbstractEventLoop,
                on_message: Sink, on_exit: Callable[[WorkerHandle, int | None], None],
                on_bulk: Callable[[Any], Any]) -> None:
    """Reader thread: one per worker, until it is done or lost. `receive(timeout)` returns the
    messages waiting and whether the worker has finished; `lost(error)` the reason a worker that
    failed to answer is gone (for backends whose receive can fail)."""
    while True:
        try:
            msgs, done = receive(1.0)
        except Exception as e:  # noqa: BLE001 - a lost remote worker
            if lost is None:
                raise
            w.exit_reason = lost(e)
            break
        for msg in msgs:
            msg = on_bulk(msg)
            if msg is not None:
                loop.call_soon_threadsafe(on_message, w, msg)
        if done:
            break
    try:
        loop.call_soon_threadsafe(on_exit, w, w.process.exitcode)
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
