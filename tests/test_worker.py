"""The worker process on its own: a real spawned process and its two pipes, no server."""

from __future__ import annotations

import multiprocessing as mp
import time

from collapse_lab.server import worker as worker_mod

SMALL = dict(g_width=16, d_width=16, z_dim=4, batch_size=32, eval_samples=300, grid_size=12,
             tick_every=5, device="cpu", steps=1_000_000)


def collect(conn, seconds: float) -> list[tuple]:
    out: list[tuple] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if conn.poll(0.05):
                out.append(conn.recv())
        except EOFError:  # the worker has ended
            break
    return out


def test_unwatched_run_sends_ticks_and_snapshots_but_no_frames(tmp_path):
    ctx = mp.get_context("spawn")
    ctrl_r, ctrl_w = ctx.Pipe(duplex=False)
    out_r, out_w = ctx.Pipe(duplex=False)
    spec = worker_mod.WorkerSpec(run_id="w1", config=SMALL, data_dir=str(tmp_path),
                                 checkpoint=str(tmp_path / "w1.pt"), frame_rate=50,
                                 snapshot_every=10, checkpoint_every=10_000, threads=1,
                                 watched=False)
    p = ctx.Process(target=worker_mod.main, args=(spec, ctrl_r, out_w), daemon=True)
    p.start()
    ctrl_r.close()
    out_w.close()
    try:
        msgs: list[tuple] = []
        deadline = time.monotonic() + 60
        while sum(m[0] == "tick" for m in msgs) < 40 and time.monotonic() < deadline:
            msgs += collect(out_r, 0.5)
        kinds = [m[0] for m in msgs]
        assert kinds[0] == "hello"
        assert "frame" not in kinds  # nobody watches: no frames at all
        # snapshots (replay) go on: one every 10 ticks, each a full picture
        assert kinds.count("snapshot") >= kinds.count("tick") // 10 - 1 >= 3

        ctrl_w.send({"watched": True})
        later = collect(out_r, 3)
        frames = [m for m in later if m[0] == "frame"]
        assert len(frames) >= 10  # 50 a second asked for; a slow machine still gives 10 in 3 s
        ctrl_w.send({"watched": False})
        collect(out_r, 0.5)  # what was already under way
        quiet = collect(out_r, 2)
        assert [m for m in quiet if m[0] == "tick"] and not [m for m in quiet if m[0] == "frame"]
        ctrl_w.send({"action": "stop"})
        rest = collect(out_r, 30)
        assert ("end", "done") == rest[-1][:2]
        assert any(m[0] == "frame" for m in rest)  # the final picture, watched or not
    finally:
        p.kill()
        p.join(10)
