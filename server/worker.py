"""The worker process: trains one run with trainer.loop.run and reports to the server.

Started with the `spawn` context (no inherited locks, CUDA-safe). Two one-way pipes connect it to
the server: control commands in, messages out. Frames are encoded here, once, so the server only
forwards bytes. The outgoing channel is bounded in what it keeps: an `Outbox` holds the ordered
messages that must never be dropped (ticks, events, snapshots, checkpoints, the end) and a single
slot for the latest frame (latest wins: an unsent frame is replaced by a newer one). A sender
thread drains it, so a slow server never stalls a training step.

Messages out (tuples, first item the kind):
    ("hello", info, dataset, value_kind, real_bytes, step, version)
    ("tick", scalars)            every tick; scalars include `occupancy`
    ("event", event)             config / state / rejected events from trainer.loop.run
    ("frame", bytes)             at most frame_rate per second
    ("snapshot", step, bytes)    every snapshot_every ticks, and the last tick
    ("checkpoint", step)         after Trainer.save
    ("pong", n)
    ("end", status, reason)      status: done | failed

Besides the control bodies, the server sends `{"watched": bool}` when the run gains its first
viewer or loses its last. An unwatched run draws no frames and no landscape except for the
snapshots that replay needs, so a run nobody looks at trains at the speed of `collapse-lab train`.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ARRAY_KEYS = ("samples", "value_grid", "nearest", "hq", "extent")


@dataclass
class WorkerSpec:
    """What a worker needs to know; pickled to the spawned process."""

    run_id: str
    config: dict[str, Any]
    data_dir: str
    checkpoint: str  # path of this run's checkpoint file
    resume: bool = False  # start from the checkpoint when it exists
    frame_rate: float = 10.0
    snapshot_every: int = 10
    checkpoint_every: int = 50
    threads: int = 1
    watched: bool = True  # someone is viewing the run's stream (updated by {"watched": bool})


class Outbox:
    """Ordered never-dropped messages plus one latest-wins frame slot, sent by a thread."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.cond = threading.Condition()
        self.items: list[tuple] = []
        self.frames: dict[int | None, bytes] = {}  # latest unsent frame per run (None: the run)
        self.dropped = 0
        self.closed = False
        self.thread = threading.Thread(target=self._send, name="outbox", daemon=True)
        self.thread.start()

    def put(self, item: tuple) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify()

    def put_frame(self, frame: bytes, run: int | None = None) -> None:
        """Queue the latest frame of the worker's run (or of run `run` of a batched group)."""
        with self.cond:
            if run in self.frames:
                self.dropped += 1
            self.frames[run] = frame
            self.cond.notify()

    def close(self, timeout: float = 10.0) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout)

    def _send(self) -> None:
        while True:
            with self.cond:
                while not self.items and not self.frames and not self.closed:
                    self.cond.wait()
                items, self.items = self.items, []
                frames, self.frames = self.frames, {}
                done = self.closed and not items and not frames
            try:
                for it in items:
                    self.conn.send(it)
                for run, frame in frames.items():
                    self.conn.send(("frame", frame) if run is None
                                   else ("run", run, ("frame", frame)))
            except (BrokenPipeError, OSError):
                return  # the server is gone; the process ends with the run
            if done:
                return


def drain_control(control: Connection, box: Outbox,
                  timeout: float) -> tuple[list[dict[str, Any]], bool]:
    """Every command waiting on the control pipe (waiting up to `timeout` for the first), pings
    answered on the way. Returns (commands, gone): gone means the server closed the pipe."""
    cmds: list[dict[str, Any]] = []
    if control.poll(timeout):
        while True:
            try:
                msg = control.recv()
            except EOFError:
                return cmds, True
            if isinstance(msg, dict) and "ping" in msg:
                box.put(("pong", msg["ping"]))
            else:
                cmds.append(msg)
            if not control.poll(0):
                break
    return cmds, False


@dataclass
class _LoopState:
    status: str = "running"  # as the frames report it: running | paused
    ticks: int = 0
    due: float = 0.0  # monotonic time the next frame is due
    stop: bool = False
    watched: bool = True  # a viewer is connected: frames are wanted at frame_rate


def take_watched(cmds: list[dict[str, Any]], states: list[Any]) -> list[dict[str, Any]]:
    """Apply the server's `{"watched": bool}` notes (with `"run": i` in a batched group) to
    `states` and return the other commands."""
    rest = []
    for c in cmds:
        if "watched" in c:
            states[int(c.get("run", 0))].watched = bool(c["watched"])
        else:
            rest.append(c)
    return rest


def main(spec: WorkerSpec, control: Connection, out: Connection) -> None:
    """Entry point of the worker process."""
    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s worker: %(message)s")
    if spec.threads > 0 and not spec.config.get("threads"):
        torch.set_num_threads(spec.threads)
    box = Outbox(out)
    try:
        status, reason = _train(spec, control, box)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the server as a reason
        from collapse_lab.trainer.loop import Diverged

        if isinstance(e, Diverged):
            status, reason = "failed", str(e)
        elif isinstance(e, KeyboardInterrupt | SystemExit):
            status, reason = "failed", "worker interrupted"
        else:
            log.error("run %s failed:\n%s", spec.run_id, traceback.format_exc())
            status, reason = "failed", f"{type(e).__name__}: {e}"
    box.put(("end", status, reason))
    box.close()


def _train(spec: WorkerSpec, control: Connection, box: Outbox) -> tuple[str, str]:
    import torch

    from collapse_lab.server.protocol import encode_frame, encode_real
    from collapse_lab.trainer.config import make_config
    from collapse_lab.trainer.loop import Callbacks, Trainer, run
    from collapse_lab.trainer.objectives import get_objective

    data_dir = Path(spec.data_dir)
    ckpt = Path(spec.checkpoint)
    if spec.resume and ckpt.exists():
        trainer = Trainer.restore(ckpt, data_dir)
    else:
        trainer = Trainer(make_config(spec.config), data_dir)
    info = dict(trainer.info(), config=trainer.cfg.to_dict())
    dataset = trainer.data.describe()
    real = trainer.real_samples(2500 if trainer.data.kind == "2d" else 64)
    if trainer.data.kind == "2d":
        modes, _ = trainer.data.assign(torch.as_tensor(real, device=trainer.device))
        modes_np = modes.cpu().numpy()
    else:
        modes_np = None
    box.put(("hello", info, dataset, trainer.objective.value_kind,
             encode_real(real, modes_np, trainer.step, trainer.version), trainer.step,
             trainer.version))

    state = _LoopState(watched=spec.watched)
    period = 1.0 / spec.frame_rate

    def extra() -> dict[str, Any]:
        return {"value_kind": get_objective(trainer.cfg.objective).value_kind,
                "objective": trainer.cfg.objective}

    def on_tick(tick: dict[str, Any]) -> None:
        state.ticks += 1
        scalars = {k: v for k, v in tick.items() if k not in ARRAY_KEYS}
        box.put(("tick", scalars))
        now = time.monotonic()
        frame = None
        if state.watched and (now >= state.due or state.status == "paused"):
            frame = encode_frame(tick, state.status, extra())
            # a schedule, not a minimum gap: ticks that jitter around the period still give
            # frame_rate frames a second on average, never more
            state.due = max(state.due + period, now - period / 2)
            box.put_frame(frame)
        if state.ticks % spec.snapshot_every == 1 or spec.snapshot_every == 1:
            box.put(("snapshot", tick["step"], frame or encode_frame(tick, state.status,
                                                                      extra())))
        if state.ticks % spec.checkpoint_every == 0:
            trainer.save(ckpt)
            box.put(("checkpoint", trainer.step))

    def want_picture() -> bool:
        """D's landscape costs more than the rest of a tick: draw it only for ticks that become
        frames (someone watching) or snapshots."""
        nxt = state.ticks + 1
        return (state.watched and (time.monotonic() >= state.due or state.status == "paused")
                or nxt % spec.snapshot_every == 1 or spec.snapshot_every == 1
                or trainer.step >= trainer.cfg.steps or state.stop)

    def on_event(ev: dict[str, Any]) -> None:
        if ev.get("type") == "state":
            state.status = ev["state"]
        box.put(("event", ev))

    def poll(timeout: float) -> list[dict[str, Any]]:
        cmds, gone = drain_control(control, box, timeout)
        cmds = take_watched(cmds, [state])
        # the server went away: end cleanly with a checkpoint
        if gone or any(c.get("action") == "stop" for c in cmds):
            state.stop = True
        return cmds

    last = run(trainer, Callbacks(on_tick=on_tick, on_event=on_event, poll=poll,
                                  should_stop=lambda: state.stop, want_picture=want_picture))
    final = encode_frame(last, "done", extra())
    box.put(("snapshot", last["step"], final))
    box.put_frame(final)
    trainer.save(ckpt)
    box.put(("checkpoint", trainer.step))
    if trainer.step >= trainer.cfg.steps:
        return "done", f"finished {trainer.step} steps"
    return "done", f"stopped at step {trainer.step}"

