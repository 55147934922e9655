"""The worker process of a batched compare group: R runs trained as one BatchedTrainer.

The runs of a compare group that agree on everything that shapes the step (trainer/batched.py,
`group_key`) train in one process, one set of stacked kernels. To the server every run still
looks like a run of its own: this process speaks server/worker.py's messages, each wrapped as
`("run", i, message)` for run i of the group, and encodes every run's frames itself.

Control commands arrive as the HTTP control body plus `"run": i`:
- `{"set": ...}` changes run i only (values and the objective; BatchedTrainer refuses a knob
  that shapes the step, answered as a `rejected` event naming it);
- `stop` ends run i alone: it gets its final frame and `end`, the others train on (its slot in
  the stacked step keeps computing, unseen, until the group ends);
- `pause`, `resume` and `step` act on the whole group, since its runs share one step; every run
  reports the state change.
The process ends when every run has ended. Checkpoints are not written: a batched run that is
interrupted starts again from step 0 when resumed.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from collapse_lab.server.worker import ARRAY_KEYS, Outbox, _LoopState, drain_control, take_watched

log = logging.getLogger(__name__)


@dataclass
class BatchSpec:
    """What a batched worker needs to know; pickled to the spawned process."""

    run_ids: list[str]
    configs: list[dict[str, Any]]
    data_dir: str
    frame_rate: float = 10.0
    snapshot_every: int = 10
    threads: int = 1
    watched: list[bool] | None = None  # per run; None: all watched


@dataclass
class _RunState(_LoopState):
    """One run's frame schedule and state (as a single worker keeps it), plus its end."""

    ended: bool = False
    last: dict[str, Any] | None = field(default=None, repr=False)


def main(spec: BatchSpec, control: Connection, out: Connection) -> None:
    """Entry point of the batched worker process."""
    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s worker: %(message)s")
    if spec.threads > 0 and not spec.configs[0].get("threads"):
        torch.set_num_threads(spec.threads)
    box = Outbox(out)
    states = [_RunState(watched=w) for w in (spec.watched or [True] * len(spec.run_ids))]
    try:
        _train(spec, control, box, states)
    except BaseException as e:  # noqa: BLE001 - every failure must reach the server as a reason
        if isinstance(e, KeyboardInterrupt | SystemExit):
            reason = "worker interrupted"
        else:
            log.error("batched group %s failed:\n%s", spec.run_ids, traceback.format_exc())
            reason = f"{type(e).__name__}: {e}"
        for i, st in enumerate(states):
            if not st.ended:
                st.ended = True
                box.put(("run", i, ("end", "failed", reason)))
    box.close()


def _train(spec: BatchSpec, control: Connection, box: Outbox, states: list[_RunState]) -> None:
    import torch

    from collapse_lab.server.protocol import encode_frame, encode_real
    from collapse_lab.trainer.batched import BatchedTrainer
    from collapse_lab.trainer.config import ConfigError, make_config
    from collapse_lab.trainer.loop import Pacer
    from collapse_lab.trainer.objectives import get_objective

    bt = BatchedTrainer([make_config(c) for c in spec.configs], Path(spec.data_dir))
    r = bt.runs
    period = 1.0 / spec.frame_rate
    real = bt.real_samples(2500 if bt.data.kind == "2d" else 64)
    modes_np = None
    if bt.data.kind == "2d":
        modes, _ = bt.data.assign(torch.as_tensor(real, device=bt.device))
        modes_np = modes.cpu().numpy()
    real_bytes = encode_real(real, modes_np, 0, 0)
    dataset = bt.data.describe()
    base = dict(bt.info(), cuda_graph=False,
                cuda_graph_reason=f"trains batched with {r} runs of its compare group")
    for i, c in enumerate(bt.cfgs):
        info = dict(base, config=c.to_dict(), batched_index=i, batched_runs=list(spec.run_ids))
        box.put(("run", i, ("hello", info, dataset, get_objective(c.objective).value_kind,
                            real_bytes, 0, 0)))

    def live() -> list[int]:
        return [i for i, st in enumerate(states) if not st.ended]

    def send(i: int, msg: tuple) -> None:
        box.put(("run", i, msg))

    def extra(i: int) -> dict[str, Any]:
        c = bt.cfgs[i]
        return {"value_kind": get_objective(c.objective).value_kind, "objective": c.objective}

    def snapshot_due(st: _RunState) -> bool:
        return (st.ticks + 1) % spec.snapshot_every == 1 or spec.snapshot_every == 1

    def want_picture(final: bool) -> bool:
        """D's landscape for the group when any run will show this tick."""
        now = time.monotonic()
        return final or any(
            (states[i].watched and (now >= states[i].due or states[i].status == "paused"))
            or snapshot_due(states[i]) for i in live())

    def end(i: int, status: str, reason: str) -> None:
        states[i].ended = True
        send(i, ("end", status, reason))

    def tick(final: bool = False) -> None:
        ticks = bt.tick(picture=want_picture(final))
        for i in live():
            t, st = ticks[i], states[i]
            if i in bt.failed:  # as Trainer.tick raises Diverged: no tick, the run fails
                end(i, "failed", bt.failed[i])
                continue
            st.ticks += 1
            st.last = t
            send(i, ("tick", {k: v for k, v in t.items() if k not in ARRAY_KEYS}))
            now = time.monotonic()
            frame = None
            pictured = bt.data.kind != "2d" or "value_grid" in t
            if pictured and st.watched and (now >= st.due or st.status == "paused"):
                frame = encode_frame(t, st.status, extra(i))
                st.due = max(st.due + period, now - period / 2)
                box.put_frame(frame, i)
            if st.ticks % spec.snapshot_every == 1 or spec.snapshot_every == 1:
                send(i, ("snapshot", t["step"], frame or encode_frame(t, st.status, extra(i))))

    def stale(i: int) -> bool:
        """Run i has no tick at the current step yet."""
        last = states[i].last
        return last is None or last["step"] != bt.step

    def finish(i: int) -> None:
        """Run i's final frame and its end, from a tick at the current step."""
        st = states[i]
        assert st.last is not None
        final = encode_frame(st.last, "done", extra(i))
        send(i, ("snapshot", st.last["step"], final))
        box.put_frame(final, i)
        steps = bt.cfgs[i].steps
        end(i, "done", f"finished {bt.step} steps" if bt.step >= steps
            else f"stopped at step {bt.step}")

    def poll(timeout: float) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """Commands for runs of the group, by run index; gone: the server went away."""
        msgs, gone = drain_control(control, box, timeout)
        msgs = take_watched(msgs, states)
        return [(int(m.pop("run", 0)), m) for m in msgs], gone

    tick(final=True)
    pacer = Pacer()  # the group pauses and single-steps as one
    steps = bt.cfgs[0].steps  # shared by the group (a knob that fixes its schedule)
    while bt.step < steps and live():
        cmds, gone = poll(pacer.wait())
        for i, cmd in cmds:
            if i < 0 or i >= r or states[i].ended:
                continue
            action = cmd.get("action")
            if "set" in cmd:
                try:
                    send(i, ("event", bt.apply(i, cmd["set"])))
                except ConfigError as e:
                    send(i, ("event", dict(type="rejected", field=e.field, step=bt.step,
                                           message=f"this run trains batched with its group: "
                                                   f"{e.message}")))
            elif action == "stop":
                states[i].stop = True
            elif state := pacer.handle(action, cmd.get("n", 1)):
                for j in live():
                    states[j].status = state
                    send(j, ("event", dict(type="state", state=state, step=bt.step)))
        stopping = [i for i in live() if states[i].stop or gone]
        if stopping:
            if any(stale(i) for i in stopping):
                tick(final=True)
            for i in stopping:
                if not states[i].ended:
                    finish(i)
            continue
        if not pacer.may_step():
            continue
        bt.train_step()
        stepped_alone = pacer.stepped()
        if bt.step % bt.cfgs[0].tick_every == 0 or stepped_alone:
            tick()
    if live():
        if any(stale(i) for i in live()):
            tick(final=True)
        for i in live():
            finish(i)
