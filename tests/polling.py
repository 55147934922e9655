"""Waiting for a condition in tests that drive real worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float = 60.0, every: float = 0.05,
             ignoring: tuple[type[BaseException], ...] = (), what: str = "",
             pause: Callable[[float], object] = time.sleep) -> T:
    """Call fn until it returns something truthy, and return that; fail after `timeout` s,
    naming `what` was waited for. Exceptions of the types in `ignoring` (a server not up yet:
    OSError) count as "not yet". `pause(seconds)` waits between calls (a browser test passes
    one that lets Playwright deliver the page's events meanwhile)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = fn()
        except ignoring:
            v = None
        if v:
            return v
        pause(every)
    raise AssertionError(f"waited {timeout:g} s for {what or 'a condition'}")
