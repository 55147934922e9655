"""Bounded connections: what one client may hold open, and for how long, before any request.

The Guard (server/guard.py) sees requests; this sees TCP connections, below uvicorn's HTTP
parser, so it also bounds what never becomes a request:

- **per address**: at most `max_conns_per_address` open connections from one IP address (HTTP
  and websocket together); one more is closed the moment it is accepted, so its file descriptor
  is back at once and the accept loop never runs out of them;
- **in all**: at most `max_conns` (derived from the open-files limit, see `fd_budget`);
- **headers**: a request's headers must be complete `header_timeout` seconds after the
  connection opened (or after the previous response, on a kept-alive connection): idle sockets
  and header lines sent a byte at a time are closed;
- **stalled readers**: a connection whose outgoing buffer has not shrunk for `stall_timeout`
  seconds (a browser or script that stopped reading: a websocket that never reads, a download
  nobody takes) is aborted. asyncio's `close()` waits for the buffer to drain, which a peer that
  never reads never lets happen; `abort()` drops it and frees the descriptor.

Counting is by transport, which a websocket upgrade keeps (uvicorn swaps the protocol object,
not the transport), so HTTP connections and websockets share one budget.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

SWEEP_EVERY = 1.0  # seconds between checks of header deadlines and stalled buffers
FD_RESERVE = 256  # descriptors kept for workers' pipes, SQLite, checkpoints, uploads, logs
FD_WANTED = 65536  # the soft open-files limit `serve` asks for (up to the hard limit)
FD_LOW = 4096  # below this many open files `serve` warns that a class may not fit


def fd_budget(wanted: int = FD_WANTED) -> tuple[int, int, str | None]:
    """Raise the soft open-files limit towards `wanted` (never past the hard limit); returns
    (the limit now, connections it leaves after FD_RESERVE, a warning or None)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    limit = wanted if soft == resource.RLIM_INFINITY else soft
    conns = max(limit - FD_RESERVE, 16)
    warning = None
    if limit < FD_LOW:
        warning = (f"the open-files limit is {limit} (hard limit {hard}): at most {conns} "
                   "connections at once; raise it (ulimit -n, or LimitNOFILE= for a service) "
                   f"to at least {FD_LOW} for a class")
    return limit, conns, warning


@dataclass(eq=False)
class _Conn:
    transport: Any
    address: str
    deadline: float | None  # headers due by then (loop time); None while a request is served
    cycle: Any = None  # the protocol's request cycle when the deadline was set
    protocol: Any = None
    buffered: int = 0  # outgoing bytes at the last sweep
    stalled_since: float | None = None


@dataclass
class ConnLimits:
    max_per_address: int = 128
    max_total: int = 4096
    header_timeout: float = 10.0
    stall_timeout: float = 30.0
    conns: dict[int, _Conn] = field(default_factory=dict)  # id(transport) -> its record
    per_address: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # connections closed at once (over a cap)
    timed_out: int = 0  # closed for slow headers
    stalled: int = 0  # aborted for not reading
    _sweeping: bool = False

    def admit(self, transport: Any, protocol: Any) -> bool:
        """A new connection: False (and closed) when its address, or the server, is full."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        if (self.per_address[address] >= self.max_per_address
                or len(self.conns) >= self.max_total):
            self._prune()
            if (self.per_address[address] >= self.max_per_address
                    or len(self.conns) >= self.max_total):
                self.refused += 1
                if self.refused in (1, 10, 100, 1000) or self.refused % 10_000 == 0:
                    log.warning("refused %d connection(s) over the caps (%d per address, %d "
                                "in all); latest from %s", self.refused, self.max_per_address,
                                self.max_total, address)
                transport.abort()
                return False
        loop = asyncio.get_running_loop()
        self.conns[id(transport)] = _Conn(transport, address,
                                          loop.time() + self.header_timeout, None, protocol)
        self.per_address[address] += 1
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(SWEEP_EVERY, self._sweep, loop)
        return True

    def _forget(self, key: int) -> None:
        c = self.conns.pop(key, None)
        if c is not None:
            self.per_address[c.address] -= 1
            if self.per_address[c.address] <= 0:
                del self.per_address[c.address]

    def _prune(self) -> None:
        for key, c in list(self.conns.items()):
            if _closed(c.transport):
                self._forget(key)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for key, c in list(self.conns.items()):
            t = c.transport
            if _closed(t):
                self._forget(key)
                continue
            # headers: due by a deadline while no request is in hand (a new connection, or a
            # kept-alive one whose last response went out)
            if hasattr(c.protocol, "cycle") and t.get_protocol() is c.protocol:
                cycle = c.protocol.cycle
                if c.deadline is not None:
                    if cycle is not c.cycle:
                        c.deadline = None  # a request's headers arrived
                    elif now >= c.deadline:
                        self.timed_out += 1
                        t.abort()
                        self._forget(key)
                        continue
                if c.deadline is None and (cycle is None or cycle.response_complete):
                    c.deadline, c.cycle = now + self.header_timeout, cycle
            # a peer that stopped reading: the outgoing buffer never shrinks
            try:
                size = t.get_write_buffer_size()
            except (AttributeError, RuntimeError):
                size = 0
            if size == 0 or size < c.buffered:
                c.stalled_since = None
            elif c.stalled_since is None:
                c.stalled_since = now
            elif now - c.stalled_since >= self.stall_timeout:
                self.stalled += 1
                log.warning("closed a connection from %s that stopped reading (%d bytes "
                            "unsent for %.0f s)", c.address, size, now - c.stalled_since)
                t.abort()
                self._forget(key)
                continue
            c.buffered = size
        if self.conns:
            loop.call_later(SWEEP_EVERY, self._sweep, loop)
        else:
            self._sweeping = False

    def stats(self) -> dict[str, int]:
        return dict(open=len(self.conns), addresses=len(self.per_address),
                    refused=self.refused, header_timeouts=self.timed_out, stalled=self.stalled)


def _closed(transport: Any) -> bool:
    try:
        return transport.is_closing() and transport.get_write_buffer_size() == 0
    except (AttributeError, RuntimeError):
        return True


def guarded(base: type, limits: ConnLimits) -> type:
    """uvicorn's HTTP protocol class with `limits` applied at connection_made."""

    class Guarded(base):  # type: ignore[valid-type, misc]
        def connection_made(self, transport: Any) -> None:
            if not limits.admit(transport, self):
                self._refused = True
                return
            super().connection_made(transport)

        def data_received(self, data: bytes) -> None:
            if getattr(self, "_refused", False):
                return
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if getattr(self, "_refused", False):
                return
            super().connection_lost(exc)

        def eof_received(self) -> Any:
            if getattr(self, "_refused", False):
                return None
            return super().eof_received()

    Guarded.__name__ = Guarded.__qualname__ = f"Guarded{base.__name__}"
    return Guarded
