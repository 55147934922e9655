"""Who may do what: roles, the teacher's session cookie, students' identities, the Origin check.

Roles (`role(conn)`):
- `local`: no token configured (only allowed on a loopback address): the single local user may
  do everything.
- `teacher`: the holder of the teacher token. Scripts send it in a header (`Authorization:
  Bearer TOKEN` or `X-Collapse-Token`); a browser opens the printed teacher link `/?token=TOKEN`
  once, and the server answers with a session cookie (HttpOnly, SameSite=Strict) and a redirect
  to `/`, so the token leaves the address bar and never travels in a URL again. The cookie holds
  a fresh random session id that the server keeps (server/identity.py), with an expiry; sign-out
  ends it, rotating the token (`rotate`) ends every session and every old link at once.
- `viewer`: anyone else. Viewers watch; where the teacher allows it (`Classroom.students_may_run`)
  a viewer is also a *student* who may start and steer runs of their own, capped per person.
  A student is a signed session in a second HttpOnly cookie (`student_id`): an id without the
  server's signature is nobody.

A token in the query string of an API call or a websocket upgrade is refused: a URL ends up in
logs, histories and Referer headers.

Every write proves its origin (`origin_allowed`): a browser sends `Origin` with every POST,
PUT, PATCH and DELETE and with every websocket upgrade, and it must be this server's own
(scheme, host and port, as the request reached it), `public_url`'s, or one in
`allowed_origins`. Without `Origin`, a `Sec-Fetch-Site` other than same-origin refuses it; a
request with neither header is not a browser's page (a script, curl) and passes. This holds on
a server without a token too: a page on another origin could otherwise act for the local user.
"""

from __future__ import annotations

import re
import secrets
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection
from starlette.responses import Response

from collapse_lab.server.identity import SESSION_MAX_AGE, STUDENT_MAX_AGE, Identity

SESSION_COOKIE = "collapse_lab_session"
STUDENT_COOKIE = "collapse_lab_student"
TEACHER = "teacher"  # the owner recorded on runs the teacher (or the local user) starts


class Role(str, Enum):
    local = "local"
    teacher = "teacher"
    viewer = "viewer"


def identity(conn: HTTPConnection) -> Identity:
    return conn.app.state.identity


def client_address(conn: HTTPConnection) -> str | None:
    return conn.client.host if conn.client else None


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
    if identity(conn).teacher_session(conn.cookies.get(SESSION_COOKIE)):
        return Role.teacher
    return Role.viewer


def is_teacher(conn: HTTPConnection) -> bool:
    """The teacher or the local user: may do anything."""
    return role(conn) != Role.viewer


def student_id(conn: HTTPConnection) -> str | None:
    """The student this connection proves to be (a cookie signed by this server), or None."""
    return identity(conn).verify_student(conn.cookies.get(STUDENT_COOKIE))


def owner_of(conn: HTTPConnection) -> str | None:
    """Who a run started by this connection belongs to: `teacher`, `student:ID` (a proven
    student session), or None (a viewer's browser without an identity)."""
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
# what a student may send even while the class watches only: their own name (the route checks
# that the sender is a proven student)
OPEN_WRITES = frozenset({"/api/session/name"})


def may_write(conn: HTTPConnection, path: str) -> bool:
    """May this connection send a request that changes things to `path`? Answered from the
    headers alone (server/guard.py asks before reading a body): the teacher anywhere, a student
    only where students act."""
    if is_teacher(conn) or path in OPEN_WRITES:
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


def set_session_cookie(request: Request, response: Response) -> None:
    """Sign this browser in as the teacher: a fresh session id, kept by the server."""
    value = identity(request).new_teacher_session()
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_MAX_AGE, path="/",
                        httponly=True, samesite="strict", secure=request.url.scheme == "https")


def end_session(request: Request, response: Response) -> None:
    identity(request).end_teacher_session(request.cookies.get(SESSION_COOKIE))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def ensure_student_cookie(request: Request, response: Response) -> str | None:
    """The browser's student id, minting a signed one (in an HttpOnly cookie) on first sight;
    None when its address has had `sessions_per_address` new ones this hour."""
    sid = student_id(request)
    if sid is None:
        who = identity(request)
        if who.mint_wait(client_address(request)) > 0:
            return None
        sid = who.mint(client_address(request))
        response.set_cookie(STUDENT_COOKIE, who.student_cookie(sid), max_age=STUDENT_MAX_AGE,
                            path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
    return sid


# ---------------------------------------------------------------------------- origins
_DEFAULT_PORT = {"http": "80", "https": "443"}


def normal_origin(value: str) -> str | None:
    """`scheme://host[:port]` in one spelling (lower case, no default port), or None."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORT[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def own_origin(conn: HTTPConnection) -> str | None:
    """This server's origin as the request reached it: the scheme it came by (a websocket's
    ws/wss counted as http/https) and its Host."""
    scheme = {"ws": "http", "wss": "https"}.get(conn.scope.get("scheme", ""),
                                              conn.scope.get("scheme", "http"))
    host = conn.headers.get("host")
    return normal_origin(f"{scheme}://{host}") if host else None


def allowed_origins(conn: HTTPConnection) -> set[str]:
    settings = conn.app.state.settings
    extra = list(settings.allowed_origins)
    if settings.public_url:
        extra.append(settings.public_url)
    return {o for o in (normal_origin(e) for e in extra) if o}


def origin_allowed(conn: HTTPConnection) -> bool:
    """May this request change things (or open a websocket) as far as its origin goes? A
    browser's must come from a page of this server (exactly: scheme, host, port) or an allowed
    Origin; clients without Origin or Sec-Fetch-Site (the Python client, curl) are not browsers
    and pass."""
    origin = conn.headers.get("origin")
    if origin is None:
        return conn.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    given = normal_origin(origin)
    return given is not None and (given == own_origin(conn) or given in allowed_origins(conn))


CROSS_ORIGIN = ("refused: this request came from a page of another origin (scheme, host or "
                "port differ); only the dashboard this server serves may change things "
                "(a page on another address is listed in allowed_origins)")


def check_token_attempt(conn: HTTPConnection) -> float:
    """A token presented in a header: the seconds its address must still wait (a guesser; the
    token is then not even compared), else 0 after counting a wrong one against the address."""
    token: str | None = conn.app.state.token
    given = presented_token(conn)
    if given is None or not token:
        return 0.0
    return token_attempt(conn, given)


def token_attempt(conn: HTTPConnection, given: str) -> float:
    who, address = identity(conn), client_address(conn)
    wait = who.token_wait(address)
    if wait > 0:
        return wait
    if not token_matches(given, conn.app.state.token or ""):
        who.token_failed(address)
    return 0.0


def slow_down(wait: float) -> str:
    return (f"too many wrong teacher tokens from this address: wait {wait:.0f} s before the "
            "next try")
