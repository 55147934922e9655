"""Who may do what: roles, the teacher's session cookie, students' identities, the Origin check.

Roles (`role(conn)`):
- `local`: no token configured (only allowed on a loopback address): the single local user may
  do everything.
- `teacher`: the holder of the teacher token. Scripts send it in a header (`Authorization:
  Bearer TOKEN` or `X-Collapse-Token`); a browser opens the printed teacher link `/?token=TOKEN`
  once, and the server answers with a session cookie (HttpOnly, SameSite=Strict) and a redirect
  to `/`, so the token leaves the address bar and never travels in a URL again. The cookie holds
  an HMAC of the token, not the token: rotating the token (`rotate`) ends every session and
  every old link at once.
- `viewer`: anyone else. Viewers watch; where the teacher allows it (`Classroom.students_may_run`)
  a viewer is also a *student* who may start and steer runs of their own, capped per student.
  A student is a browser: a random id in a second HttpOnly cookie (`student_id`).

A token in the query string of an API call or a websocket upgrade is refused: a URL ends up in
logs, histories and Referer headers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

SESSION_COOKIE = "collapse_lab_session"
STUDENT_COOKIE = "collapse_lab_student"
SESSION_MAX_AGE = 12 * 3600  # a school day; the teacher opens the printed link again after it
STUDENT_MAX_AGE = 30 * 24 * 3600
TEACHER = "teacher"  # the owner recorded on runs the teacher (or the local user) starts
_STUDENT_ID = re.compile(r"^[a-f0-9]{16}$")


class Role(str, Enum):
    local = "local"
    teacher = "teacher"
    viewer = "viewer"


def session_value(token: str) -> str:
    """The teacher cookie's value: an HMAC of the token (the cookie never holds the token)."""
    return hmac.new(token.encode(), b"collapse-lab teacher session v1", hashlib.sha256).hexdigest()


def presented_token(conn: HTTPConnection) -> str | None:
    """A token sent in a header (scripts, the Python client). Never from the URL."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.headers.get("x-collapse-token")


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def role(conn: HTTPConnection) -> Role:
    token: str | None = conn.app.state.token
    if not token:
        return Role.local
    if token_matches(presented_token(conn), token):
        return Role.teacher
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie and secrets.compare_digest(cookie.encode(), session_value(token).encode()):
        return Role.teacher
    return Role.viewer


def is_teacher(conn: HTTPConnection) -> bool:
    """The teacher or the local user: may do anything."""
    return role(conn) != Role.viewer


def student_id(conn: HTTPConnection) -> str | None:
    sid = conn.cookies.get(STUDENT_COOKIE)
    return sid if sid and _STUDENT_ID.match(sid) else None


def owner_of(conn: HTTPConnection) -> str | None:
    """Who a run started by this connection belongs to: `teacher`, `student:ID`, or None (a
    viewer's browser without an identity yet)."""
    if is_teacher(conn):
        return TEACHER
    sid = student_id(conn)
    return f"student:{sid}" if sid else None


def students_may_run(conn: HTTPConnection) -> bool:
    return bool(conn.app.state.classroom.students_may_run)


def may_control(conn: HTTPConnection, run: Any = None) -> bool:
    """May this connection steer (pause, stop, change) `run`? The teacher any run; a student
    only their own, and only while the teacher lets students run."""
    if is_teacher(conn):
        return True
    if run is None or not students_may_run(conn):
        return False
    owner = owner_of(conn)
    return owner is not None and getattr(run, "owner", None) == owner


# what a student may send a body to (where the teacher lets students run); the routes check the
# rest (their own runs, the caps)
STUDENT_WRITES = re.compile(r"^/api/(runs|runs/stop|runs/[a-z0-9]{1,32}/control|uploads)$")


def may_write(conn: HTTPConnection, path: str) -> bool:
    """May this connection send a request that changes things to `path`? Answered from the
    headers alone (server/guard.py asks before reading a body): the teacher anywhere, a student
    only where students act."""
    if is_teacher(conn):
        return True
    return (students_may_run(conn) and student_id(conn) is not None
            and STUDENT_WRITES.match(path) is not None)


REFUSED = ("this server needs the teacher token to start, control or delete runs: open the "
           "teacher link that `collapse-lab serve` printed (scripts: Authorization: Bearer TOKEN)")
WATCH_ONLY = ("watch only: the teacher has not let students start their own runs (and this "
              "server needs the teacher token for it)")


def refusal(conn: HTTPConnection, path: str) -> str:
    """Why `may_write` said no, in the words the routes use: a viewer in a class is told the
    page is watch only, anyone else that the server needs the token."""
    if STUDENT_WRITES.match(path) is not None and not students_may_run(conn):
        return WATCH_ONLY
    return REFUSED


def require_control(request: Request) -> None:
    """Dependency of every route only the teacher may use (compare groups, delete, class)."""
    if not is_teacher(request):
        raise HTTPException(403, REFUSED)


def require_run_control(request: Request, run: Any) -> None:
    if not may_control(request, run):
        if students_may_run(request) and not is_teacher(request):
            raise HTTPException(403, f"run {run.id} is not yours: a student may steer only the "
                                "runs they started")
        raise HTTPException(403, REFUSED)


def require_start(request: Request) -> str:
    """May this request start a run (or upload data)? Returns the owner to record."""
    if is_teacher(request):
        return TEACHER
    if not students_may_run(request):
        raise HTTPException(403, WATCH_ONLY)
    owner = owner_of(request)
    if owner is None:
        raise HTTPException(403, "this browser has no student identity yet: reload the page "
                            "(it needs cookies)")
    return owner


def set_session_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, session_value(token), max_age=SESSION_MAX_AGE, path="/",
                        httponly=True, samesite="strict", secure=secure)


def ensure_student_cookie(request: Request, response: Response) -> str:
    """The browser's student id, minting one (in an HttpOnly cookie) on first sight."""
    sid = student_id(request)
    if sid is None:
        sid = secrets.token_hex(8)
        response.set_cookie(STUDENT_COOKIE, sid, max_age=STUDENT_MAX_AGE, path="/",
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
    return sid


def origin_allowed(conn: HTTPConnection) -> bool:
    """A browser's websocket must come from a page this server served (or an allowed Origin).

    Clients without an Origin header (the Python client, curl) are not browsers and pass.
    """
    origin = conn.headers.get("origin")
    if not origin:
        return True
    if origin in conn.app.state.settings.allowed_origins:
        return True
    host = conn.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == host
