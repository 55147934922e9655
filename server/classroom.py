"""The class channel: what the teacher presents, who follows it, and the teacher's class settings.

One websocket per page, `/ws/class`. The teacher's page sends `present` messages (the run, the
view, the replay step, the layers shown, the lesson step); the server keeps the latest and fans
it out to every page, which applies it while its viewer follows the teacher. Each page says
whether it follows (`follow`); the teacher's pages get the audience — how many are connected and
how many follow — at most a few times a second. Settings changes (students may run, the cap) and
token rotations are announced on the same channel.

Every message is a pydantic model with limits; each page has a bounded mailbox (server/fanout.py)
and is dropped when it falls `viewer_queue` messages behind; at most `max_class` pages connect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from collapse_lab.server.auth import Role, origin_allowed, role
from collapse_lab.server.fanout import Overflow, Viewer

log = logging.getLogger(__name__)
router = APIRouter()

MAX_MESSAGE = 4096  # bytes of one page's message
AUDIENCE_EVERY = 0.25  # s: the audience count goes out at most this often
RunId = Annotated[str, Field(pattern=r"^[a-z0-9]{1,32}$")]
GroupId = Annotated[str, Field(pattern=r"^g[a-z0-9]{1,31}$")]


class Layers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heat: bool = True
    real: bool = True
    fake: bool = True
    arrows: bool = False
    manifold: bool = False


class Presented(BaseModel):
    """What the teacher's page shows; a follower's page shows the same."""

    model_config = ConfigDict(extra="forbid")
    view: Literal["live", "compare", "history"] = "live"
    run: RunId | None = None
    runs: list[RunId] = Field(default_factory=list, max_length=8)
    group: GroupId | None = None
    replay: int | None = Field(None, ge=0, le=2**31)
    show: Layers = Field(default_factory=Layers)
    lesson: str | None = Field(None, pattern=r"^[a-z0-9-]{1,64}$")
    lesson_step: int = Field(0, ge=0, le=199)


class PresentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["present"]
    state: Presented


class FollowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["follow"]
    following: bool


ClassIn = TypeAdapter(Annotated[PresentIn | FollowIn, Field(discriminator="type")])


@dataclass(eq=False)
class Member:
    mailbox: Viewer
    teacher: bool
    following: bool = True


@dataclass
class Classroom:
    """The class's state, one per app (`app.state.classroom`)."""

    max_members: int = 2000
    max_text: int = 256
    students_may_run: bool = False  # the teacher's setting: viewers may start their own runs
    student_cap: int = 1  # active (queued, running, paused) runs per student
    presented: dict[str, Any] | None = None
    seq: int = 0
    members: set[Member] = field(default_factory=set)
    _audience_at: float = 0.0
    _audience_pending: bool = False
    _last_audience: tuple[int, int] | None = None

    # ------------------------------------------------------------------ members
    def join(self, teacher: bool) -> Member | None:
        if len(self.members) >= self.max_members:
            return None
        m = Member(Viewer(self.max_text), teacher)
        self.members.add(m)
        self.audience_changed()
        return m

    def leave(self, m: Member) -> None:
        self.members.discard(m)
        self.audience_changed()

    def audience(self) -> dict[str, int]:
        viewers = [m for m in self.members if not m.teacher]
        return {"connected": len(viewers), "following": sum(m.following for m in viewers),
                "teachers": len(self.members) - len(viewers)}

    def settings(self) -> dict[str, Any]:
        return {"students_may_run": self.students_may_run, "student_cap": self.student_cap}

    # ------------------------------------------------------------------ fan-out
    def _send(self, msg: dict[str, Any], teachers_only: bool = False) -> None:
        text = json.dumps(msg, separators=(",", ":"))
        for m in self.members:
            if m.teacher or not teachers_only:
                m.mailbox.push_text(text)

    def present(self, state: Presented) -> None:
        self.seq += 1
        self.presented = state.model_dump(mode="json")
        self._send(self.presented_message())

    def presented_message(self) -> dict[str, Any]:
        """The `present` message of what the class sees now."""
        return {"type": "present", "seq": self.seq, "state": self.presented}

    def announce_settings(self) -> None:
        self._send({"type": "settings", "settings": self.settings()})

    def announce_session_change(self) -> None:
        """The token changed: every page asks again who it is (old teacher cookies are dead)."""
        self._send({"type": "session"})

    def announce_names(self) -> None:
        """A student named themselves or the teacher removed a name: pages ask again."""
        self._send({"type": "names"})

    def audience_changed(self) -> None:
        """Tell the teachers the audience, at most every AUDIENCE_EVERY s (joins come in bursts
        when a class opens the link)."""
        if self._audience_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        wait = max(0.0, self._audience_at + AUDIENCE_EVERY - time.monotonic())
        self._audience_pending = True
        loop.call_later(wait, self._flush_audience)

    def _flush_audience(self) -> None:
        self._audience_pending = False
        self._audience_at = time.monotonic()
        a = self.audience()
        key = (a["connected"], a["following"])
        if key != self._last_audience:
            self._last_audience = key
            self._send({"type": "audience", **a}, teachers_only=True)


def _error(message: str) -> str:
    return json.dumps({"type": "error", "message": message})


async def _sender(ws: WebSocket, m: Member) -> None:
    while True:
        try:
            items = await m.mailbox.next()
        except Overflow:
            await ws.close(code=1013, reason="too far behind")
            return
        for t in items:  # texts: nothing publishes frames on the class channel
            if isinstance(t, str):
                await ws.send_text(t)


async def _receiver(ws: WebSocket, room: Classroom, m: Member) -> None:
    while True:
        text = await ws.receive_text()
        if len(text) > MAX_MESSAGE:
            m.mailbox.push_text(_error(f"message of {len(text)} bytes; at most {MAX_MESSAGE}"))
            continue
        try:
            msg = ClassIn.validate_json(text)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "message"
            m.mailbox.push_text(_error(f"{where}: {err['msg']}"))
            continue
        if isinstance(msg, FollowIn):
            if m.following != msg.following:
                m.following = msg.following
                room.audience_changed()
            if msg.following and room.presented is not None:
                # back with the class: what it sees now, whatever this page last heard
                m.mailbox.push_text(json.dumps(room.presented_message(), separators=(",", ":")))
            continue
        # the role is checked on every message: a rotated token ends the teacher's say at once
        if role(ws) == Role.viewer:
            m.mailbox.push_text(_error("only the teacher presents to the class"))
            continue
        room.present(msg.state)


@router.websocket("/ws/class")
async def class_socket(ws: WebSocket) -> None:
    if not origin_allowed(ws):
        await ws.close(code=1008)
        return
    room: Classroom = ws.app.state.classroom
    teacher = role(ws) != Role.viewer
    await ws.accept()
    m = room.join(teacher)
    if m is None:
        await ws.send_text(_error(f"the class is full ({room.max_members} pages)"))
        await ws.close(code=1013)
        return
    hello = {"type": "class", "role": role(ws).value, "seq": room.seq,
             "presented": room.presented, "settings": room.settings()}
    if teacher:
        hello["audience"] = room.audience()
    await ws.send_text(json.dumps(hello))
    tasks = [asyncio.create_task(_sender(ws, m)), asyncio.create_task(_receiver(ws, room, m))]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if exc and not isinstance(exc, (WebSocketDisconnect, RuntimeError)):
                log.warning("class socket ended: %r", exc)
    finally:
        for t in tasks:
            t.cancel()
        room.leave(m)
