"""The classroom over HTTP: who am I, the class settings, links and QR code, token rotation.

- `GET  /api/session` — this browser's role (teacher, viewer, local), its student identity (set
  as an HttpOnly cookie on first sight), the class settings and the viewer links.
- `POST /api/class/settings` — teacher: may students start their own runs, and how many each.
- `POST /api/class/rotate` — teacher: a new token; every old teacher link and session stops
  working, this browser keeps its session, and the new teacher link is printed where `serve` runs.
- `GET  /api/class/qr.svg?link=N` — the N-th viewer link as a QR code (SVG), for the projector.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from collapse_lab.server.auth import (
    Role,
    ensure_student_cookie,
    require_control,
    role,
    set_session_cookie,
)
from collapse_lab.server.links import base_urls, qr_svg, teacher_link
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
    owner: str | None = Field(None, description="the owner recorded on runs this browser starts")
    students_may_run: bool
    student_cap: int
    token_required: bool
    viewer_links: list[str] = Field(description="the dashboard's address for the class: plain "
                                    "links that carry no token")


def viewer_links(request: Request) -> list[str]:
    s = request.app.state.settings
    links = base_urls(s.host, s.port, s.public_url)
    if s.port == 0:  # the port is only known once the server listens: use the one asked on
        links = [f"{request.url.scheme}://{request.url.netloc}/"]
    return links


@router.get("/session", response_model=SessionOut)
async def session(request: Request, response: Response) -> SessionOut:
    room = request.app.state.classroom
    r = role(request)
    owner = "teacher" if r != Role.viewer else \
        f"student:{ensure_student_cookie(request, response)}"
    response.headers["cache-control"] = "no-store"
    return SessionOut(role=r, owner=owner, students_may_run=room.students_may_run,
                      student_cap=room.student_cap, token_required=bool(request.app.state.token),
                      viewer_links=viewer_links(request))


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
    announce: Callable[[list[str]], None] | None = getattr(st, "announce", None)
    printed = False
    if announce is not None:
        announce([f"new teacher link (the old one no longer works): {teacher_link(u, st.token)}"
                  for u in viewer_links(request)])
        printed = True
    st.classroom.announce_session_change()
    resp = JSONResponse({"rotated": True, "printed": printed})
    set_session_cookie(resp, st.token, secure=request.url.scheme == "https")
    return resp


@router.get("/class/qr.svg", responses={200: {"content": {"image/svg+xml": {}}}})
async def qr(request: Request, link: int = Query(0, ge=0, le=63)) -> Response:
    links = viewer_links(request)
    if link >= len(links):
        raise ConfigError("link", f"there are {len(links)} viewer links: an integer in "
                          f"[0, {len(links) - 1}]")
    return Response(qr_svg(links[link]), media_type="image/svg+xml",
                    headers={"cache-control": "no-store"})
