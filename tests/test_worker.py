"""The worker process on its own: a real spawned process and its two pipes, no server."""

from __future__ import annotations

import multiprocessing as mp
import time
from contextlib import contextmanager

import torch

from collapse_lab.server import pipe
from collapse_lab.server import worker as worker_mod

SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=300, grid_size=12,
             tick_every=5, device="cpu", steps=1_000_000)


def collect(conn, seconds: float) -> list:
    out: list = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if conn.poll(0.05):
                out.append(conn.recv())
        except EOFError:  # the worker has ended
            break
    return out


def collect_until(conn, done, timeout: float = 60.0) -> list:
    """Messages until `done(messages)` holds (a loaded machine may take a while to start)."""
    out: list = []
    end = time.monotonic() + timeout
    while not done(out) and time.monotonic() < end:
        out += collect(conn, 0.2)
    assert done(out), f"timed out; got {[type(m).__name__ for m in out][-20:]}"
    return out


@contextmanager
def worker(spec: pipe.WorkerSpec):
    ctx = mp.get_context("spawn")
    ctrl_r, ctrl_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    p = ctx.Process(target=worker_mod.main, args=(spec, ctrl_r, out_w), daemon=True)
    p.start()
    ctrl_r.close()
    out_w.close()
    try:
        yield ctrl_w, out_r
    finally:
        p.kill()
        p.join(10)


def of(msgs: list, kind: type, run: str | None = None) -> list:
    return [m for m in msgs if isinstance(m, kind) and (run is None or m.run_id == run)]


def test_unwatched_run_sends_ticks_and_snapshots_but_no_frames(tmp_path):
    spec = pipe.WorkerSpec(runs=[pipe.RunSpec("w1", SMALL, str(tmp_path / "w1"), watched=False)],
                           data_dir=str(tmp_path), frame_rate=50, snapshot_every=10,
                           checkpoint_every=10_000, threads=1)
    with worker(spec) as (ctrl, out):
        msgs: list = []
        deadline = time.monotonic() + 60
        while len(of(msgs, pipe.Tick)) < 40 and time.monotonic() < deadline:
            msgs += collect(out, 0.5)
        assert isinstance(msgs[0], pipe.Hello) and msgs[0].run_id == "w1"
        assert not of(msgs, pipe.Frame)  # nobody watches: no frames at all
        # snapshots (replay) go on: one every 10 ticks, each a full picture
        assert len(of(msgs, pipe.Snapshot)) >= len(of(msgs, pipe.Tick)) // 10 - 1 >= 3

        ctrl.send(pipe.Watch("w1", True))
        later = collect(out, 3)
        assert len(of(later, pipe.Frame)) >= 10  # 50/s asked for; a slow machine still gives 10
        ctrl.send(pipe.Watch("w1", False))
        collect(out, 0.5)  # what was already under way
        quiet = collect(out, 2)
        assert of(quiet, pipe.Tick) and not of(quiet, pipe.Frame)
        ctrl.send(pipe.Control("w1", {"action": "stop"}))
        rest = collect(out, 30)
        end = of(rest, pipe.End)
        assert [(e.status, e.run_id) for e in end] == [("done", "w1")]
        assert of(rest, pipe.Frame)  # the final picture, watched or not
        assert of(rest, pipe.Checkpoint)  # and its last checkpoint


def test_one_worker_many_runs_each_its_own(tmp_path):
    """Two runs start together, a third joins: each has its own messages and state; pausing
    one leaves the others training; a run that stops ends alone."""
    runs = [pipe.RunSpec(r, dict(SMALL, seed=s), str(tmp_path / r))
            for r, s in (("a", 1), ("b", 2))]
    spec = pipe.WorkerSpec(runs=runs, data_dir=str(tmp_path), frame_rate=20, snapshot_every=5,
                           checkpoint_every=10_000, threads=1)
    with worker(spec) as (ctrl, out):
        msgs = collect_until(out, lambda m: len(of(m, pipe.Tick, "b")) >= 1)
        ctrl.send(pipe.Join(pipe.RunSpec("c", dict(SMALL, seed=3, lr_g=3e-4),
                                         str(tmp_path / "c"))))
        msgs += collect_until(out, lambda m: all(len(of(m, pipe.Tick, r)) >= 2 for r in "abc"))
        assert {h.run_id for h in of(msgs, pipe.Hello)} == {"a", "b", "c"}
        assert of(msgs, pipe.Hello, "c")[0].info["runs_in_step"] == 3  # it joined the stack

        ctrl.send(pipe.Control("a", {"action": "pause"}))
        msgs = collect_until(out, lambda m: of(m, pipe.Event, "a"))
        ev = [m.event for m in of(msgs, pipe.Event, "a")]
        assert ev[0]["type"] == "state" and ev[0]["state"] == "paused"
        quiet = collect(out, 2)
        assert not of(quiet, pipe.Tick, "a") and of(quiet, pipe.Tick, "b")
        ctrl.send(pipe.Control("a", {"action": "step", "n": 1, "part": "d"}))
        one = collect_until(out, lambda m: of(m, pipe.Tick, "a"))
        one += collect(out, 1)
        assert len(of(one, pipe.Tick, "a")) == 1  # a single step ticks, whatever its part

        ctrl.send(pipe.Control("b", {"action": "stop"}))
        rest = collect_until(out, lambda m: of(m, pipe.End) and of(m, pipe.Tick, "c"))
        assert [e.run_id for e in of(rest, pipe.End)] == ["b"]  # c trains on


def test_a_runs_last_frame_goes_before_its_end():
    """The outbox sends ordered messages before the latest-wins frames; a run's final frame
    must still reach the server before its End (a viewer's stream ends there), and replaces
    any older frame of the run still waiting."""
    from collapse_lab.server import pipe
    from collapse_lab.server.worker import Outbox

    box = Outbox()
    box.put_frame(pipe.Frame("a", b"old"))
    box.put_frame(pipe.Frame("b", b"other run"))
    box.put_final_frame(pipe.Frame("a", b"final"))
    box.put(pipe.End("a", "done", "finished"))
    out, closed = box.take(0)
    kinds = [(type(m).__name__, getattr(m, "run_id", None), getattr(m, "data", None)) for m in out]
    assert kinds == [("Frame", "a", b"final"), ("End", "a", None), ("Frame", "b", b"other run")]
    assert not closed


def test_a_checkpoint_whose_folder_vanishes_mid_write_is_written_again(tmp_path):
    """The checkpoints folder deleted between a checkpoint's write and its rename (a person
    cleaning up a data dir): the folder is made again and the checkpoint written there, instead
    of the worker, and every run in it, failing."""
    import shutil

    from collapse_lab.server.worker import write_checkpoint
    from collapse_lab.trainer.family import save_atomic

    folder = tmp_path / "checkpoints"

    class State:
        step = 14
        saves = 0

        def save(self, path):
            self.saves += 1
            if self.saves == 1:  # the first write loses its folder before the rename
                tmp = path.with_suffix(".pt.tmp")
                torch.save({"step": self.step}, tmp)
                shutil.rmtree(folder)
                tmp.replace(path)  # FileNotFoundError, as in save_atomic
            save_atomic({"step": self.step}, path)

    state = State()
    path = write_checkpoint(state, folder / "run")
    assert state.saves == 2 and path == folder / "run-000000014.pt"
    assert torch.load(path)["step"] == 14 and not list(folder.glob("*.tmp"))
