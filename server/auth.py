"""Who may do what: the teacher token for changes, and the Origin check on websocket upgrades.

With a token configured, starting, controlling and deleting runs needs it (header
`Authorization: Bearer TOKEN`, header `X-Collapse-Token`, or `?token=`); watching never does.
Without one (only allowed on a loopback address) the single local user may do everything.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection


def presented_token(conn: HTTPConnection) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return conn.headers.get("x-collapse-token") or conn.query_params.get("token")


def may_control(conn: HTTPConnection) -> bool:
    token: str | None = conn.app.state.token
    if not token:
        return True
    given = presented_token(conn)
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def require_control(request: Request) -> None:
    """Dependency of every route that starts, controls or deletes runs."""
    if not may_control(request):
        raise HTTPException(403, "this server needs the teacher token to start, control or "
                            "delete runs (Authorization: Bearer TOKEN or ?token=TOKEN)")


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
