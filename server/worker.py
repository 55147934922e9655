"""The worker process: trains one run or many with one trainer.loop.Trainer, and reports.

Started with the `spawn` context (no inherited locks, CUDA-safe). Two one-way pipes connect it to
the server (messages in server/pipe.py). Frames are encoded here, once, so the server only
forwards bytes. The outgoing channel is bounded in what it keeps: an `Outbox` holds the ordered
messages that must never be dropped (ticks, events, snapshots, checkpoints, ends) and one slot
per run for its latest frame (latest wins). A sender thread drains it, so a slow server never
stalls a training step.

Every run of the worker is a run of its own to the server: its own messages, frame schedule,
snapshots, checkpoints, pause and end. Runs that can share a stacked step train in one engine
(docs/families.md); the trainer moves a run out when it is paused or changes shape.

A run nobody watches draws no frames and no D landscape except for the snapshots that replay
needs, so it trains at the speed of `collapse-lab train`. When the server goes away (its pipe
closes) every run stops without writing a checkpoint past what the server recorded.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collapse_lab.server import pipe
from collapse_lab.server.protocol import FRAME_KEYS
from collapse_lab.trainer.commands import Command, Event, Pause, StateChanged, to_dict

log = logging.getLogger(__name__)

class Outbox:
    """Ordered never-dropped messages plus one latest-wins frame slot per run.

    The worker puts; a sender drains with `take`: the pipe's sender thread (`send_from`), or the
    Ray actor's `recv` (server/ray_backend.py). Either way a slow server never stalls a step.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: list[Any] = []
        self.frames: dict[str, pipe.Frame] = {}  # the latest unsent frame of each run
        self.dropped = 0
        self.closed = False

    def put(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def put_frame(self, frame: pipe.Frame) -> None:
        with self.cond:
            if frame.run_id in self.frames:
                self.dropped += 1
            self.frames[frame.run_id] = frame
            self.cond.notify_all()

    def put_final_frame(self, frame: pipe.Frame) -> None:
        """A run's last frame, in order with the ordered messages (before its End, which a
        viewer's stream ends on); a pending older frame of the run is dropped."""
        with self.cond:
            self.frames.pop(frame.run_id, None)
            self.items.append(frame)
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def take(self, timeout: float | None = None) -> tuple[list[Any], bool]:
        """Everything waiting — the ordered messages, then each run's latest frame — after up
        to `timeout` seconds for the first; and whether the box is closed and drained."""
        with self.cond:
            if not self.items and not self.frames and not self.closed:
                self.cond.wait(timeout)
            out = self.items + list(self.frames.values())
            self.items, self.frames = [], {}
            return out, self.closed and not out


def send_from(box: Outbox, conn: Connection) -> threading.Thread:
    """A thread that sends everything put into `box` down the pipe `conn`, until closed."""

    def run() -> None:
        while True:
            msgs, done = box.take()
            try:
                for m in msgs:
                    conn.send(m)
            except (BrokenPipeError, OSError):
                return  # the server is gone; the runs end with the process
            if done:
                return

    t = threading.Thread(target=run, name="outbox", daemon=True)
    t.start()
    return t


@dataclass
class _View:
    """What the worker tracks of one run for the server: its frame schedule and state."""

    spec: pipe.RunSpec
    status: str = "running"  # as frames report it: running | paused
    ticks: int = 0
    due: float = 0.0  # monotonic time the next frame is due
    ended: bool = False


def write_checkpoint(state: Any, prefix: Path) -> Path:
    """Write `<prefix>-<step>.pt` (atomically). The server removes older ones once the series
    up to this step is stored (server/dispatch.py, on a `Checkpoint`): a worker running
    ahead of the store never deletes the checkpoint a resume would need."""
    path = prefix.parent / f"{prefix.name}-{state.step:09d}.pt"

    def write() -> None:
        prefix.parent.mkdir(parents=True, exist_ok=True)  # deleted mid-run: made again
        try:
            state.save(path)
        except BaseException:
            path.with_suffix(path.suffix + ".tmp").unlink(missing_ok=True)  # no half file left
            raise

    try:
        write()
    except Exception:
        if prefix.parent.is_dir():
            raise
        write()  # the folder went away while it was written: once more, in a new one
    return path


def main(spec: pipe.WorkerSpec, control: Connection, out: Connection) -> None:
    """Entry point of the worker process."""
    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s worker: %(message)s")
    limit_memory(spec.memory_mb)
    if spec.threads > 0:
        torch.set_num_threads(spec.threads)
    box = Outbox()
    sender = send_from(box, out)
    serve(spec, control, box)
    sender.join(10)


def limit_memory(mb: int) -> None:
    """Cap this process's address space at `mb` MB (RLIMIT_AS): a run whose memory the
    estimate got wrong fails here with "out of memory", and the machine keeps its memory."""
    if mb <= 0:
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = mb << 20
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    except (ValueError, OSError) as e:
        log.warning("cannot limit the worker's memory to %d MB: %s", mb, e)


def _reason(e: BaseException) -> str:
    """A worker's failure in words: memory exhaustion named as such."""
    text = str(e)
    if isinstance(e, MemoryError) or "can't allocate memory" in text or \
            "not enough memory" in text:
        import resource

        cap = resource.getrlimit(resource.RLIMIT_AS)[0]
        where = (f"the worker's limit of {cap >> 20} MB (setting worker_memory_mb)"
                 if cap != resource.RLIM_INFINITY else "the machine's memory")
        return (f"out of memory: the run needed more than {where}; lower batch_size, "
                "mbd_kernels or the network sizes")
    return f"{type(e).__name__}: {text}"[:500]


def serve(spec: pipe.WorkerSpec, control: Any, box: Outbox) -> None:
    """Train the spec's runs (and those that join) until every one has ended; `control` is
    anything with a pipe's `poll(timeout)` and `recv()` (EOFError when the server is gone)."""
    views: dict[str, _View] = {}
    try:
        _Worker(spec, control, box, views).run()
    except BaseException as e:  # noqa: BLE001 - every failure must reach the server as a reason
        if isinstance(e, KeyboardInterrupt | SystemExit):
            reason = "worker interrupted"
        else:
            log.error("worker failed:\n%s", traceback.format_exc())
            reason = _reason(e)
        for rid, v in views.items():
            if not v.ended:
                v.ended = True
                box.put(pipe.End(rid, "failed", reason))
    box.close()


class _Worker:
    def __init__(self, spec: pipe.WorkerSpec, control: Any, box: Outbox,
                 views: dict[str, _View]):
        from collapse_lab.trainer.loop import Trainer

        self.spec, self.control, self.box, self.views = spec, control, box, views
        self.period = 1.0 / spec.frame_rate
        self.trainer = Trainer(Path(spec.data_dir), pack=spec.pack)
        self.gone = False  # the server closed the pipe
        self.later: list[tuple[str, Command]] = []  # commands the worker gives itself

    # ------------------------------------------------------------------ runs
    def join(self, rs: pipe.RunSpec) -> None:
        from collapse_lab.server.protocol import encode_real
        from collapse_lab.trainer import families
        from collapse_lab.trainer.loop import Callbacks

        view = self.views[rs.run_id] = _View(rs)
        rid = rs.run_id
        try:
            source = (families.load_checkpoint(rs.resume_from) if rs.resume_from
                      else families.make_config(rs.config))
            cb = Callbacks(on_tick=lambda t: self.on_tick(rid, t),
                           on_event=lambda e: self.on_event(rid, e),
                           on_end=lambda status, why: self.on_end(rid, status, why),
                           want_picture=lambda: self.want_picture(rid),
                           want_manifold=lambda: self.views[rid].spec.manifold
                           and self.frame_due(rid))
            tr = self.trainer
            run = tr.add(rid, source, None, tick=False)
        except Exception as e:  # a run that cannot start fails alone
            log.error("run %s cannot start:\n%s", rid, traceback.format_exc())
            view.ended = True
            self.box.put(pipe.End(rid, "failed", _reason(e)))
            return
        real, modes = tr.real_samples(rid)
        info = dict(tr.info(rid), config=run.cfg.to_dict(), pid=os.getpid(),
                    host=socket.gethostname())
        look = families.of(run.cfg).frame_info(run.cfg)
        self.box.put(pipe.Hello(rid, info, look.get("value_kind", ""),
                                encode_real(real, modes, run.step, run.version),
                                run.step, run.version))
        run.cb = cb
        if run.step == 0:
            tr.tick([rid])  # the first picture (a resumed run's tick at its step exists)

    # ------------------------------------------------------------------ callbacks
    def frame_due(self, rid: str) -> bool:
        v = self.views[rid]
        return v.spec.watched and (time.monotonic() >= v.due or v.status == "paused")

    def snapshot_due(self, rid: str) -> bool:
        n = self.spec.snapshot_every
        return n == 1 or (self.views[rid].ticks + 1) % n == 1

    def want_picture(self, rid: str) -> bool:
        """D's landscape costs more than the rest of a tick: only for ticks that become frames
        (someone watching) or snapshots, and the last one."""
        from collapse_lab.trainer.loop import finished

        run = self.trainer.runs[rid]
        return self.frame_due(rid) or self.snapshot_due(rid) or run.stop or finished(run)

    def extra(self, rid: str) -> dict[str, Any]:
        from collapse_lab.trainer import families

        cfg = self.trainer.runs[rid].cfg
        # `sent`: the wall clock when the frame was made, so a viewer can tell how old it is
        return {**families.of(cfg).frame_info(cfg), "family": cfg.family,
                "sent": round(time.time(), 3)}

    def on_tick(self, rid: str, tick: dict[str, Any]) -> None:
        from collapse_lab.server.protocol import encode_frame

        v = self.views[rid]
        snapshot = self.snapshot_due(rid)
        v.ticks += 1
        self.box.put(pipe.Tick(rid, {k: x for k, x in tick.items() if k not in FRAME_KEYS}))
        now = time.monotonic()
        frame = None
        pictured = "value_grid" in tick or "extent" not in tick  # images need no landscape
        if pictured and v.spec.watched and (now >= v.due or v.status == "paused"):
            frame = encode_frame(tick, v.status, self.extra(rid))
            # a schedule, not a minimum gap: ticks that jitter around the period still give
            # frame_rate frames a second on average, never more
            v.due = max(v.due + self.period, now - self.period / 2)
            self.box.put_frame(pipe.Frame(rid, frame))
        if snapshot and pictured:
            self.box.put(pipe.Snapshot(rid, tick["step"],
                                       frame or encode_frame(tick, v.status, self.extra(rid))))
        if v.ticks % self.spec.checkpoint_every == 0 and not self.gone:
            self.checkpoint(rid, self.trainer.state(rid))

    def checkpoint(self, rid: str, state: Any) -> bool:
        """Write a checkpoint; on a full disk the run is paused with "disk full: …" (its
        training so far is kept, and resuming it once there is space goes on) instead of
        failing with the file system's words. False when nothing was written."""
        from collapse_lab.server.diskspace import disk_full_message, is_disk_full

        prefix = Path(self.views[rid].spec.checkpoint)
        try:
            path = write_checkpoint(state, prefix)
        except Exception as e:
            if not is_disk_full(e, prefix.parent):
                raise
            why = disk_full_message(prefix.parent, f"the checkpoint at step {state.step} "
                                    "could not be written")
            log.warning("run %s: %s", rid, why)
            # applied between steps, not from inside this tick
            self.later.append((rid, Pause(reason=why)))
            return False
        self.box.put(pipe.Checkpoint(rid, state.step, str(path)))
        return True

    def on_event(self, rid: str, ev: Event) -> None:
        if isinstance(ev, StateChanged):
            self.views[rid].status = ev.state
        self.box.put(pipe.Event(rid, to_dict(ev)))

    def on_end(self, rid: str, status: str, reason: str) -> None:
        from collapse_lab.server.protocol import encode_frame

        v = self.views[rid]
        run = self.trainer.runs[rid]
        if run.last is not None and status == "done":
            final = encode_frame(run.last, "done", self.extra(rid))
            self.box.put(pipe.Snapshot(rid, run.last["step"], final))
            self.box.put_final_frame(pipe.Frame(rid, final))
        if run.final is not None and not self.gone and status == "done":
            self.checkpoint(rid, run.final)
        v.ended = True
        self.box.put(pipe.End(rid, status, reason))

    # ------------------------------------------------------------------ the loop
    def handle(self, msg: Any) -> None:
        match msg:
            case pipe.Control(run_id=rid, cmd=cmd):
                self.trainer.command(rid, cmd)
            case pipe.Watch(run_id=rid, watched=w, manifold=m):
                if rid in self.views:
                    self.views[rid].spec.watched, self.views[rid].spec.manifold = w, m
            case pipe.Join(run=rs):
                self.join(rs)
            case pipe.Ping(n=n):
                self.box.put(pipe.Pong(n))
            case _:
                log.warning("unknown message %r", type(msg).__name__)

    def poll(self, timeout: float) -> None:
        """Every message waiting on the control pipe (waiting up to `timeout` for the first)."""
        if not self.control.poll(timeout):
            return
        while True:
            try:
                msg = self.control.recv()
            except (EOFError, OSError):
                self.gone = True
                return
            self.handle(msg)
            if not self.control.poll(0):
                return

    def run(self) -> None:
        for rs in self.spec.runs:
            self.join(rs)
        tr = self.trainer
        while True:
            while tr.active():
                self.poll(min(tr.wait_time(), 0.1))
                if self.gone:  # the server went away: every run ends, nothing past its record
                    tr.stop_all()
                tr.advance()
                while self.later:
                    rid, cmd = self.later.pop(0)
                    tr.command(rid, cmd)
            # a run that joined as the last one ended is trained rather than dropped (the
            # server also puts one this worker never started back in the queue)
            if self.gone:
                return
            self.poll(0.05)
            if not tr.active():
                return
