"""Fan-out of one run's stream to any number of websocket viewers.

Each viewer owns a bounded mailbox: an ordered queue of text messages (events and status, never
dropped; a viewer that lets `viewer_queue` of them pile up is disconnected instead) and a single
frame slot where a newer frame replaces an unsent one (latest wins). The frame goes out in its
place among the texts: a run's last frame is sent before the status that ends it, however far
behind its viewer is (unless it is cut off). Publishing costs one JSON
encoding per message and zero per frame, whatever the number of viewers, and never awaits, so
a stalled browser cannot slow training or the other viewers.

Each viewer also says which optional frame parts (layers, e.g. the manifold) it draws; the hub
answers `wants(layer)`: does any viewer draw it? Frames are encoded once for everyone, so the
worker adds a layer while any viewer wants it, and a viewer that does not simply ignores it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from pydantic import BaseModel


class Overflow(Exception):
    """A viewer fell too far behind on messages that may not be dropped."""


class Viewer:
    def __init__(self, max_text: int):
        self.max_text = max_text
        self.text: deque[str] = deque()
        self.frame: bytes | None = None
        self.frame_at = 0  # how many of the queued texts were published before the frame
        self.wake = asyncio.Event()
        self.overflow = False
        self.sent_frames = 0
        self.dropped_frames = 0
        self.layers: set[str] = set()  # optional frame parts this viewer draws

    def push_text(self, msg: str) -> None:
        if len(self.text) >= self.max_text:
            self.overflow = True
        else:
            self.text.append(msg)
        self.wake.set()

    def push_frame(self, frame: bytes) -> None:
        if self.frame is not None:
            self.dropped_frames += 1
        self.frame = frame
        self.frame_at = len(self.text)  # after every text queued so far
        self.wake.set()

    def push_first_frame(self, frame: bytes) -> None:
        """The frame a viewer who joins mid-run starts from: published before anything queued
        since it joined, so it goes first (and only if no newer frame has arrived)."""
        if self.frame is None:
            self.frame, self.frame_at = frame, 0
            self.wake.set()

    async def next(self) -> list[str | bytes]:
        """Wait for something to send: the queued texts and the latest frame (bytes), in the
        order they were published."""
        while not self.text and self.frame is None:
            if self.overflow:
                raise Overflow
            self.wake.clear()
            await self.wake.wait()
        if self.overflow:
            raise Overflow
        out: list[str | bytes] = list(self.text)
        self.text.clear()
        if self.frame is not None:
            out.insert(self.frame_at, self.frame)
            self.frame = None
            self.sent_frames += 1
        return out


class Hub:
    """The viewers of one run, and the latest frame for a viewer who joins mid-run."""

    def __init__(self, max_text: int = 256):
        self.max_text = max_text
        self.viewers: set[Viewer] = set()
        self.latest: bytes | None = None
        self.frames = 0

    def join(self) -> Viewer:
        v = Viewer(self.max_text)
        self.viewers.add(v)
        return v

    def leave(self, v: Viewer) -> None:
        self.viewers.discard(v)

    def set_layers(self, v: Viewer, layers: dict[str, bool | None]) -> bool:
        """Record viewer v's layer choices (None: unchanged); True when wants() of any layer
        changed, i.e. the worker must be told."""
        names = {name for name in layers} | v.layers
        before = {name: self.wants(name) for name in names}
        for name, on in layers.items():
            if on is True:
                v.layers.add(name)
            elif on is False:
                v.layers.discard(name)
        return any(self.wants(name) != was for name, was in before.items())

    def wants(self, layer: str) -> bool:
        """Whether any viewer of this run draws `layer` (e.g. "manifold")."""
        return any(layer in v.layers for v in self.viewers)

    def publish_frame(self, frame: bytes) -> None:
        self.latest = frame
        self.frames += 1
        for v in self.viewers:
            v.push_frame(frame)

    def publish(self, msg: BaseModel) -> None:
        """A text message (server/messages.py) to every viewer, encoded once."""
        if not self.viewers:
            return
        text = msg.model_dump_json()
        for v in self.viewers:
            v.push_text(text)
