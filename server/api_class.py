"""The classroom over HTTP: who am I, the class settings, links and QR code, token rotation.

- `GET  /api/session` — this browser's role (teacher, viewer, local), whether it is a student
  (a signed session set as an HttpOnly cookie on first sight) and its display name, the class
  settings and the viewer links.
- `POST /api/session/name` — a student gives (or changes) the name the class sees.
- `POST /api/session/signout` — the teacher's browser ends its session.
- `POST /api/class/settings` — teacher: may students start their own runs, and how many each.
- `GET  /api/class/students` — teacher: the students with a name (a handle, the name, active
  runs); `DELETE /api/class/students/{handle}/name` removes a name.
- `POST /api/class/rotate` — teacher: a new token; every old teacher link and session stops
  working, this browser gets a new session, and the new teacher link is printed where `serve`
  runs.
- `GET  /api/class/qr.svg?link=N` — the N-th viewer link as a QR code (SVG), for the projector.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from collapse_lab.server.auth import (
    Role,
    end_session,
    ensure_student_cookie,
    identity,
    require_control,
    role,
    set_session_cookie,
    student_id,
)
from collapse_lab.server.identity import NAME_MAX
from collapse_lab.server.links import base_urls, qr_svg, teacher_link
from collapse_lab.server.models import ErrorOut
from collapse_lab.server.runs import FINAL
from collapse_lab.trainer.knobs import ConfigError

router = APIRouter(prefix="/api", tags=["class"])
MAX_STUDENT_CAP = 10


class ClassSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not a boolean
    students_may_run: bool | None = Field(None, description="viewers may start and steer runs "
                                          "of their own")
    student_cap: int | None = Field(None, ge=1, le=MAX_STUDENT_CAP,
                                    description="active runs (queued, running, paused) per "
                                    "student")


class SessionOut(BaseModel):
    role: Role = Field(description="teacher, viewer (watch only; a student where allowed) or "
                       "local (no token: may do everything)")
    owner: Literal["teacher", "student"] | None = Field(
        None, description="whose runs this browser starts: the teacher's, its own as a student, "
        "or none (no student session: this address has had too many new ones this hour)")
    name: str | None = Field(None, description="the student's display name, once given")
    students_may_run: bool
    student_cap: int
    token_required: bool
    viewer_links: list[str] = Field(description="the dashboard's address for the class: plain "
                                    "links that carry no token")


def viewer_links(request: Request) -> list[str]:
    s = request.app.state.settings
    links = base_urls(s.host, s.port, s.public_url, https=s.ssl_certfile is not None)
    if s.port == 0:  # the port is only known once the server listens: use the one asked on
        links = [f"{request.url.scheme}://{request.url.netloc}/"]
    return links


@router.get("/session", response_model=SessionOut)
async def session(request: Request, response: Response) -> SessionOut:
    room = request.app.state.classroom
    r = role(request)
    name = None
    if r != Role.viewer:
        owner: Literal["teacher", "student"] | None = "teacher"
    else:
        sid = ensure_student_cookie(request, response)
        owner = "student" if sid else None
        name = identity(request).student(sid).name if sid else None
    response.headers["cache-control"] = "no-store"
    return SessionOut(role=r, owner=owner, name=name, students_may_run=room.students_may_run,
                      student_cap=room.student_cap, token_required=bool(request.app.state.token),
                      viewer_links=viewer_links(request))


class NameIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=4 * NAME_MAX,
                      description=f"the name the class sees: at most {NAME_MAX} visible "
                      "characters; made unique in the class (\"Ana 2\")")


class NameOut(BaseModel):
    name: str


@router.post("/session/name", response_model=NameOut)
async def give_name(body: NameIn, request: Request) -> NameOut:
    """A student's display name: cleaned, bounded and made unique; the page shows it as text."""
    sid = student_id(request)
    if sid is None:
        raise HTTPException(403, "only a student names themselves: this browser has no "
                            "student session (reload the page; it needs cookies)")
    try:
        name = identity(request).set_name(sid, body.name)
    except ValueError as e:
        raise ConfigError("name", str(e)) from None
    request.app.state.classroom.announce_names()
    return NameOut(name=name)


@router.post("/session/signout")
async def signout(request: Request) -> JSONResponse:
    """End this browser's teacher session (the cookie and the server's record of it)."""
    resp = JSONResponse({"signed_out": role(request) == Role.teacher})
    end_session(request, resp)
    return resp


class StudentOut(BaseModel):
    handle: str = Field(description="names the student to the teacher's page (not a session)")
    name: str
    active_runs: int


@router.get("/class/students", dependencies=[Depends(require_control)])
async def students(request: Request) -> list[StudentOut]:
    """The students who gave a name, newest first (at most 500)."""
    who = identity(request)
    active: dict[str, int] = {}
    for r in request.app.state.sup.runs.values():
        if r.owner and r.status not in FINAL:
            active[r.owner] = active.get(r.owner, 0) + 1
    named = [s for s in reversed(who.students.values()) if s.name][:500]
    return [StudentOut(handle=who.handle(s.sid), name=s.name or "",
                       active_runs=active.get(f"student:{s.sid}", 0)) for s in named]


@router.delete("/class/students/{handle}/name", dependencies=[Depends(require_control)],
               responses={404: {"model": ErrorOut}})
async def remove_name(request: Request,
                      handle: str = Path(pattern=r"^[a-f0-9]{12}$")) -> dict[str, str]:
    """Remove a student's name (the student is asked for another)."""
    old = identity(request).remove_name(handle)
    if old is None:
        raise HTTPException(404, f"no named student {handle!r}")
    request.app.state.classroom.announce_names()
    return {"removed": old}


@router.post("/class/settings", dependencies=[Depends(require_control)])
async def class_settings(body: ClassSettingsIn, request: Request) -> dict[str, Any]:
    room = request.app.state.classroom
    if body.students_may_run is not None:
        room.students_may_run = body.students_may_run
    if body.student_cap is not None:
        room.student_cap = body.student_cap
    room.announce_settings()
    return room.settings()


@router.post("/class/rotate", dependencies=[Depends(require_control)])
async def rotate(request: Request) -> JSONResponse:
    """A fresh teacher token: old links and sessions stop working; this browser stays teacher."""
    st = request.app.state
    if not st.token:
        raise HTTPException(409, "this server has no teacher token to rotate (it is a local "
                            "server on loopback; start it with --token to teach a class)")
    st.token = secrets.token_urlsafe(18)
    st.identity.end_teacher_sessions()
    announce: Callable[[list[str]], None] | None = getattr(st, "announce", None)
    printed = False
    if announce is not None:
        announce([f"new teacher link (the old one no longer works): {teacher_link(u, st.token)}"
                  for u in viewer_links(request)])
        printed = True
    st.classroom.announce_session_change()
    resp = JSONResponse({"rotated": True, "printed": printed})
    set_session_cookie(request, resp)
    return resp


@router.get("/class/qr.svg", responses={200: {"content": {"image/svg+xml": {}}}})
async def qr(request: Request, link: int = Query(0, ge=0, le=63)) -> Response:
    links = viewer_links(request)
    if link >= len(links):
        raise ConfigError("link", f"there are {len(links)} viewer links: an integer in "
                          f"[0, {len(links) - 1}]")
    return Response(qr_svg(links[link]), media_type="image/svg+xml",
                    headers={"cache-control": "no-store"})
