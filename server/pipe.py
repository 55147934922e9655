"""The messages between the server and its worker processes: small dataclasses, pickled over two
one-way pipes (multiprocessing, spawn context), handled on each side with `match`.

Worker → server: `Hello` (a run has started or resumed: its facts and real samples), `Tick`
(every tick's scalars), `Event` (config, state, rejected), `Frame` (an encoded frame; at most
frame_rate a second per run, latest wins), `Snapshot` (a frame kept for replay), `Checkpoint`
(a checkpoint file was written), `End` (the run is over), `Pong`.

Server → worker: `Control` (the HTTP control body for one run), `Watch` (whether anyone views
a run, and which optional layers they want), `Join` (another run to train in this worker),
`Ping`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collapse_lab.trainer.commands import Command


@dataclass
class RunSpec:
    """One run as a worker receives it."""

    run_id: str
    config: dict[str, Any]
    checkpoint: str  # where this run's checkpoints go (the previous one is kept beside it)
    resume_from: str | None = None  # a checkpoint to continue from; None = a fresh run
    watched: bool = True  # someone views the run's stream
    manifold: bool = False  # someone wants the manifold layer


@dataclass
class WorkerSpec:
    """What a worker process needs to know; pickled to the spawned process."""

    runs: list[RunSpec]
    data_dir: str
    frame_rate: float = 10.0
    snapshot_every: int = 10  # ticks between snapshots kept for replay
    checkpoint_every: int = 50  # ticks between checkpoints
    threads: int = 1
    pack: bool = True  # runs of this worker that can share a stacked step do
    memory_mb: int = 0  # the process's address-space limit (RLIMIT_AS); 0 = none


# ---------------------------------------------------------------------------- worker → server
@dataclass
class Hello:
    run_id: str
    info: dict[str, Any]  # device, versions, dataset, config, runs in its step, ...
    value_kind: str
    real: bytes  # the real-samples message (docs/protocol.md)
    step: int
    version: int


@dataclass
class Tick:
    run_id: str
    scalars: dict[str, Any]


@dataclass
class Event:
    run_id: str
    event: dict[str, Any]


@dataclass
class Frame:
    run_id: str
    data: bytes


@dataclass
class Snapshot:
    run_id: str
    step: int
    data: bytes


@dataclass
class Checkpoint:
    run_id: str
    step: int
    path: str


@dataclass
class End:
    run_id: str
    status: str  # done | failed
    reason: str


@dataclass
class Pong:
    n: int


# ---------------------------------------------------------------------------- server → worker
@dataclass
class Control:
    run_id: str
    cmd: Command  # validated at the server's door (trainer/commands.py)


@dataclass
class Watch:
    run_id: str
    watched: bool
    manifold: bool = False


@dataclass
class Join:
    run: RunSpec


@dataclass
class Ping:
    n: int
