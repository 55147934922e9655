"""The door of the server: an ASGI middleware that refuses cheaply, before any route runs.

In order, for every HTTP request and websocket upgrade:
1. **Host allow-list** (DNS rebinding): the `Host` must be a loopback name or address, one of
   the machine's own names or addresses, or a name in `allowed_hosts`; anything else is 400 (a
   websocket upgrade gets the same 400 instead of 101).
2. **Token guesses slowed**: an address that sent too many wrong tokens is 429 (server/identity.py).
3. **Origin, then auth, before the body**: a request that changes things (POST, PUT, PATCH,
   DELETE) from a page of another origin is 403, on every server (server/auth.py:
   `origin_allowed`); on a token server it is 403 before a byte of its body is read unless it
   comes from the teacher, or from a student where the teacher lets students run and the path
   is one students act on (`may_write`).
4. **Bounded bodies**: a body larger than its limit is 413, from `Content-Length` before reading
   or while streaming a chunked body; a JSON body (what FastAPI parses on the event loop) has
   the smaller limit `max_json_body`, any other body `max_body`. A body that trickles in slower
   than `body_timeout` is 408. A JSON body nested deeper than MAX_DEPTH is 422 before it is
   parsed (strings skipped; a few milliseconds for the worst 64 KiB).
5. **Security headers** on every response (CSP, nosniff, frame-ancestors, Referrer-Policy).

FastAPI reads and parses a body before route dependencies run, so none of this can live in a
dependency: it has to answer from the method, path and headers alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from collapse_lab.server.auth import (
    CROSS_ORIGIN,
    check_token_attempt,
    may_write,
    origin_allowed,
    refusal,
    slow_down,
)

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# routes that change nothing a viewer may not change, and so take a body from anyone
OPEN_WRITES: frozenset[str] = frozenset()
MAX_DEPTH = 32  # JSON nesting: a run config needs 3 levels


# ---------------------------------------------------------------------------- Host allow-list
def split_host(value: str) -> str:
    """The name or address of a Host header, without port, brackets or a trailing dot."""
    v = value.strip().lower()
    if v.startswith("["):  # [::1]:8000
        return v[1:v.find("]")] if "]" in v else v
    if v.count(":") == 1:
        v = v.split(":", 1)[0]
    return v.rstrip(".")


def _is_address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return None


def own_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Is this one of the machine's own addresses? Exactly those can be bound to."""
    if addr.is_unspecified:
        return True  # a browser pointed at 0.0.0.0 reaches this machine
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((str(addr), 0))
        return True
    except OSError:
        return False


class HostCheck:
    """Which Host headers this server answers to.

    Names: `localhost` (and `*.localhost`, which resolve to loopback only), the machine's host
    name, its `.local` mDNS name and its fully qualified name, and `extra` (from the setting
    `allowed_hosts`; a leading dot allows every subdomain, `*` turns the check off). Addresses:
    loopback and any address the machine holds (checked by binding to it, so a new DHCP lease
    works without a restart).
    """

    def __init__(self, extra: list[str]):
        self.any = "*" in extra
        self.names = {"localhost"} | {split_host(e) for e in extra if e != "*"}
        host = socket.gethostname().lower()
        if host:
            self.names |= {host, f"{host}.local"}
        self._seen: dict[str, tuple[bool, float]] = {}  # address -> (own, when checked)
        self._lock = threading.Lock()
        # the fully qualified name may need a DNS lookup: find it without delaying start-up
        threading.Thread(target=self._add_fqdn, daemon=True, name="host-fqdn").start()

    def _add_fqdn(self) -> None:
        try:
            fqdn = socket.getfqdn().lower().rstrip(".")
        except OSError:
            return
        if fqdn and not _is_address(fqdn):
            self.names = self.names | {fqdn}

    def allowed(self, header: str | None) -> bool:
        if self.any or header is None:
            return True  # no Host (HTTP/1.0 scripts) cannot be a rebinding browser
        name = split_host(header)
        if name in self.names or name.endswith(".localhost"):
            return True
        if any(n.startswith(".") and (name.endswith(n) or name == n[1:]) for n in self.names):
            return True
        addr = _is_address(name)
        if addr is None:
            return False
        if addr.is_loopback:
            return True
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(name)
        if hit is not None and now - hit[1] < 60:
            return hit[0]
        own = own_address(addr)
        with self._lock:
            if len(self._seen) > 1024:
                self._seen.clear()
            self._seen[name] = (own, now)
        return own


# ---------------------------------------------------------------------------- headers
def security_headers(host: str | None) -> list[tuple[bytes, bytes]]:
    """The page may run only its own scripts, styles and workers and talk only to this server.

    `connect-src` names the websocket origins of the (already allow-listed) Host explicitly,
    since older browsers do not count ws:/wss: as 'self'. Plotly adds its rules through an
    empty <style> element filled with `insertRule` (the hash is that of the empty string) and
    positions SVG elements with style attributes, hence the `style-src-attr`. The one inline
    stylesheet it would add, for its map traces (maplibre), the page does not use: a script
    served before plotly (/vendor/plotly-styles.js, server/app.py) marks it present, so plotly
    never adds it and the browser has nothing to refuse.
    """
    ws = f" ws://{host} wss://{host}" if host else ""
    csp = ("default-src 'none'; script-src 'self' 'report-sample'; worker-src 'self'; "
           "style-src 'self' 'report-sample' "
           "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; "
           "style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; "
           f"connect-src 'self'{ws}; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
           "frame-ancestors 'none'; object-src 'none'")
    return [(b"content-security-policy", csp.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin")]


# ---------------------------------------------------------------------------- the middleware
class BodyTooLarge(Exception):
    pass


class Guard:
    """Pure ASGI middleware (server/app.py adds it outermost). Settings come from the app."""

    def __init__(self, app: ASGIApp, hosts: HostCheck, max_body: int, max_json_body: int,
                 body_timeout: float):
        self.app = app
        self.hosts = hosts
        self.max_body = max_body
        self.max_json_body = max_json_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.hosts.allowed(host):
            log.warning("refused a request for Host %r (not a name of this server)",
                        (host or "")[:100])
            await self._bad_host(scope, send, host or "")
            return
        wait = check_token_attempt(HTTPConnection(scope))
        if wait > 0:
            if kind == "http":
                await reply(send, 429, slow_down(wait), headers=[
                    (b"retry-after", str(int(wait) + 1).encode())], close=True)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        extra = security_headers(host if host and host.isascii() else None)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        method = scope["method"]
        if method in CHANGING:
            path = scope["path"]
            size = headers.get("content-length")
            pending = size not in (None, "0") or "chunked" in headers.get("transfer-encoding", "")
            if not origin_allowed(HTTPConnection(scope)):
                await reply(send_with_headers, 403, CROSS_ORIGIN, close=pending)
                return
            if path not in OPEN_WRITES and not may_write(HTTPConnection(scope), path):
                await reply(send_with_headers, 403, refusal(HTTPConnection(scope), path),
                            close=pending)
                return
            limit = self._limit(headers)
            if size is not None and (not size.isdigit() or int(size) > limit):
                await self._too_large(send_with_headers, limit)
                return
            try:
                body = await asyncio.wait_for(read_body(receive, limit), self.body_timeout)
            except BodyTooLarge:
                await self._too_large(send_with_headers, limit)
                return
            except asyncio.TimeoutError:
                await reply(send_with_headers, 408, f"the request body took longer than "
                            f"{self.body_timeout:g} s to arrive", close=True)
                return
            if body is None:
                return  # the client went away
            if limit == self.max_json_body and json_depth(body) > MAX_DEPTH:
                await reply(send_with_headers, 422, f"body: JSON nested deeper than "
                            f"{MAX_DEPTH} levels")
                return
            receive = replay(body, receive)
        await self.app(scope, receive, send_with_headers)

    def _limit(self, headers: Headers) -> int:
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        # FastAPI parses a body as JSON when it says so, or says nothing
        is_json = not ctype or ctype.endswith("/json") or ctype.endswith("+json")
        return self.max_json_body if is_json else self.max_body

    @staticmethod
    async def _too_large(send: Send, limit: int) -> None:
        await reply(send, 413, f"request body too large: at most {limit} bytes", close=True)

    @staticmethod
    async def _bad_host(scope: Scope, send: Send, host: str) -> None:
        detail = (f"Host {host[:100]!r} is not a name of this server; a server reached by "
                  "another name lists it in allowed_hosts (--allowed-host)")
        if scope["type"] == "http":
            await reply(send, 400, detail, close=True)
        elif "websocket.http.response" in scope.get("extensions", {}):
            body = json.dumps({"detail": detail, "field": None}).encode()
            await send({"type": "websocket.http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or BodyTooLarge as soon as it passes `limit`; None on disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then the real channel."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')  # deleted before counting
_STRING = re.compile(rb'"[^"]*"?')  # a string, once its escaped quotes are gone


def json_depth(body: bytes) -> int:
    """How deep the brackets of a JSON text nest outside its strings, without parsing it (0
    when it has too few brackets to pass MAX_DEPTH). C-speed bytes operations strip all but
    brackets and quotes, escaped quotes and backslashes first; numpy sums the rest."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return 0  # cannot nest deeper than it has brackets
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    s = _STRING.sub(b"", body.translate(None, _NOT_STRUCTURE))
    if not s:
        return 0
    a = np.frombuffer(s, dtype=np.uint8)
    steps = ((a >> 1) & 1).astype(np.int32) * 2 - 1  # [ and { have bit 1 set, ] and } not
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


async def reply(send: Send, status: int, detail: str, *, close: bool = False,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON error in the API's shape. `close`: the body may still be on its way, and the
    connection is closed after the answer rather than reading (and discarding) the rest."""
    body = json.dumps({"detail": detail, "field": None}).encode()
    headers = [*(headers or []), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
