"""Workers as Ray actors: `collapse-lab serve --backend ray [--ray-address ADDRESS]`.

The same worker entry (server/worker.py: `serve`) runs inside an actor on whatever node has room,
with the same channels as a local worker process: control messages in order (one thread serves
them), and out of it the same `Outbox` — ordered messages that are never dropped and one
latest-wins frame slot per run — which the server's reader thread drains with `recv`. So the
server, the protocol and the page do not change. A run asking for CUDA gets a fraction of a GPU
(`ray_gpus_per_worker`), so several small workers share one GPU.

An actor that dies (or a node that is lost) fails its runs with the reason, like a dead local
worker. Ray is imported only here, and only when the backend is chosen (the `ray` extra).
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

from collapse_lab.server import pipe
from collapse_lab.server.workers import WorkerHandle, reader_loop

log = logging.getLogger(__name__)

_EOF = object()


class QueueControl:
    """A pipe's `poll(timeout)` / `recv()` over a bounded queue, inside the actor."""

    def __init__(self, maxsize: int = 10_000):
        self.q: queue.Queue[Any] = queue.Queue(maxsize)
        self.pending: list[Any] = []

    def put(self, msg: Any) -> None:
        self.q.put(msg, timeout=30)

    def close(self) -> None:
        self.q.put(_EOF)

    def poll(self, timeout: float) -> bool:
        if self.pending:
            return True
        try:
            self.pending.append(self.q.get(timeout=timeout) if timeout > 0 else self.q.get_nowait())
        except queue.Empty:
            return False
        return True

    def recv(self) -> Any:
        if not self.pending and not self.poll(3600):
            raise EOFError
        msg = self.pending.pop(0)
        if msg is _EOF:
            raise EOFError
        return msg


class WorkerActor:
    """The body of the Ray actor (made remote by `actor_class`)."""

    def __init__(self, spec: pipe.WorkerSpec):
        import torch

        from collapse_lab.server.worker import Outbox, serve

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s worker: %(message)s")
        if spec.threads > 0:
            torch.set_num_threads(spec.threads)
        self.box = Outbox()
        self.control = QueueControl()
        self.thread = threading.Thread(target=serve, args=(spec, self.control, self.box),
                                       name="worker", daemon=True)
        self.thread.start()

    def where(self) -> tuple[int, str]:
        return os.getpid(), socket.gethostname()

    def send(self, msg: Any) -> None:
        self.control.put(msg)

    def close(self) -> None:
        self.control.close()

    def recv(self, timeout: float) -> tuple[list[Any], bool]:
        """What the worker has sent since the last call (waiting up to `timeout` for it), and
        whether it has finished."""
        return self.box.take(timeout)


_ACTOR: Any = None


def actor_class() -> Any:
    """WorkerActor as a Ray actor class: controls in order on one thread, reads on another."""
    global _ACTOR
    if _ACTOR is None:
        import ray

        class Actor(WorkerActor):
            @ray.method(concurrency_group="control")
            def send(self, msg: Any) -> None:  # type: ignore[override]
                super().send(msg)

            @ray.method(concurrency_group="io")
            def recv(self, timeout: float) -> tuple[list[Any], bool]:  # type: ignore[override]
                return super().recv(timeout)

        _ACTOR = ray.remote(concurrency_groups={"control": 1, "io": 1})(  # type: ignore
            Actor)
    return _ACTOR


def init(address: str | None, num_cpus: int | None = None) -> dict[str, float]:
    """Connect to a Ray cluster (or start a local one); returns its resources."""
    import ray

    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(address=address or None, include_dashboard=False,
                                      log_to_driver=False, ignore_reinit_error=True)
        if not address and num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    return dict(ray.cluster_resources())


class RayProcess:
    """What the supervisor asks of a worker process, for an actor."""

    def __init__(self, actor: Any, name: str):
        self.actor, self.name = actor, name
        self.pid: int | None = None
        self.exitcode: int | None = None
        self._alive = True

    def is_alive(self) -> bool:
        return self._alive

    def terminate(self) -> None:
        self.actor.close.remote()
        self.kill()

    def kill(self) -> None:
        import ray

        self._alive = False
        ray.kill(self.actor, no_restart=True)

    def join(self, timeout: float | None = None) -> None:
        pass


class RaySender:
    """The control end of the channel: send() posts the message to the actor, in order."""

    def __init__(self, actor: Any):
        self.actor = actor

    def send(self, msg: Any) -> None:
        self.actor.send.remote(msg)


def spawn(spec: pipe.WorkerSpec, key: tuple, name: str, loop: asyncio.AbstractEventLoop,
          on_message: Callable[[WorkerHandle, Any], None],
          on_exit: Callable[[WorkerHandle, int | None], None],
          on_bulk: Callable[[Any], Any], gpus: float = 0.0, cpus: float = 1.0) -> WorkerHandle:
    """Start a worker actor and the server's reader thread for it."""
    actor = actor_class().options(num_cpus=cpus, num_gpus=gpus, name=None).remote(spec)
    proc = RayProcess(actor, f"collapse-lab-{name}")
    w = WorkerHandle(process=proc, control=RaySender(actor), key=key,  # type: ignore[arg-type]
                     run_ids=[r.run_id for r in spec.runs])

    def receive(timeout: float) -> tuple[list[Any], bool]:
        import ray

        if proc.pid is None:
            proc.pid = ray.get(actor.where.remote())[0]
        return ray.get(actor.recv.remote(timeout))

    def lost(e: BaseException) -> str:
        proc._alive = False
        return f"Ray actor lost: {type(e).__name__}: {str(e).splitlines()[0][:200]}"

    w.thread = threading.Thread(target=reader_loop, args=(w, receive, lost, loop, on_message,
                                                          on_exit, on_bulk),
                                daemon=True, name=f"reader-{name}")
    w.thread.start()
    return w
